"""Usage keeps a hash of its natural key instead of two costly indexes

The ten-column unique index (``uq_usage_natural``), the key-inventory index (``ix_usage_key``)
and the index on ``import_id`` together cost more than writing the rows: at a million rows
they held the import to 1.1x the naive path. Only a re-run check and deleting one import look
rows up by import, and both can afford a scan. Imports replace whole (day, project) scopes, so a key cannot be
stored twice; the 64-bit ``key_hash`` serves the new/replaced counts and the repeat check.

Rows already stored get their hash here, from their key columns, in batches.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from analytics.store import USAGE_KEY
from analytics.usage_columns import key_hashes, stored_key_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 50_000


def _backfill(conn: sa.Connection) -> None:
    last_id = 0
    select = sa.text(f"SELECT id, {', '.join(USAGE_KEY)} FROM usage WHERE id > :last "
                     "ORDER BY id LIMIT :n")
    update = sa.text("UPDATE usage SET key_hash = :hash WHERE id = :id")
    while rows := conn.execute(select, {"last": last_id, "n": _BATCH}).all():
        hashes = key_hashes(stored_key_table([row[1:] for row in rows]))[:, 0]
        conn.execute(update, [{"hash": int(h), "id": row[0]}
                              for h, row in zip(hashes, rows, strict=True)])
        last_id = rows[-1][0]


def upgrade() -> None:
    op.drop_index("ix_usage_key", table_name="usage")
    op.drop_index("ix_usage_import_id", table_name="usage")
    op.add_column("usage", sa.Column("key_hash", sa.BigInteger(), nullable=True))
    _backfill(op.get_bind())
    with op.batch_alter_table("usage") as batch_op:
        batch_op.alter_column("key_hash", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_constraint("uq_usage_natural", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("usage") as batch_op:
        batch_op.create_unique_constraint("uq_usage_natural", list(USAGE_KEY))
        batch_op.drop_column("key_hash")
    op.create_index("ix_usage_key", "usage", ["provider", "api_key_id", "project_id", "day"])
    op.create_index("ix_usage_import_id", "usage", ["import_id"])
