"""Users lose two columns nothing reads

``failed_logins`` and ``locked_until`` date from a lockout kept per user row. Login throttling
counts failed attempts from the audit log instead (per client and per username; an Owner is
refused only at the client that failed, so an attacker cannot lock the Owner out), and these
columns were only ever written as 0 and NULL. The users' rows are kept.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("failed_logins")
        batch_op.drop_column("locked_until")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(), nullable=True))
