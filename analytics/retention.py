"""Retention: an Owner purges data older than N months, or deletes one import with the rows
it brought. Both are audited and change the data version in the same transaction, so a
deletion without its audit row, or a cached chart that still shows deleted rows, cannot be.

Deleting an import removes the rows that carry its id; rows it replaced when it came in were
already gone, so they are not restored (import those files again if they are wanted back).
Import records are kept by a purge: they are the history of who brought what.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from analytics import audit, spend_daily
from analytics.access import AccessDenied, Principal
from analytics.ingest import fact_transaction
from analytics.series import bump_data_version
from analytics.store import Cost, ImportRecord, Usage

MAX_MONTHS = 1200


class RetentionError(ValueError):
    """A purge or deletion that cannot be done as asked, in plain words."""


@dataclass(frozen=True)
class Removal:
    """What a purge or deletion removes (a preview) or removed."""

    usage_rows: int
    cost_rows: int
    imports: int = 0
    before: date | None = None  # a purge removes every day before this one

    @property
    def rows(self) -> int:
        return self.usage_rows + self.cost_rows


def _require_owner(principal: Principal, action: str) -> None:
    """Retention deletes across every project: only an Owner who sees all of them may."""
    principal.require(action, owner_only=True)
    if principal.projects is not None:
        raise AccessDenied(f"Only an Owner who sees every project can {action}; "
                           f"{principal.username} is limited to some projects.")


def cutoff(months: int, today: date | None = None) -> date:
    """The first day kept when data older than ``months`` months is purged.

    >>> cutoff(3, date(2026, 5, 31))
    datetime.date(2026, 2, 28)
    """
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise RetentionError(f"Keep between 1 and {MAX_MONTHS} months of data.")
    today = today or datetime.now(UTC).date()
    index = today.year * 12 + today.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(today.day, last))


def _count_before(conn: Connection, day: date) -> Removal:
    usage = conn.execute(select(func.count()).select_from(Usage)
                         .where(Usage.day < day)).scalar_one()
    cost = conn.execute(select(func.count()).select_from(Cost)
                        .where(Cost.day < day)).scalar_one()
    return Removal(usage, cost, 0, day)


def purge_preview(engine: Engine, principal: Principal, months: int,
                  today: date | None = None) -> Removal:
    """What ``purge_older_than`` would remove, without removing it."""
    _require_owner(principal, "purge data")
    with engine.connect() as conn:
        return _count_before(conn, cutoff(months, today))


def purge_older_than(engine: Engine, principal: Principal, months: int,
                     today: date | None = None) -> Removal:
    """Delete usage and cost of every day before ``cutoff(months, today)``."""
    _require_owner(principal, "purge data")
    first_kept = cutoff(months, today)
    with fact_transaction(engine) as conn:
        removed = _count_before(conn, first_kept)
        conn.execute(delete(Usage).where(Usage.day < first_kept))
        conn.execute(delete(Cost).where(Cost.day < first_kept))
        spend_daily.drop_before(conn, first_kept)
        audit.record(conn, principal.username, "data.purge", f"days before {first_kept}",
                     {"usage_rows": removed.usage_rows, "cost_rows": removed.cost_rows},
                     {"months_kept": months, "first_day_kept": first_kept})
        bump_data_version(conn)
    return removed


def _import_row(conn: Connection, import_id: int) -> Any:
    row = conn.execute(select(ImportRecord.__table__)
                       .where(ImportRecord.id == import_id)).first()
    if row is None:
        raise RetentionError(f"There is no import #{import_id}.")
    return row


def _count_of_import(conn: Connection, import_id: int) -> Removal:
    usage = conn.execute(select(func.count()).select_from(Usage)
                         .where(Usage.import_id == import_id)).scalar_one()
    cost = conn.execute(select(func.count()).select_from(Cost)
                        .where(Cost.import_id == import_id)).scalar_one()
    return Removal(usage, cost, 1)


def import_preview(engine: Engine, principal: Principal, import_id: int) -> Removal:
    """What ``delete_import`` would remove, without removing it."""
    _require_owner(principal, "delete an import")
    with engine.connect() as conn:
        _import_row(conn, import_id)
        return _count_of_import(conn, import_id)


def delete_import(engine: Engine, principal: Principal, import_id: int) -> Removal:
    """Delete one import's record and every row that still carries its id."""
    _require_owner(principal, "delete an import")
    with fact_transaction(engine) as conn:
        record = _import_row(conn, import_id)
        removed = _count_of_import(conn, import_id)
        conn.execute(delete(Usage).where(Usage.import_id == import_id))
        conn.execute(delete(Cost).where(Cost.import_id == import_id))
        spend_daily.mark_days(conn, record.first_day, record.last_day)
        conn.execute(delete(ImportRecord).where(ImportRecord.id == import_id))
        audit.record(conn, principal.username, "import.delete", f"import #{import_id}", {
            "file_name": record.file_name, "file_hash": record.file_hash,
            "format": record.format, "imported_by": record.imported_by,
            "imported_at": record.imported_at, "first_day": record.first_day,
            "last_day": record.last_day, "usage_rows": removed.usage_rows,
            "cost_rows": removed.cost_rows}, None)
        bump_data_version(conn)
    return removed


__all__ = ["Removal", "RetentionError", "cutoff", "purge_preview", "purge_older_than",
           "import_preview", "delete_import"]
