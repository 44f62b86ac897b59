"""The daily spend rollup (``spend_daily``): spend reports without reading the usage.

A spend report over all time used to read every usage row and price it in pandas: two
seconds for a million rows, fourteen for a report by API key. The rollup keeps, per day,
provider, project and one more dimension (``ROLLUP_DIMS``: none, model, API key or user),
the token counts and the dollars already settled as a report settles them
(``spend_estimates.settle``: billed cost, a key's share of its project's bill, a list-price
estimate in a gap), with how each day was settled; a report is then one ``GROUP BY``
(``report_rows``), without pandas. Model rows also keep what reconciliation compares a bill
with (``reconcile_rows``): the usage at the price in effect and at its neighbours.

It is derived data, and it must never be stale when read:

- every transaction that changes a day's usage or cost marks the day (``mark_days``), so the
  mark commits with the change or not at all; a purge drops its days (``drop_before``);
- ``refresh`` rebuilds the marked days, and everything when the prices changed since the last
  build (``price_version``: the price file and the Owner's stored prices). Readers call it
  first; it costs three small queries when nothing changed, and never imports pandas then.
  The app calls it in the background after an import, the CLI at the end of ``import``.

Pricing is the price book's own: ``pricing.unit_rates`` gives per-token rates for each
(day, provider, model, tier, batch) in the data and SQL multiplies, as ``estimate_cost``
would row by row (it is linear in the counts); rows with odd counts (negative, more cached
than input) stay unpriced, as there. Settling is per day (a bill is shared within its
project and day, an org-level one within its day), which is what makes a per-day rollup
exact; ``report_rows`` leaves to ``spend_with_estimates`` the reports it cannot settle alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    column,
    delete,
    distinct,
    func,
    insert,
    literal,
    not_,
    null,
    or_,
    select,
    union_all,
    values,
)
from sqlalchemy.sql import ColumnElement

from analytics.access import Principal
from analytics.exports import Rows
from analytics.models import model_family
from analytics.queries import (
    NAMED,
    PRICING_KEYS,
    TOKEN_COLUMNS,
    _dimension,
    _filters,
    _key_text,
    display_name,
    display_names,
    effective_cost_condition,
    name_column,
    rows_frame,
    visible_projects,
)
from analytics.store import (
    PRICE_FILE,
    Cost,
    Money,
    PriceRow,
    Setting,
    SpendDaily,
    SpendDailyDirty,
    Usage,
    driver_call,
)

# Rollup dimension -> the usage/cost column holding its value (None: project level only).
ROLLUP_DIMS: dict[str, str | None] = {
    "project": None, "model": "model", "api_key": "api_key_id", "user": "user_id"}
PRICES_KEY = "spend_daily_prices"  # settings: the price_version the rollup was built with

# Per-token rates under the book (suffix ''), and under the price before and after the one
# in effect (``pricing.shifted_book``), which reconciliation compares a bill with.
PRICES = ("", "_before", "_after")
_RATE_NAMES = ("input_rate", "cached_rate", "output_rate")
_rates = Table(
    "spend_daily_rates", MetaData(),
    Column("day", Date), Column("provider", String(32)), Column("model", String(128)),
    Column("service_tier", String(32)), Column("batch", Boolean), Column("reason", Text),
    *(Column(f"{rate}{suffix}", Float) for suffix in PRICES for rate in _RATE_NAMES),
    # The join's key: without it SQLite may scan the table for every pricing group.
    Index("spend_daily_rates_key", "day", "provider", "model", "service_tier", "batch"),
    prefixes=["TEMPORARY"])


def rollup_dim(dims: Sequence[str]) -> str | None:
    """The rollup dimension whose rows can answer a report grouped by ``dims``: the one
    non-time dimension besides project and provider, else ``project``; None when ``dims``
    needs two of model, API key and user at once (the caller reads usage instead)."""
    extra = [d for d in dims if ROLLUP_DIMS.get(d)]
    if len(extra) > 1:
        return None
    return extra[0] if extra else "project"


def mark_days(conn: Connection, first: date | None, last: date | None) -> None:
    """Mark ``first``..``last`` stale, inside the transaction that changes their facts."""
    if first is None or last is None:
        return
    days = [{"day": first + timedelta(n)} for n in range((last - first).days + 1)]
    conn.execute(insert(SpendDailyDirty.__table__), days)


def drop_before(conn: Connection, first_kept: date) -> None:
    """Forget the days a purge removed, in its transaction."""
    conn.execute(delete(SpendDaily.__table__).where(SpendDaily.day < first_kept))


def price_version(conn: Connection) -> str:
    """Which prices are in effect, cheaply: the price file's bytes and the stored prices'
    count and newest id (stored prices are never edited, only added)."""
    count, newest = conn.execute(select(func.count(), func.max(PriceRow.id))).one()
    digest = hashlib.sha1(PRICE_FILE.read_bytes() if PRICE_FILE.exists() else b"")
    return f"{digest.hexdigest()[:16]}-{count}-{newest or 0}"


def _stale(conn: Connection) -> tuple[str, bool] | None:
    """None when the rollup is current; else the prices in effect and whether they changed
    since the last build (everything is rebuilt then, else only the marked days)."""
    built = conn.execute(select(Setting.value).where(Setting.key == PRICES_KEY)).scalar()
    version = price_version(conn)
    if built != version:
        return version, True
    if conn.execute(select(SpendDailyDirty.id).limit(1)).first() is None:
        return None
    return version, False


def refresh(engine: Engine) -> bool:
    """Bring the rollup up to date; True when something was rebuilt.

    Runs under the store's write lock (as imports do), so it never interleaves with an
    import or with another refresh: marks committed after it read them stay for the next.
    """
    with engine.connect() as conn:
        if _stale(conn) is None:
            return False
    from analytics.ingest import fact_transaction  # pandas: only when there is work

    with fact_transaction(engine) as conn:
        stale = _stale(conn)
        if stale is None:  # another process did it while this one waited
            return False
        version, prices_changed = stale
        marked = conn.execute(delete(SpendDailyDirty.__table__)
                              .returning(SpendDailyDirty.day)).scalars().all()
        _rebuild(conn, None if prices_changed else sorted(set(marked)))
        conn.execute(delete(Setting.__table__).where(Setting.key == PRICES_KEY))
        conn.execute(insert(Setting.__table__).values(key=PRICES_KEY, value=version))
    return True


def _rebuild(conn: Connection, days: list[date] | None) -> None:
    """Replace the rollup rows of ``days`` (all of them when None) from usage and cost."""
    from analytics.spend_estimates import settled_rows  # pandas

    rollup = SpendDaily.__table__
    for chunk in _chunks(days):
        conn.execute(delete(rollup).where(*_on_days(rollup, chunk)))
        _fill_rates(conn, chunk)
        try:
            raw = {dim: conn.execute(_raw(dim, chunk, conn.dialect.name)).all()
                   for dim in ("model", "api_key", "user")}
            raw["project"] = raw["model"]  # summed by settled_rows
        finally:
            _rates.drop(conn)
        for dim, rows in raw.items():
            _write(conn, settled_rows(dim, rows))


# Kept on model rows only, for reconciliation: the usage at list price (NULL when none of
# it could be priced), at the neighbouring prices, and why some could not be priced.
RECONCILE_COLUMNS = ["estimate", "estimate_before", "estimate_after", "unpriced_reason"]
ROLLUP_COLUMNS = ["dim", "day", "provider", "project_id", "value", "amount", "billed",
                  "allocated", "estimated", "org_billed", *TOKEN_COLUMNS, "unpriced",
                  *RECONCILE_COLUMNS]


def _write(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert rollup rows through the driver: SQLAlchemy's per-row parameter handling cost
    more than the insert itself; on PostgreSQL by ``COPY`` (one insert per row, even
    pipelined, took a third of a rebuild). Money is bound as the store keeps it (``Money``)."""
    if not rows:
        return
    money = Money()
    at = ROLLUP_COLUMNS.index("amount")
    bound = [(*r[:at], money.process_bind_param(r[at], conn.dialect), *r[at + 1:])
             for r in rows]
    columns = ", ".join(ROLLUP_COLUMNS)
    if conn.dialect.name == "postgresql":
        statement = f"COPY spend_daily ({columns}) FROM STDIN"
        raw = conn.connection.driver_connection
        with driver_call(conn, statement), raw.cursor() as cur, cur.copy(statement) as copy:
            for row in bound:
                copy.write_row(row)
        return
    conn.exec_driver_sql(f"INSERT INTO spend_daily ({columns}) VALUES "  # SQLite: qmark
                         f"({', '.join(['?'] * len(ROLLUP_COLUMNS))})", bound)


RAW_COLUMNS = ["usage", "day", "provider", "project_id", "value", "billed", "org_billed",
               *TOKEN_COLUMNS, "estimate", "unpriced", *RECONCILE_COLUMNS[1:]]


def _chunks(days: list[date] | None, size: int = 400) -> Iterator[list[date] | None]:
    """The days in lists short enough for an ``IN (...)``; one None for all of them."""
    if days is None:
        yield None
        return
    for i in range(0, len(days), size):
        yield days[i:i + size]


def _on_days(table: Any, days: list[date] | None) -> list[ColumnElement[bool]]:
    return [] if days is None else [table.c.day.in_(days)]


def _fill_rates(conn: Connection, days: list[date] | None) -> None:
    """The temporary table of per-token rates for every combination in ``days`` (NULL rates
    and the reason where the book cannot price it), at the price in effect and at the ones
    before and after it."""
    from analytics.price_store import current_book
    from analytics.pricing import shifted_book, unit_rates

    usage = Usage.__table__
    keys = ["day", "provider", "model", "service_tier", "batch"]
    combos = rows_frame(conn.execute(select(*(usage.c[k] for k in keys)).distinct()
                                     .where(*_on_days(usage, days))).all(), keys)
    _rates.drop(conn, checkfirst=True)
    _rates.create(conn)
    if combos.empty:
        return
    book = current_book(conn.engine)
    rates = unit_rates(combos, book).rename(columns={"unpriced_reason": "reason"})
    for suffix, step in (("_before", 1), ("_after", -1)):
        shifted = shifted_book(book, step)
        other = unit_rates(combos, shifted) if shifted is not None else None
        for rate in _RATE_NAMES:
            rates[f"{rate}{suffix}"] = other[rate].to_numpy() if other is not None else None
    rates = rates.drop(columns=["priced"]).astype(object)
    conn.execute(insert(_rates), rates.where(rates.notna(), None).to_dict("records"))


def _names(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Comma list of the distinct non-NULL values; the reader splits and sorts them."""
    if dialect == "postgresql":
        return func.string_agg(distinct(column), literal(","))
    return func.group_concat(distinct(column))


def _raw(dim: str, days: list[date] | None, dialect: str) -> Any:
    """``RAW_COLUMNS`` per day, provider, project and ``dim``: usage priced and summed
    (``usage`` 1), and the effective USD cost summed (``usage`` 0), at most one row of each
    per group; ``spend_estimates.settled_rows`` settles them. For models, also what
    reconciliation needs: the usage priced at the neighbouring prices, and why some of it
    could not be priced (the first reason in code-point order).

    Usage is priced per pricing group (day, provider, project, model, batch and tier, plus
    ``dim``'s column) from its summed counts, as ``estimate_cost`` prices the rows of
    ``queries.usage_for_pricing``: a row with odd counts (more cached than input) within a
    group whose sums are sound is priced with it, the same in every report."""
    usage, cost = Usage.__table__, Cost.__table__
    column = ROLLUP_DIMS[dim]
    keys = [usage.c[k] for k in PRICING_KEYS]
    extra = [usage.c[column]] if column and column not in PRICING_KEYS else []
    u = (select(*keys, *extra, *(func.sum(usage.c[c]).label(c) for c in TOKEN_COLUMNS))
         .where(*_on_days(usage, days)).group_by(*keys, *extra)
         .subquery("pricing_groups").c)
    rates = _rates  # a shorter name for the many references below
    joined = u.day.table.outerjoin(rates, and_(
        rates.c.day == u.day, rates.c.provider == u.provider, rates.c.model == u.model,
        rates.c.service_tier == u.service_tier, rates.c.batch == u.batch))
    negative = or_(u.input_tokens < 0, u.cached_input_tokens < 0, u.output_tokens < 0)
    too_cached = u.cached_input_tokens > u.input_tokens

    def priced_sum(suffix: str) -> ColumnElement[Any]:
        """Usage dollars at the rates of ``suffix`` (``PRICES``); NULL when none priced."""
        estimate = ((u.input_tokens - u.cached_input_tokens) * rates.c[f"input_rate{suffix}"]
                    + u.cached_input_tokens * rates.c[f"cached_rate{suffix}"]
                    + u.output_tokens * rates.c[f"output_rate{suffix}"])
        priced = and_(rates.c[f"input_rate{suffix}"].is_not(None), not_(negative),
                      not_(too_cached))
        return func.sum(case((priced, estimate)))

    reason = case((rates.c.input_rate.is_(None),
                   func.coalesce(func.nullif(rates.c.reason, ""), "no price")),
                  (negative, "negative token count"),
                  (too_cached, "cached tokens exceed input tokens"))
    reason = _in_code_point_order(reason, dialect)  # the first, as in Python
    for_models = dim == "model"
    u_keys = [u.day, u.provider, u.project_id, *([u[column]] if column else [])]
    from_usage = (
        select(literal(1).label("usage"), *u_keys[:3],
               (u_keys[3] if column else literal("")).label("value"),
               cast(null(), Money).label("billed"),
               literal(0).label("org_billed"),
               *(func.sum(u[c]).label(c) for c in TOKEN_COLUMNS),
               priced_sum("").label("estimate"),
               _names(case((reason.is_not(None), u.model)), dialect).label("unpriced"),
               *(priced_sum(suffix) if for_models else cast(null(), Float)
                 for suffix in PRICES[1:]),
               func.min(reason) if for_models else cast(null(), String))
        .select_from(joined).group_by(*u_keys))
    c_keys = [cost.c.day, cost.c.provider, cost.c.project_id,
              *([cost.c[column]] if column else [])]
    from_cost = (
        select(literal(0), *c_keys[:3], c_keys[3] if column else literal(""),
               func.sum(cost.c.amount),
               func.max(case((cost.c.org_level, 1), else_=0)),
               *(literal(0) for _ in TOKEN_COLUMNS), cast(null(), Float),
               cast(null(), String), cast(null(), Float), cast(null(), Float),
               cast(null(), String))
        .where(effective_cost_condition(cost), cost.c.currency == "USD",
               *_on_days(cost, days))
        .group_by(*c_keys))
    return union_all(from_usage, from_cost)


# --- reading --------------------------------------------------------------------------------

REPORT_TAIL = ["unpriced_models", "basis"]  # after spend()'s columns, as spend_with_estimates


def report_rows(engine: Engine, principal: Principal, dims: Sequence[str],
                start: date | None = None, end: date | None = None,
                project: str | Sequence[str] | None = None,
                provider: str | None = None) -> Rows | None:
    """``spend_with_estimates``' table from the rollup, without pandas; None when the rollup
    cannot answer (two of model, key and user at once; or an org-level bill that would be
    shared by project, or that a project filter leaves out of view, in range).

    Columns: the dimensions, ``cost_usd``, the token counts, the display name columns,
    ``unpriced_models`` and ``basis``; rows in the order of the dimensions."""
    dims = list(dims)
    dim = rollup_dim(dims)
    if dim is None:
        return None
    projects = visible_projects(engine, principal, project)
    refresh(engine)
    rollup = SpendDaily.__table__
    conds = [*_rows_of(dim), *_filters(rollup, start, end, projects, provider)]
    dialect = engine.dialect.name
    keys = [_report_key(rollup, d, dialect) for d in dims]
    query = (select(*keys, func.sum(rollup.c.amount), func.sum(rollup.c.billed),
                    func.sum(rollup.c.allocated), func.sum(rollup.c.estimated),
                    *(func.sum(rollup.c[c]) for c in TOKEN_COLUMNS),
                    _names(func.nullif(rollup.c.unpriced, ""), dialect))
             .where(*conds).group_by(*keys))
    with engine.connect() as conn:
        if _org_bill_in_the_way(conn, dims, dim, projects, _filters(rollup, start, end, None,
                                                                    provider)):
            return None
        found = conn.execute(query).all()
        names = {d: display_names(conn, d) for d in dims if d in NAMED}
    out = []
    for row in sorted(found, key=lambda r: tuple(_key_text(v) for v in r[:len(dims)])):
        group = [_key_text(v) for v in row[:len(dims)]]
        amount, billed, allocated, estimated = row[len(dims):len(dims) + 4]
        tokens = [int(v or 0) for v in row[len(dims) + 4:len(dims) + 8]]
        kind = basis(billed, allocated, estimated)
        unpriced = ",".join(sorted({n for n in (row[-1] or "").split(",") if n}))
        labels = [display_name(names[d], d, g) for d, g in zip(dims, group, strict=True)
                  if d in names]
        out.append((*group, None if kind == "unpriced" else amount, *tokens, *labels, unpriced,
                    kind))
    columns = [*dims, "cost_usd", *TOKEN_COLUMNS, *(name_column(d, dims) for d in dims
                                                    if d in NAMED), *REPORT_TAIL]
    return Rows(columns, out)


RECONCILE_ROWS = ["day", "provider", "project_id", "model", "models", "billed_usd",
                  "estimated_usd", "before_usd", "after_usd", "tokens", "unpriced_reason"]


def reconcile_rows(engine: Engine, principal: Principal, start: date | None = None,
                   end: date | None = None, project: str | Sequence[str] | None = None
                   ) -> Rows:
    """Per day (ISO text), provider, project and model *family*, in that order: the raw model
    names behind the family (a comma list), the billed dollars (None where there is no
    bill), the usage at the price in effect and at the price before and after it (None where
    none of it was priced), input plus output tokens, and the first reason (in code-point
    order) some usage could not be priced ('' when all could): what ``reconcile`` compares,
    in ``RECONCILE_ROWS``.

    The rows are summed into families by the database, through a small table of the
    models in range and their families: regrouping a year of a large organisation (a
    hundred thousand rows) in Python took twice as long."""
    projects = visible_projects(engine, principal, project)
    refresh(engine)
    rollup = SpendDaily.__table__
    dialect = engine.dialect.name
    conds = [*_rows_of("model"), *_filters(rollup, start, end, projects, None)]
    with engine.connect() as conn:
        models = conn.execute(select(rollup.c.provider, rollup.c.value).where(*conds)
                              .group_by(rollup.c.provider, rollup.c.value)).all()
        if not models:
            return Rows(RECONCILE_ROWS, [])
        families = values(column("provider", String), column("model", String),
                          column("family", String), name="families").data(
            [(provider, model, model_family(model, provider)) for provider, model in models]
        ).cte()  # a CTE: SQLite names a VALUES list's columns only there
        # An outer join, the raw name standing in for its family: on PostgreSQL a model a
        # refresh committed since the list above was read is still summed.
        family = func.coalesce(families.c.family, rollup.c.value)
        keys = [rollup.c.day, *(_in_code_point_order(c, dialect) for c in (
            rollup.c.provider, rollup.c.project_id, family))]
        found = conn.execute(
            select(_day_text(rollup.c.day, dialect), *keys[1:],
                   _names(rollup.c.value, dialect),
                   func.sum(case((rollup.c.billed == 1, rollup.c.amount))),
                   *(func.sum(rollup.c[c]) for c in RECONCILE_COLUMNS[:3]),
                   func.sum(rollup.c.input_tokens + rollup.c.output_tokens),
                   func.coalesce(func.min(_in_code_point_order(rollup.c.unpriced_reason,
                                                               dialect)), ""))
            .select_from(rollup.outerjoin(families, and_(
                families.c.provider == rollup.c.provider, families.c.model == rollup.c.value)))
            .where(*conds).group_by(*keys).order_by(*keys)).all()
    return Rows(RECONCILE_ROWS, [tuple(r) for r in found])


def _in_code_point_order(text: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Text compared as Python compares it (SQLite does; PostgreSQL's default collation
    follows the locale)."""
    return text.collate("C") if dialect == "postgresql" else text


def _day_text(day: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """A day as ISO text: SQLite keeps it so; PostgreSQL's own text follows its DateStyle."""
    if dialect == "postgresql":
        return func.to_char(day, "YYYY-MM-DD")
    return cast(day, String)


def _rows_of(dim: str) -> list[ColumnElement[bool]]:
    """The rollup rows of ``dim``; for projects, with their empty ``value`` too, so that a
    date range is a seek in the key (dim, value, day, ...) rather than a scan."""
    rollup = SpendDaily.__table__
    return [rollup.c.dim == dim, *([rollup.c.value == ""] if dim == "project" else [])]


def _report_key(rollup: Any, dim: str, dialect: str) -> ColumnElement[Any]:
    if dim == "project":
        return rollup.c.project_id
    if dim in ("model", "api_key", "user"):
        return rollup.c.value
    if dim in ("provider", "day"):
        return rollup.c[dim]
    return _dimension(rollup, dim, dialect)  # week, month: from the day


def _org_bill_in_the_way(conn: Connection, dims: list[str], dim: str,
                         projects: list[str] | None, in_range: list[ColumnElement[bool]]) -> bool:
    """An org-level bill in range that this report would settle otherwise than the rollup
    did (by day): shared by project, or out of view behind a project filter."""
    if projects is None and not ("project" in dims and dim in ("project", "model")):
        return False
    rollup = SpendDaily.__table__
    found = conn.execute(select(rollup.c.day).where(
        *_rows_of("project"), rollup.c.org_billed == 1, *in_range).limit(1)).first()
    return found is not None


def basis(billed: int, allocated: int, estimated: int) -> str:
    """A group's basis from how many of its days were billed, allocated and estimated:
    ``mixed`` when more than one kind, ``unpriced`` when none (usage no price applies to)."""
    kinds = [k for k, n in (("billed", billed), ("allocated", allocated),
                            ("estimated", estimated)) if n]
    return "mixed" if len(kinds) > 1 else kinds[0] if kinds else "unpriced"
