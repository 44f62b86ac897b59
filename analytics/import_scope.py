"""What an import replaces: the stored rows of the days and projects its file covers."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection


def scope_clause(days: set[date], projects: set[str], conn: Connection, table: str,
                 where: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``where`` narrowed to the file's days and, unless the file has rows without a project
    (which speak for every project), to its projects; with the parameters to bind."""
    sqlite = conn.dialect.name == "sqlite"
    ordered = sorted(d.isoformat() if sqlite else d for d in days)
    params = dict(params)
    day_names = [f"d{i}" for i in range(len(ordered))]
    params.update(zip(day_names, ordered, strict=True))
    clause = f"{where} AND {table}.day IN ({', '.join(':' + n for n in day_names)})"
    if "" not in projects:
        proj_names = [f"p{i}" for i in range(len(projects))]
        params.update(zip(proj_names, sorted(projects), strict=True))
        clause += f" AND {table}.project_id IN ({', '.join(':' + n for n in proj_names)})"
    return clause, params


__all__ = ["scope_clause"]
