"""Reconciliation figures in the daily spend rollup

Reconciling billed cost with usage at list price over a year of a million usage rows priced
every usage row three times (at the price in effect and at its neighbours, to spot a price
change): twenty seconds. The rollup's model rows now keep those three estimates and why
some usage could not be priced, so reconciliation reads the rollup. The new columns are
derived data: the rollup's build marker is dropped, so the next report (or the app's
background refresh) rebuilds it whole.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = ("estimate", "estimate_before", "estimate_after")


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("spend_daily", sa.Column(name, sa.Float(), nullable=True))
    op.add_column("spend_daily", sa.Column("unpriced_reason", sa.Text(), nullable=True))
    op.execute("DELETE FROM settings WHERE key = 'spend_daily_prices'")


def downgrade() -> None:
    with op.batch_alter_table("spend_daily") as batch:
        for name in (*_COLUMNS, "unpriced_reason"):
            batch.drop_column(name)
