"""A daily spend rollup for reports

Spend reports over all time read every usage row and price it: over a second at a million
rows, ten for a report by API key. ``spend_daily`` holds, per day, provider, project and one
more dimension (model, API key or user; or none), the token counts and the dollars settled as
a report settles them (billed, a share of the bill, or an estimate in a gap); reports sum
those few hundred thousand rows instead. It is
derived data: imports and deletions mark their days in ``spend_daily_dirty`` and the next
report (or the app's background refresh) rebuilds them; a change of prices rebuilds it all.
Created empty: the first report on an upgraded store builds it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from analytics.store import Money

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spend_daily",
        sa.Column("dim", sa.String(16), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("provider", sa.String(32), primary_key=True),
        sa.Column("project_id", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(128), primary_key=True),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("billed", sa.Integer(), nullable=False),
        sa.Column("allocated", sa.Integer(), nullable=False),
        sa.Column("estimated", sa.Integer(), nullable=False),
        sa.Column("org_billed", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("unpriced", sa.Text(), nullable=False),
    )
    op.create_table(
        "spend_daily_dirty",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("spend_daily_dirty")
    op.drop_table("spend_daily")
