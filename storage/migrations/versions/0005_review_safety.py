"""The review dashboard's operators, sessions and marks; safety labels on messages;
per-reply evaluation scores.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Written by hand to match storage/models.py (Operator, OperatorSession, ReviewMark,
Message.safety, EvaluationScore.message_id).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_operators"),
        sa.UniqueConstraint("username", name="uq_operators_username"),
    )
    op.create_table(
        "operator_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="CASCADE",
                                name="fk_operator_sessions_operator_id_operators"),
        sa.PrimaryKeyConstraint("id", name="pk_operator_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_operator_sessions_token_hash"),
    )
    op.create_index("ix_operator_sessions_operator_id", "operator_sessions", ["operator_id"])
    op.create_table(
        "review_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('flag', 'good', 'bad')", name="ck_review_marks_kind"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE",
                                name="fk_review_marks_message_id_messages"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="SET NULL",
                                name="fk_review_marks_operator_id_operators"),
        sa.PrimaryKeyConstraint("id", name="pk_review_marks"),
    )
    op.create_index("ix_review_marks_message_kind", "review_marks", ["message_id", "kind"])
    op.create_index("ix_review_marks_operator_id", "review_marks", ["operator_id"])
    op.create_index("ix_review_marks_created_at", "review_marks", ["created_at"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("safety", sa.String(32), nullable=True))
        batch.create_index("ix_messages_safety", ["safety"])
    with op.batch_alter_table("evaluation_scores") as batch:
        batch.add_column(sa.Column("message_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_evaluation_scores_message_id_messages", "messages",
                                 ["message_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_evaluation_scores_message_id", ["message_id"])


def downgrade() -> None:
    with op.batch_alter_table("evaluation_scores") as batch:
        batch.drop_index("ix_evaluation_scores_message_id")
        batch.drop_constraint("fk_evaluation_scores_message_id_messages", type_="foreignkey")
        batch.drop_column("message_id")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_safety")
        batch.drop_column("safety")
    op.drop_index("ix_review_marks_created_at", table_name="review_marks")
    op.drop_index("ix_review_marks_operator_id", table_name="review_marks")
    op.drop_index("ix_review_marks_message_kind", table_name="review_marks")
    op.drop_table("review_marks")
    op.drop_index("ix_operator_sessions_operator_id", table_name="operator_sessions")
    op.drop_table("operator_sessions")
    op.drop_table("operators")
