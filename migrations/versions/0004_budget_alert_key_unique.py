"""A budget alert is stored once, even when two checks run at the same time

``alerts.record`` reads which alert keys are stored and inserts the others. On PostgreSQL two
checks at once (the app and cron) could both find a key missing and store, then deliver, the
same alert twice. A unique index on the key of budget alerts makes the database refuse the
second; the insert skips it (``ON CONFLICT DO NOTHING``). Sync alerts keep one key per
provider and repeat it on purpose, so the index is partial (``source = 'budget'``). Repeats
already stored are removed first, keeping the oldest.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BUDGET = sa.text("source = 'budget'")


def upgrade() -> None:
    op.execute("DELETE FROM alerts WHERE source = 'budget' AND id NOT IN "
               "(SELECT MIN(id) FROM alerts WHERE source = 'budget' GROUP BY key)")
    op.create_index("uq_alerts_budget_key", "alerts", ["key"], unique=True,
                    sqlite_where=_BUDGET, postgresql_where=_BUDGET)


def downgrade() -> None:
    op.drop_index("uq_alerts_budget_key", table_name="alerts")
