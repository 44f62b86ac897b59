"""Spend and token aggregates, computed in SQL and scoped to the acting principal.

Every figure a page or CLI command shows comes through here. Grouping, filtering and summing
happen in the database; Python only joins the (small) billed-cost and usage aggregates on
their group keys and adds display names.

Billed cost is the truth for money; figures are US dollars (rows billed in another currency
are kept in the store but not summed into dollar figures). Org-level cost rows (an export
without a project column) count only on days that have no project rows, so an org total never
adds to project figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    and_,
    exists,
    false,
    func,
    select,
    true,
)

from analytics.access import AccessDenied, Principal
from analytics.store import ApiKey, Cost, ImportRecord, Project, Usage

if TYPE_CHECKING:  # pandas is imported where a frame is made: a CLI report needs none
    import pandas as pd

DIMENSIONS = ("project", "model", "api_key", "user", "provider", "day", "week", "month")
TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "output_tokens", "requests")

_COLUMN = {"project": "project_id", "model": "model", "api_key": "api_key_id",
           "user": "user_id", "provider": "provider", "day": "day"}


def _dimension(table: Any, dim: str, dialect: str) -> ColumnElement[Any]:
    """The SQL expression for a grouping dimension on the usage or cost table."""
    if dim in _COLUMN:
        return table.c[_COLUMN[dim]]
    day = table.c.day
    if dim == "month":
        if dialect == "sqlite":
            return func.strftime("%Y-%m", day)
        return func.to_char(day, "YYYY-MM")
    if dim == "week":  # the Monday that starts the ISO week
        if dialect == "sqlite":
            offset = (func.cast(func.strftime("%w", day), Integer) + 6) % 7
            return func.date(day, func.printf("-%d days", offset))
        return func.to_char(func.date_trunc("week", day), "YYYY-MM-DD")
    raise ValueError(f"Unknown grouping '{dim}'. Choose one of: {', '.join(DIMENSIONS)}.")


def visible_projects(engine: Engine, principal: Principal,
                     project: str | Sequence[str] | None) -> list[str] | None:
    """The project filter to apply: the principal's scope narrowed by what was asked for.

    A project the principal may not see is refused with the same words as one that does not
    exist, so ids cannot be probed.
    """
    asked = [project] if isinstance(project, str) else list(project) if project else None
    if asked is not None:
        for pid in asked:
            if not principal.sees(pid):
                raise AccessDenied(f"No project '{pid}' is visible to {principal.username}.")
        return asked
    return sorted(principal.projects) if principal.projects is not None else None


def rows_frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    """A frame from SQL result rows, passed in as plain tuples: pandas probes every SQLAlchemy
    ``Row`` for attributes, which costs five times the whole conversion on large results."""
    import pandas as pd

    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def _filters(table: Any, start: date | None, end: date | None,
             projects: list[str] | None, provider: str | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if start is not None:
        conds.append(table.c.day >= start)
    if end is not None:
        conds.append(table.c.day <= end)
    if projects is not None:
        conds.append(table.c.project_id.in_(projects))
    if provider:
        conds.append(table.c.provider == provider)
    return conds


def effective_cost_condition(cost: Any) -> ColumnElement[bool]:
    """Project rows always; org-level rows only on days with no project rows."""
    other = Cost.__table__.alias("proj_rows")
    has_project_rows = exists().where(
        other.c.provider == cost.c.provider, other.c.day == cost.c.day,
        other.c.org_level == false())
    return (cost.c.org_level == false()) | and_(cost.c.org_level == true(), ~has_project_rows)


def _cost_query(dims: list[str], dialect: str, conds: list[ColumnElement[bool]]) -> Select:
    cost = Cost.__table__
    keys = [_dimension(cost, d, dialect).label(d) for d in dims]
    return (select(*keys, func.sum(cost.c.amount).label("cost_usd"))
            .where(effective_cost_condition(cost), cost.c.currency == "USD", *conds)
            .group_by(*keys))


def _usage_query(dims: list[str], dialect: str, conds: list[ColumnElement[bool]]) -> Select:
    usage = Usage.__table__
    keys = [_dimension(usage, d, dialect).label(d) for d in dims]
    sums = [func.sum(usage.c[c]).label(c) for c in TOKEN_COLUMNS]
    return select(*keys, *sums).where(*conds).group_by(*keys)


def spend(engine: Engine, principal: Principal, by: str | Sequence[str],
          start: date | None = None, end: date | None = None,
          project: str | Sequence[str] | None = None, provider: str | None = None) -> pd.DataFrame:
    """Billed cost and tokens grouped by one or more dimensions, within the principal's projects.

    Returns one row per group with the dimension columns, ``cost_usd`` (``Decimal``; ``None``
    where only usage exists), the token and request counts (0 where only cost exists), and a
    ``name`` column for project and API key groups.

    >>> spend(engine, SYSTEM, "project")  # doctest: +SKIP
    """
    dims = _dimensions(by)
    projects = visible_projects(engine, principal, project)
    dialect = engine.dialect.name
    with engine.connect() as conn:
        cost_rows = conn.execute(_cost_query(
            dims, dialect, _filters(Cost.__table__, start, end, projects, provider))).all()
        usage_rows = conn.execute(_usage_query(
            dims, dialect, _filters(Usage.__table__, start, end, projects, provider))).all()
    cost_df = rows_frame(cost_rows, [*dims, "cost_usd"])
    usage_df = rows_frame(usage_rows, [*dims, *TOKEN_COLUMNS])
    for frame in (cost_df, usage_df):
        for d in dims:
            frame[d] = frame[d].map(_key_text)
    out = cost_df.merge(usage_df, on=dims, how="outer")
    out["cost_usd"] = out["cost_usd"].astype(object).where(out["cost_usd"].notna(), None)
    for c in TOKEN_COLUMNS:
        out[c] = out[c].fillna(0).astype("int64")
    out = _with_names(engine, out, dims)
    return out.sort_values(dims, kind="stable").reset_index(drop=True)


def org_billed_days(engine: Engine, principal: Principal, start: date | None = None,
                    end: date | None = None, project: str | Sequence[str] | None = None,
                    provider: str | None = None) -> set[tuple[str, str]]:
    """(provider, ISO day) pairs whose billed cost in this view is an org-level figure (a
    cost export not grouped by project): that bill covers every project's usage of the day,
    so none of it is a gap to estimate. Empty when a project filter leaves the org rows out."""
    projects = visible_projects(engine, principal, project)
    cost = Cost.__table__
    day = _dimension(cost, "day", engine.dialect.name)
    with engine.connect() as conn:
        rows = conn.execute(select(cost.c.provider, day).distinct().where(
            effective_cost_condition(cost), cost.c.org_level == true(),
            cost.c.currency == "USD", *_filters(cost, start, end, projects, provider))).all()
    return {(str(prov), _key_text(d)) for prov, d in rows}


def billed_cost(engine: Engine, principal: Principal, by: str | Sequence[str],
                start: date | None = None, end: date | None = None,
                project: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Billed cost alone, grouped as `spend` groups it (``cost_usd`` a ``Decimal``).

    For dollar series (forecasts, budgets): they need no token counts, and leaving out the
    usage table, by far the larger, makes a daily series ten times cheaper at 1M usage rows.
    """
    dims = _dimensions(by)
    projects = visible_projects(engine, principal, project)
    with engine.connect() as conn:
        rows = conn.execute(_cost_query(dims, engine.dialect.name, _filters(
            Cost.__table__, start, end, projects, None))).all()
    out = rows_frame(rows, [*dims, "cost_usd"])
    for d in dims:
        out[d] = out[d].map(_key_text)
    return out.sort_values(dims, kind="stable").reset_index(drop=True)


def _dimensions(by: str | Sequence[str]) -> list[str]:
    dims = [by] if isinstance(by, str) else list(by)
    for d in dims:
        if d not in DIMENSIONS:
            raise ValueError(f"Unknown grouping '{d}'. Choose one of: {', '.join(DIMENSIONS)}.")
    return dims


def _key_text(value: Any) -> str:
    """Group keys as text: ISO dates for days, the id as exported otherwise."""
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def name_column(dim: str, dims: Sequence[str]) -> str:
    """The column ``spend(dims)`` holds ``dim``'s display names in: ``name`` when it is the
    first and only named dimension (project or API key), ``<dim>_name`` otherwise."""
    named = [d for d in dims if d in ("project", "api_key")]
    return f"{dim}_name" if len(named) > 1 or dim != dims[0] else "name"


def _with_names(engine: Engine, frame: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    """Add display names for project and API key groups (the id where no name is known)."""
    named = [d for d in dims if d in NAMED]
    if not named:
        return frame
    with engine.connect() as conn:
        for d in named:
            names = display_names(conn, d)
            frame[name_column(d, dims)] = [display_name(names, d, k) for k in frame[d]]
    return frame


NAMED = {"project": (Project, "project_id"), "api_key": (ApiKey, "api_key_id")}


def display_names(conn: Connection, dim: str) -> dict[str, str]:
    """The names given to ``dim``'s ids (``NAMED``: project or API key), where there is one."""
    model, column = NAMED[dim]
    table = model.__table__
    return {r[0]: r[1] for r in conn.execute(select(table.c[column], table.c.name)) if r[1]}


def display_name(names: dict[str, str], dim: str, key: str) -> str:
    """How a group is labelled: its name, else its id, else what an empty id means."""
    return names.get(key) or (key if key else "(no project)" if dim == "project" else "(none)")


def total_cost(engine: Engine, principal: Principal, start: date | None = None,
               end: date | None = None, project: str | Sequence[str] | None = None) -> Decimal:
    """Billed dollars in a date range, within the principal's projects."""
    projects = visible_projects(engine, principal, project)
    cost = Cost.__table__
    with engine.connect() as conn:
        value = conn.execute(select(func.sum(cost.c.amount)).where(
            effective_cost_condition(cost), cost.c.currency == "USD",
            *_filters(cost, start, end, projects, None))).scalar_one()
    return value if value is not None else Decimal(0)


def data_range(engine: Engine, principal: Principal,
               project: str | Sequence[str] | None = None) -> tuple[date | None, date | None]:
    """First and last day with any cost or usage the principal may see (of ``project``
    when given)."""
    projects = visible_projects(engine, principal, project)
    lo: list[date] = []
    hi: list[date] = []
    with engine.connect() as conn:
        for table in (Cost.__table__, Usage.__table__):
            # One subquery each: SQLite answers a lone MIN or MAX from the day index, but
            # both in one SELECT scan all of it (a third of a second at 1M usage rows).
            conds = _filters(table, None, None, projects, None)
            row = conn.execute(select(
                select(func.min(table.c.day)).where(*conds).scalar_subquery(),
                select(func.max(table.c.day)).where(*conds).scalar_subquery())).one()
            if row[0] is not None:
                lo.append(_as_date(row[0]))
                hi.append(_as_date(row[1]))
    return (min(lo) if lo else None, max(hi) if hi else None)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def import_history(engine: Engine, limit: int = 200) -> pd.DataFrame:
    """The newest imports first, for the import page and ``import --history``."""
    imports = ImportRecord.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(imports).order_by(imports.c.id.desc()).limit(limit)).all()
    return rows_frame(rows, [c.name for c in imports.columns])


def projects(engine: Engine, principal: Principal) -> pd.DataFrame:
    """Projects the principal may see, with names and environments."""
    table = Project.__table__
    query = select(table).order_by(table.c.provider, table.c.project_id)
    if principal.projects is not None:
        query = query.where(table.c.project_id.in_(sorted(principal.projects)))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return rows_frame(rows, [c.name for c in table.columns])


PRICING_KEYS = ("day", "provider", "project_id", "model", "batch", "service_tier")


def usage_for_pricing(engine: Engine, principal: Principal, start: date | None = None,
                      end: date | None = None, project: str | Sequence[str] | None = None,
                      extra: Sequence[str] = (),
                      where: Sequence[ColumnElement[bool]] = ()) -> pd.DataFrame:
    """Tokens summed by everything a price depends on (day, model, batch, tier) plus
    ``extra`` columns of the usage table (e.g. ``api_key_id``), for estimating cost;
    ``where``: more conditions on the usage table's columns."""
    projects = visible_projects(engine, principal, project)
    usage = Usage.__table__
    keys = [usage.c[k] for k in (*PRICING_KEYS, *[e for e in extra if e not in PRICING_KEYS])]
    sums = [func.sum(usage.c[c]).label(c) for c in TOKEN_COLUMNS]
    query = select(*keys, *sums).where(*_filters(usage, start, end, projects, None),
                                       *where).group_by(*keys)
    with engine.connect() as conn:
        # The driver's own tuples: wrapping each of ~900k groups (API keys over a year at a
        # million usage rows) in a SQLAlchemy Row cost more than the query.
        rows = conn.execute(query).cursor.fetchall()
    return _pricing_frame(rows, [k.name for k in keys])


def _pricing_frame(rows: Sequence[tuple[Any, ...]], keys: list[str]) -> pd.DataFrame:
    """``usage_for_pricing``'s rows as a frame, built column by column: days parsed once per
    distinct day, text through Arrow (pandas' own inference of string columns took longer
    than the query), counts as whole numbers (PostgreSQL's SUM(bigint) is numeric)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    names = [*keys, *TOKEN_COLUMNS]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    data: dict[str, Any] = {}
    for name, values in zip(names, columns, strict=True):
        if name == "day":
            days = {value: _as_date(value) for value in set(values)}
            data[name] = pd.Series([days[value] for value in values], dtype=object)
        elif name == "batch":
            data[name] = np.array(values, dtype=bool)
        elif name in TOKEN_COLUMNS:
            data[name] = np.array(values, dtype=np.int64)
        else:
            data[name] = pa.array(values, pa.string()).to_pandas()
    return pd.DataFrame(data)
