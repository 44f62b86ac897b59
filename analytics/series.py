"""Daily billed-spend series for a scope (the org, a project, an environment), the input of
forecasts, budgets and allocation plans; and the store's data version for caching them.

A scope is written ``org``, ``project:<id>`` or ``env:<name>`` (as budgets store it).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, select

from analytics.access import Principal
from analytics.queries import billed_cost, projects
from analytics.store import ImportRecord, Setting


def scope_projects(engine: Engine, principal: Principal, scope: str) -> list[str] | None:
    """The project ids a scope covers (None: every project the principal may see)."""
    if scope == "org":
        return None
    kind, _, value = scope.partition(":")
    if kind == "project" and value:
        return [value]
    if kind == "env" and value:
        table = projects(engine, principal)
        return sorted(table.loc[table["environment"].fillna("") == value, "project_id"])
    raise ValueError(f"Unknown scope '{scope}': use org, project:<id> or env:<name>.")


def daily_spend(engine: Engine, principal: Principal, scope: str = "org",
                start: date | None = None, end: date | None = None) -> pd.Series:
    """Billed dollars per day (float, indexed by date, missing days filled with 0)."""
    ids = scope_projects(engine, principal, scope)
    if ids == []:
        return pd.Series(dtype="float64")
    frame = billed_cost(engine, principal, "day", start, end, project=ids)
    if frame.empty:
        return pd.Series(dtype="float64")
    values = frame["cost_usd"].map(lambda v: float(v) if v is not None else 0.0)
    series = pd.Series(values.to_numpy(), index=pd.to_datetime(frame["day"]).dt.date)
    first = start or series.index.min()
    last = end or series.index.max()
    days = pd.date_range(first, last, freq="D").date
    return series.groupby(level=0).sum().reindex(days, fill_value=0.0)


def daily_spend_by_project(engine: Engine, principal: Principal, start: date | None = None,
                           end: date | None = None) -> pd.DataFrame:
    """Billed dollars per day and project, wide (one column per project id), zeros filled."""
    frame = billed_cost(engine, principal, ["day", "project"], start, end)
    if frame.empty:
        return pd.DataFrame()
    frame["cost"] = frame["cost_usd"].map(lambda v: float(v) if v is not None else 0.0)
    wide = frame.pivot_table(index="day", columns="project", values="cost", aggfunc="sum",
                             fill_value=0.0)
    wide.index = pd.to_datetime(wide.index).date
    days = pd.date_range(start or wide.index.min(), end or wide.index.max(), freq="D").date
    return wide.reindex(days, fill_value=0.0)


EPOCH_KEY = "data_epoch"


def data_version(engine: Engine) -> str:
    """Changes whenever an import, a deletion or a purge changes the facts: a cache key for
    forecasts and frames, so a change is seen at once and nothing is recomputed before."""
    with engine.connect() as conn:
        last, count = conn.execute(select(func.max(ImportRecord.id), func.count())
                                   .select_from(ImportRecord)).one()
        epoch = conn.execute(select(Setting.value).where(Setting.key == EPOCH_KEY)).scalar()
    return f"{last or 0}-{count}-{epoch or 0}"


def bump_data_version(conn: Connection) -> None:
    """Call inside a transaction that deletes or rewrites facts without a new import."""
    current = conn.execute(select(Setting.value).where(Setting.key == EPOCH_KEY)).scalar()
    conn.execute(delete(Setting).where(Setting.key == EPOCH_KEY))
    conn.execute(Setting.__table__.insert().values(key=EPOCH_KEY,
                                                   value=str(int(current or 0) + 1)))
