"""Initial schema: users, conversations, messages, stickers.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written by hand to match storage/models.py; plain SQLAlchemy types only, so the
migration stays valid when the models change later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("platform_user_id", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("stickers_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("platform", "platform_user_id", name="uq_users_platform"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("reset_at", _ts(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_conversations_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.UniqueConstraint("platform", "chat_id", "user_id", name="uq_conversations_platform"),
    )
    op.create_index("ix_conversations_user_id", "conversations", ["user_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("platform_message_id", sa.String(128), nullable=False),
        sa.Column("reply_to", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sticker_id", sa.String(128), nullable=True),
        sa.Column("sticker_meta", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("media", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("user_emotion", sa.String(16), nullable=True),
        sa.Column("user_valence", sa.Float(), nullable=True),
        sa.Column("planned_emotion", sa.String(16), nullable=True),
        sa.Column("cause_words", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.CheckConstraint("role IN ('user', 'bot')", name="ck_messages_role"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name="fk_messages_conversation_id_conversations"),
        sa.ForeignKeyConstraint(["reply_to"], ["messages.id"], ondelete="CASCADE",
                                name="fk_messages_reply_to_messages"),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("conversation_id", "role", "platform_message_id",
                            name="uq_messages_conversation_id"),
    )
    op.create_index("ix_messages_conversation_created", "messages",
                    ["conversation_id", "created_at"])
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_index("ix_messages_reply_to", "messages", ["reply_to"])
    op.create_table(
        "stickers",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("pack", sa.String(128), nullable=False),
        sa.Column("emoji", sa.String(32), nullable=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("emotion", sa.String(16), nullable=False),
        sa.Column("emotion_description", sa.Text(), nullable=False),
        sa.Column("content_description", sa.Text(), nullable=False),
        sa.Column("recommendation", sa.Text(), nullable=False),
        sa.Column("license", sa.String(128), nullable=False),
        sa.Column("png_path", sa.Text(), nullable=False),
        sa.Column("webp_path", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_stickers"),
    )
    op.create_index("ix_stickers_pack", "stickers", ["pack"])
    op.create_index("ix_stickers_emotion", "stickers", ["emotion"])


def downgrade() -> None:
    op.drop_table("stickers")
    op.drop_table("messages")
    op.drop_table("conversations")
    op.drop_table("users")
