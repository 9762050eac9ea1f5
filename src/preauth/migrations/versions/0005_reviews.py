"""Reviews: a person's decision on a referred application, beside (never over) the model's.

One row per decision (the decision id is the key: a second review of the same decision is refused,
so neither the model's decision nor the first person's is ever overwritten). An index on the
stored decision keeps the review queue (referred decisions without a review) quick on a large store.

Revision ID: 0005_reviews
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_reviews"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("decision_id", sa.String(36), sa.ForeignKey("decisions.id"), primary_key=True),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reviews_created_at", "reviews", ["created_at"])
    op.create_index("ix_decisions_decision", "decisions", ["decision"])


def downgrade() -> None:
    op.drop_index("ix_decisions_decision", table_name="decisions")
    op.drop_table("reviews")
