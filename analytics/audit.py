"""The audit log: who changed what, when, with the before and after.

Every write the app or CLI makes on behalf of a person calls ``record`` in the same
transaction as the change, so a change without its audit row cannot happen. Nothing in the
app updates or deletes audit rows.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from analytics.queries import rows_frame
from analytics.store import AuditEntry, write_transaction


def _json(value: Any) -> str | None:
    if value is None:
        return None

    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return str(o)
        if isinstance(o, datetime | date):
            return o.isoformat()
        if isinstance(o, set | frozenset | tuple):
            return sorted(o) if isinstance(o, set | frozenset) else list(o)
        return str(o)

    return json.dumps(value, default=default, sort_keys=True)


def record(conn: Connection, username: str, action: str, target: str,
           before: Any = None, after: Any = None, at: datetime | None = None) -> None:
    """Append one audit row inside the caller's transaction (``at``: now, unless a caller
    that runs on an injected clock, such as login throttling, passes its own)."""
    conn.execute(AuditEntry.__table__.insert().values(
        at=at or datetime.now(UTC).replace(tzinfo=None), username=username, action=action,
        target=target[:512], before=_json(before), after=_json(after)))


def record_now(engine: Engine, username: str, action: str, target: str,
               before: Any = None, after: Any = None) -> None:
    """Append one audit row in its own transaction (logins, failed logins)."""
    with write_transaction(engine) as conn:
        record(conn, username, action, target, before, after)


def entries(engine: Engine, limit: int = 1000, action: str | None = None) -> pd.DataFrame:
    """The newest audit rows first."""
    table = AuditEntry.__table__
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    if action:
        query = query.where(table.c.action == action)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return rows_frame(rows, [c.name for c in table.columns])
