"""The daily usage rollup (``usage_daily``): kept equal to ``usage`` summed per day, project,
model, batch and tier, by every write of usage.

Most reports group by project, model, day or month; at minute or hourly grain a year of
usage is millions of buckets, and even at day grain the rollup drops the user and key
dimensions. The importer sums each file's batches in Arrow as they pass (no second read of
what it wrote) and swaps the sums in for the file's scope, the same scope whose usage rows it
replaced. Deleting usage any other way (an import, old months) rebuilds the affected days
from ``usage`` in SQL.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, delete, insert, text

from analytics.import_scope import scope_clause
from analytics.store import ROLLUP_KEY, UsageDaily

SUMMED = ("input_tokens", "cached_input_tokens", "output_tokens", "requests")
_COLUMNS = ", ".join((*ROLLUP_KEY, *SUMMED))
_SELECT_SUMS = (f"SELECT {', '.join(ROLLUP_KEY)}, "
                f"{', '.join(f'SUM({c})' for c in SUMMED)} FROM usage")


class DailySums:
    """The running daily sums of one file's usage batches."""

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []

    def add(self, batch: pa.Table) -> None:
        self._parts.append(_summed(batch))
        if len(self._parts) >= 64:  # fold as we go: memory stays at one day-sized table
            self._parts = [_summed(pa.concat_tables(self._parts, promote_options="permissive"))]

    def rows(self) -> list[dict[str, Any]]:
        if not self._parts:
            return []
        total = _summed(pa.concat_tables(self._parts, promote_options="permissive"))
        out = total.to_pylist()
        for row in out:
            row["day"] = date.fromisoformat(row["day"])
        return out


def _summed(table: pa.Table) -> pa.Table:
    columns = {name: (pc.cast(table[name], pa.string())
                      if pa.types.is_dictionary(table[name].type) else table[name])
               for name in (*ROLLUP_KEY, *SUMMED)}
    grouped = pa.table(columns).group_by(list(ROLLUP_KEY), use_threads=False).aggregate(
        [(name, "sum") for name in SUMMED])
    # Arrow names a sum ``<column>_sum``: back to the column's own name.
    return grouped.rename_columns([name.removesuffix("_sum") for name in grouped.column_names])


def replace_scope(conn: Connection, days: set[date], projects: set[str], provider: str,
                  kind: str, sums: DailySums) -> None:
    """Swap in a file's daily sums for the scope whose usage rows the file replaced."""
    rollup = UsageDaily.__table__
    if days and projects:
        clause, params = scope_clause(
            days, projects, conn, "usage_daily",
            "usage_daily.provider = :prov AND usage_daily.kind = :kind",
            {"prov": provider, "kind": kind})
        conn.execute(text(f"DELETE FROM usage_daily WHERE {clause}"), params)
    rows = sums.rows()
    if rows:
        conn.execute(insert(rollup), rows)


def rebuild_days(conn: Connection, days: list[date] | None = None) -> None:
    """Recompute the rollup of these days (every day when ``None``) from ``usage``."""
    rollup = UsageDaily.__table__
    if days is None:
        conn.execute(delete(rollup))
        conn.execute(text(f"INSERT INTO usage_daily ({_COLUMNS}) {_SELECT_SUMS} "
                          f"GROUP BY {', '.join(ROLLUP_KEY)}"))
        return
    if not days:
        return
    conn.execute(delete(rollup).where(rollup.c.day.in_(days)))
    sqlite = conn.dialect.name == "sqlite"
    params = {f"d{i}": d.isoformat() if sqlite else d for i, d in enumerate(days)}
    conn.execute(text(f"INSERT INTO usage_daily ({_COLUMNS}) {_SELECT_SUMS} "
                      f"WHERE day IN ({', '.join(':' + n for n in params)}) "
                      f"GROUP BY {', '.join(ROLLUP_KEY)}"), params)


__all__ = ["DailySums", "SUMMED", "replace_scope", "rebuild_days"]
