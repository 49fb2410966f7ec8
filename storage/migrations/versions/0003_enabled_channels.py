"""Server channels where the bot answers every message (Discord /channel enable).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Written by hand to match storage/models.py (EnabledChannel).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enabled_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(128), nullable=False),
        sa.Column("guild_id", sa.String(128), nullable=True),
        sa.Column("enabled_by", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_enabled_channels"),
        sa.UniqueConstraint("platform", "channel_id", name="uq_enabled_channels_platform"),
    )


def downgrade() -> None:
    op.drop_table("enabled_channels")
