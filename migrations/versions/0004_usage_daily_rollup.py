"""A daily rollup of usage, kept by the importer

Spend by project, model, day or month read every usage bucket: at a million rows, about a
second per query. ``usage_daily`` holds the same sums per day, project, model, batch and
tier (no user, key or time of day), built here from the rows already stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from analytics.usage_rollup import rebuild_days

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("batch", sa.Boolean(), nullable=False),
        sa.Column("service_tier", sa.String(length=32), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "kind", "day", "project_id", "model", "batch",
                            "service_tier", name="uq_usage_daily"),
    )
    op.create_index("ix_usage_daily_day_project", "usage_daily", ["day", "project_id"])
    rebuild_days(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_usage_daily_day_project", table_name="usage_daily")
    op.drop_table("usage_daily")
