"""Scores of `stickerbot evaluate` runs, for the review dashboard.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Written by hand to match storage/models.py (EvaluationScore).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evaluation_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("system", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluation_scores"),
    )
    op.create_index("ix_evaluation_scores_run_id", "evaluation_scores", ["run_id"])
    op.create_index("ix_evaluation_scores_created_at", "evaluation_scores", ["created_at"])
    op.create_index("ix_evaluation_scores_system_metric", "evaluation_scores",
                    ["system", "metric"])


def downgrade() -> None:
    op.drop_index("ix_evaluation_scores_system_metric", table_name="evaluation_scores")
    op.drop_index("ix_evaluation_scores_created_at", table_name="evaluation_scores")
    op.drop_index("ix_evaluation_scores_run_id", table_name="evaluation_scores")
    op.drop_table("evaluation_scores")
