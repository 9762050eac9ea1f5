"""Shadow scores: what the shadow model said about each decision production made, never acted on.

Revision ID: 0006_shadow
Revises: 0005_reviews
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_shadow"
down_revision = "0005_reviews"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_scores",
        sa.Column("decision_id", sa.String(36), sa.ForeignKey("decisions.id"), primary_key=True),
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
    )
    op.create_index("ix_shadow_scores_model_version", "shadow_scores", ["model_version"])


def downgrade() -> None:
    op.drop_table("shadow_scores")
