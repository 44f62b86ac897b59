"""The SQL store: typed models, the engine, and the schema's first-use creation.

One module owns the schema so that SQLite (embedded, the default) and PostgreSQL (a team's
deployment) run the same code. Queries live in ``queries.py``; writes of imported data in
``ingest.py``. Every table is created through Alembic on first use, so a later schema change is
a migration, never a hand-edited database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Dialect,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    make_url,
    text,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.types import TypeDecorator

DEFAULT_DB_URL = "sqlite:///data/burnrate.db"
ROOT = Path(__file__).resolve().parent.parent
# The seeded price list (``pricing.load_price_book``); here so that a check of which prices
# are in effect need not import the pricing code (``spend_daily.price_version``).
PRICE_FILE = ROOT / "data" / "prices.csv"

# SQLite has no exact decimal type: money is kept there as an integer count of nano-dollars,
# which sums exactly in SQL (up to $9.2 billion) and is exact to 1e-9 $ per row.
_NANO = Decimal("1e-9")


class Money(TypeDecorator[Decimal]):
    """Exact dollars: ``Numeric(38, 12)`` on PostgreSQL, integer nano-dollars on SQLite.

    ``SUM()`` over a Money column keeps the Money type, so aggregates come back as ``Decimal``
    on both dialects without any float in between.
    """

    impl = Numeric(38, 12)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(38, 12, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value)
        if dialect.name == "sqlite":
            return int((value / _NANO).to_integral_value(rounding=ROUND_HALF_EVEN))
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-9)
        return Decimal(value)


@contextmanager
def driver_call(conn: Connection, statement: str) -> Iterator[None]:
    """Raise what the driver raises as SQLAlchemy would have (``DBAPIError``), so a full disk
    or a lost server reaches the plain-words message: the bulk paths (an import's rows, the
    spend rollup's) call the driver directly."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except dbapi_error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc


class Base:
    """Tables declared as classes, in SQLAlchemy Core: each subclass's ``Column`` attributes
    (in order) and ``__table_args__`` make its ``__table__`` in ``Base.metadata``, and
    ``Model.column`` is that table's column. Nothing here needs the ORM (no sessions, no
    instances), and loading it cost every CLI report a tenth of a second (issue #9)."""

    metadata = MetaData()
    __tablename__: str
    __table__: Table

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        columns = []
        for name, value in cls.__dict__.items():
            if isinstance(value, Column):
                value.name = value.key = name
                columns.append(value)
        args = cls.__dict__.get("__table_args__", ())
        options = args[-1] if args and isinstance(args[-1], dict) else {}
        constraints = [a for a in args if not isinstance(a, dict)]
        cls.__table__ = Table(cls.__tablename__, Base.metadata, *columns, *constraints,
                              **options)

    @classmethod
    def __clause_element__(cls) -> Table:
        """``select(Model)``, ``delete(Model)`` and ``insert(Model)`` mean its table."""
        return cls.__table__


class Project(Base):
    """A provider project (OpenAI project, Anthropic workspace): names and environment labels."""

    __tablename__ = "projects"
    provider = Column(String(32), primary_key=True)
    project_id = Column(String(128), primary_key=True)
    name = Column(String(256))
    environment = Column(String(64))


class ApiKey(Base):
    """An API key's display name, as far as an export told us."""

    __tablename__ = "api_keys"
    provider = Column(String(32), primary_key=True)
    api_key_id = Column(String(128), primary_key=True)
    name = Column(String(256))


class ImportRecord(Base):
    """One committed import: who brought which file, and what it changed."""

    __tablename__ = "imports"
    id = Column(Integer, primary_key=True, autoincrement=True)
    file_name = Column(String(512), nullable=False)
    file_hash = Column(String(64), index=True, nullable=False)
    format = Column(String(64), nullable=False)
    provider = Column(String(32), nullable=False)
    kind = Column(String(32), nullable=False)
    rows_read = Column(Integer, nullable=False)
    rows_new = Column(Integer, nullable=False)
    rows_replaced = Column(Integer, nullable=False)
    first_day = Column(Date)
    last_day = Column(Date)
    total_usd = Column(Money)
    imported_by = Column(String(128), nullable=False)
    imported_at = Column(DateTime, nullable=False)


# Natural key columns: '' (never NULL) for an absent dimension, so unique constraints hold.
USAGE_KEY = (
    "provider", "kind", "bucket_start", "bucket_end", "project_id", "user_id", "api_key_id",
    "model", "batch", "service_tier",
)


class Usage(Base):
    """A usage bucket: tokens and requests for one combination of the grouping dimensions.

    ``input_tokens`` already includes ``cached_input_tokens`` (as the providers report it).
    """

    __tablename__ = "usage"
    id = Column(BigInteger().with_variant(Integer, "sqlite"),
                primary_key=True, autoincrement=True)
    # Not indexed: only a re-run check and deleting one import look rows up by import,
    # and an index would cost every import of a million rows most of a second.
    import_id = Column(Integer, nullable=False)
    provider = Column(String(32), nullable=False)
    kind = Column(String(32), nullable=False)
    day = Column(Date, nullable=False)
    bucket_start = Column(DateTime, nullable=False)
    bucket_end = Column(DateTime, nullable=False)
    project_id = Column(String(128), nullable=False)
    user_id = Column(String(128), nullable=False)
    api_key_id = Column(String(128), nullable=False)
    model = Column(String(128), nullable=False)
    batch = Column(Boolean, nullable=False)
    service_tier = Column(String(32), nullable=False)
    input_tokens = Column(BigInteger, nullable=False)
    cached_input_tokens = Column(BigInteger, nullable=False)
    output_tokens = Column(BigInteger, nullable=False)
    requests = Column(BigInteger, nullable=False)
    # A 64-bit hash of the natural key (``USAGE_KEY``; see analytics/usage_columns.py). It
    # stands in for a unique index on the ten columns, whose upkeep cost more than writing
    # the rows: an import replaces whole (day, project) scopes, so a key cannot be stored
    # twice, and the hash serves the import's counts and its repeat check.
    key_hash = Column(BigInteger, nullable=False)
    __table_args__ = (
        Index("ix_usage_day_project", "day", "project_id"),
    )


COST_KEY = (
    "provider", "day", "org_level", "project_id", "api_key_id", "user_id", "line_item", "currency",
)


class Cost(Base):
    """A billed cost line. ``org_level`` rows (no project) are org-wide figures: they are used
    only for days that have no project rows, never added to them."""

    __tablename__ = "cost"
    id = Column(BigInteger().with_variant(Integer, "sqlite"),
                primary_key=True, autoincrement=True)
    import_id = Column(Integer, index=True, nullable=False)
    provider = Column(String(32), nullable=False)
    day = Column(Date, nullable=False)
    org_level = Column(Boolean, nullable=False)
    project_id = Column(String(128), nullable=False)
    api_key_id = Column(String(128), nullable=False)
    user_id = Column(String(128), nullable=False)
    line_item = Column(String(256), nullable=False)
    model = Column(String(128), nullable=False)
    token_type = Column(String(64), nullable=False)
    amount = Column(Money, nullable=False)
    currency = Column(String(8), nullable=False)
    quantity = Column(Numeric(30, 6))
    unit = Column(String(32), nullable=False)
    __table_args__ = (
        UniqueConstraint(*COST_KEY, name="uq_cost_natural"),
        Index("ix_cost_day_project", "day", "project_id"),
    )


class SpendDaily(Base):
    """Spend per day, provider, project and one more dimension (``dim``: project with an
    empty ``value``, model, api_key or user), settled as a spend report settles it: billed
    cost where there is some, the day's bill shared out where the export lacks the dimension,
    list-price estimates in the gaps. A report sums these rows in SQL instead of pricing a
    million usage rows. Derived data, rebuilt by ``spend_daily.refresh`` for the days marked
    in ``spend_daily_dirty``, and wholly when the prices change (migration 0006).

    Kept in key order (dim, value, day, ...; on SQLite a table WITHOUT ROWID, migration
    0007): a report by model or key reads its rows already grouped, with no sort and no
    second lookup per row."""

    __tablename__ = "spend_daily"
    dim = Column(String(16), nullable=False)
    day = Column(Date, nullable=False)
    provider = Column(String(32), nullable=False)
    project_id = Column(String(128), nullable=False)
    value = Column(String(128), nullable=False)
    amount = Column(Money, nullable=False)  # USD: billed, allocated or estimated
    billed = Column(Integer, nullable=False)  # 1: the amount is billed cost
    allocated = Column(Integer, nullable=False)  # 1: a share of a bill without this dim
    estimated = Column(Integer, nullable=False)  # 1: usage at list prices (no bill)
    org_billed = Column(Integer, nullable=False)  # 1: an org-level bill covers the day
    input_tokens = Column(BigInteger, nullable=False)
    cached_input_tokens = Column(BigInteger, nullable=False)
    output_tokens = Column(BigInteger, nullable=False)
    requests = Column(BigInteger, nullable=False)
    unpriced = Column(Text, nullable=False)  # models left unpriced in a gap, comma list
    # Model rows only (migration 0007), for reconciliation: the usage at list price, at the
    # price before and after the one in effect (NULL: none priced), and why some of it
    # could not be priced.
    estimate = Column(Float)
    estimate_before = Column(Float)
    estimate_after = Column(Float)
    unpriced_reason = Column(Text)
    __table_args__ = (PrimaryKeyConstraint("dim", "value", "day", "provider", "project_id"),
                      {"sqlite_with_rowid": False})


class SpendDailyDirty(Base):
    """Days whose ``spend_daily`` rows are stale: written in the transaction that changes
    the day's usage or cost, removed by the refresh that rebuilds them."""

    __tablename__ = "spend_daily_dirty"
    id = Column(Integer, primary_key=True, autoincrement=True)
    day = Column(Date, nullable=False)


class User(Base):
    """A person who may log in; ``projects`` is a comma list of project ids, NULL = all."""

    __tablename__ = "users"
    username = Column(String(64), primary_key=True)
    name = Column(String(256), nullable=False)
    email = Column(String(256), nullable=False)
    password_hash = Column(String(128), nullable=False)
    role = Column(String(16), nullable=False)
    projects = Column(Text)
    created_at = Column(DateTime, nullable=False)


class Setting(Base):
    """Organisation settings (name, billing anchor day, ...) as key/value text."""

    __tablename__ = "settings"
    key = Column(String(64), primary_key=True)
    value = Column(Text, nullable=False)


class AuditEntry(Base):
    """Who did what, when, with the before/after (JSON text). Append-only from the app."""

    __tablename__ = "audit_log"
    id = Column(Integer, primary_key=True, autoincrement=True)
    at = Column(DateTime, index=True, nullable=False)
    username = Column(String(128), nullable=False)
    action = Column(String(64), index=True, nullable=False)
    target = Column(String(512), nullable=False)
    before = Column(Text)
    after = Column(Text)


class BudgetRow(Base):
    """An Owner-managed budget; ``body`` holds thresholds and options as JSON."""

    __tablename__ = "budgets"
    name = Column(String(128), primary_key=True)
    scope = Column(String(256), nullable=False)  # org | project:<id> | env:<name>
    amount = Column(Money, nullable=False)
    kind = Column(String(16), nullable=False)  # month | quarter | year
    anchor_day = Column(Integer, nullable=False)
    limit_type = Column(String(8), nullable=False)  # soft | hard
    body = Column(Text, nullable=False)
    updated_by = Column(String(128), nullable=False)
    updated_at = Column(DateTime, nullable=False)


class PriceRow(Base):
    """A price an Owner added in the app; rows are never edited, so history is kept."""

    __tablename__ = "price_overrides"
    id = Column(Integer, primary_key=True, autoincrement=True)
    provider = Column(String(32), nullable=False)
    family = Column(String(128), nullable=False)
    service_tier = Column(String(32), nullable=False)
    effective_from = Column(Date, nullable=False)
    input_per_1m = Column(Numeric(20, 6), nullable=False)
    cached_input_per_1m = Column(Numeric(20, 6))
    cache_write_per_1m = Column(Numeric(20, 6))
    output_per_1m = Column(Numeric(20, 6), nullable=False)
    batch_discount = Column(Numeric(6, 4), nullable=False)
    unit = Column(String(32), nullable=False)
    source = Column(String(256), nullable=False)
    source_date = Column(Date)
    created_by = Column(String(128), nullable=False)
    created_at = Column(DateTime, nullable=False)


class NamedDocument(Base):
    """Saved named things whose shape belongs to one module: pricing scenarios
    (``kind='scenario'``), allocation plans (``kind='plan'``). ``body`` is JSON."""

    __tablename__ = "documents"
    kind = Column(String(32), primary_key=True)
    name = Column(String(128), primary_key=True)
    status = Column(String(32), default="", nullable=False)  # e.g. draft | active
    period = Column(String(32), default="", nullable=False)  # e.g. 2026-11 for a plan
    body = Column(Text, nullable=False)
    updated_by = Column(String(128), nullable=False)
    updated_at = Column(DateTime, nullable=False)


class KeyNote(Base):
    """What a Member noted against an API key (owner, service); newest row wins."""

    __tablename__ = "key_notes"
    id = Column(Integer, primary_key=True, autoincrement=True)
    provider = Column(String(32), nullable=False)
    api_key_id = Column(String(128), index=True, nullable=False)
    owner = Column(String(256), nullable=False)
    service = Column(String(256), nullable=False)
    note = Column(Text, nullable=False)
    written_by = Column(String(128), nullable=False)
    written_at = Column(DateTime, nullable=False)


class AlertRow(Base):
    """An alert raised (budget threshold, sync failure, ...); kept for the app's alert list."""

    __tablename__ = "alerts"
    id = Column(Integer, primary_key=True, autoincrement=True)
    at = Column(DateTime, index=True, nullable=False)
    source = Column(String(64), nullable=False)  # budget | sync | insight
    level = Column(String(16), nullable=False)  # info | warning | critical
    key = Column(String(256), nullable=False)  # de-duplicates repeats of one alert
    message = Column(Text, nullable=False)
    delivered = Column(String(128), default="", nullable=False)

    # A budget alert is stored once however many checks run at once (migration 0004); sync
    # alerts repeat their key on purpose.
    # (The index is partial, WHERE source = 'budget', on both backends: migration 0004 makes
    # it. Saying so here for PostgreSQL would load its dialect on every SQLite start.)
    __table_args__ = (Index("uq_alerts_budget_key", "key", unique=True,
                            sqlite_where=text("source = 'budget'")),)


class SyncState(Base):
    """The last sync of a provider endpoint: where to resume, and how it ended."""

    __tablename__ = "sync_state"
    provider = Column(String(32), primary_key=True)
    endpoint = Column(String(64), primary_key=True)
    last_day = Column(Date)
    last_run_at = Column(DateTime)
    status = Column(String(16), nullable=False)
    message = Column(Text, nullable=False)


def database_url(url: str | None = None) -> str:
    """The store URL: an explicit one, else ``BURNRATE_DB_URL``, else the embedded SQLite file."""
    return url or os.environ.get("BURNRATE_DB_URL") or DEFAULT_DB_URL


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL and a busy timeout let the app read while an import writes, and let two importers
    wait for each other instead of failing. The driver's own transaction handling is turned
    off so that ``_sqlite_begin`` decides how each transaction starts."""
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # 16 KiB pages (for a new store; an existing one keeps its own): bulk imports measured
    # a fifth less CPU than with the 4 KiB default, and scans read fewer pages.
    cur.execute("PRAGMA page_size=16384")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA cache_size=-32768")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    """``BEGIN IMMEDIATE`` for a ``write_transaction`` (it takes the write lock up front, so
    two writers queue instead of one failing), a plain deferred ``BEGIN`` for reads."""
    mode = conn.get_execution_options().get("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes, holding SQLite's write lock from its first statement.

    A deferred SQLite transaction that reads and then writes fails at once with "database is
    locked" (SQLITE_BUSY_SNAPSHOT, which the busy timeout does not wait out) when another
    connection committed in between, as the app's background refresh does. ``BEGIN
    IMMEDIATE`` waits for the lock instead. PostgreSQL's transactions start as they always do.
    """
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        yield conn


class StoreError(ValueError):
    """The store itself failed (unreachable, full), in plain words and without credentials."""


class StoreUnavailable(StoreError):
    """The store cannot be reached: the server is down, the URL is wrong, or access is refused."""


class StoreFull(StoreError):
    """The store ran out of space; the transaction was rolled back, so nothing was half-written."""


# What the drivers say when the disk (or SQLite's max_page_count) is full: SQLITE_FULL, and
# PostgreSQL's disk_full (53100) or an out-of-space write.
_FULL_SIGNS = ("database or disk is full", "no space left on device", "disk full", "53100")


def safe_url(url: str) -> str:
    """The URL without user name or password, for messages and logs."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL: show nothing of it
        return "(an unreadable store URL)"
    if parsed.drivername.startswith("sqlite"):
        return f"{parsed.drivername}:///{parsed.database or ''}"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.drivername}://{parsed.host or ''}{port}/{parsed.database or ''}"


def _reason(exc: BaseException, secret: str | None) -> str:
    """The driver's first line of explanation, never the SQL, its parameters or a password."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    first = lines[0] if lines else type(orig).__name__
    if secret:
        first = first.replace(secret, "***")
    return first[:300]


def explain(exc: DBAPIError, url: str | None = None) -> StoreError:
    """A database error as a ``StoreError`` a person can act on (raise it ``from None``)."""
    secret = make_url(url).password if url else None
    reason = _reason(exc, secret)
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    if sqlstate == "53100" or any(sign in reason.lower() for sign in _FULL_SIGNS):
        return StoreFull("The store is full (no space left for the data), so nothing was "
                         "written. Free disk space or raise the database's size limit, then "
                         "try again.")
    if not isinstance(exc, OperationalError | InterfaceError):
        return StoreError(f"The store refused the operation ({reason}); nothing was written.")
    where = safe_url(url) if url else "the store"
    return StoreUnavailable(f"The store at {where} cannot be reached ({reason}). Check that the "
                            "database server is running and that BURNRATE_DB_URL (or --db) is "
                            "right.")


_ENGINES: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """An engine for the store, with its schema migrated to the newest version on first use.

    Engines are kept per URL for the life of the process (they hold the connection pool;
    ``pool_pre_ping`` replaces a connection a database restart has closed). A store that
    cannot be reached raises ``StoreUnavailable``, whose text names no credentials.
    """
    url = database_url(url)
    if url in _ENGINES:
        return _ENGINES[url]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url.removeprefix("sqlite:///")
        if rel and rel != ":memory:":
            Path(rel).parent.mkdir(parents=True, exist_ok=True)
    elif url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    try:
        migrate(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise explain(exc, url) from None
    _ENGINES[url] = engine
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to Alembic's head revision (creates every table on a new store).

    A store already at the head (every start but the first after an upgrade) is recognised
    with one SELECT, so Alembic, a tenth of a second or more to import on each CLI run, is
    loaded only when there is something to upgrade."""
    head = head_revision()
    if head is not None and _store_revisions(engine) == {head}:
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    with write_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


# `revision = "0002"`, `down_revision: str | None = "0001"`, `down_revision = ("a", "b")`
_REVISION_LINE = re.compile(r"^(down_)?revision\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"""['"]([^'"]+)['"]""")


def head_revision(versions: Path = ROOT / "migrations" / "versions") -> str | None:
    """Alembic's head read from the migration files' ``revision`` lines, without importing
    Alembic: the one revision that no file names as its ``down_revision``. ``None`` when there
    is no single head (a branch), so that ``migrate`` leaves the judgement to Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        for down, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).update(_QUOTED.findall(value))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _store_revisions(engine: Engine) -> set[str]:
    """The revisions the store records; empty for a store Alembic has not set up yet."""
    with engine.connect() as conn:
        try:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except DBAPIError:  # no alembic_version table: a new store
            return set()
    return {row[0] for row in rows}


def table_names(engine: Engine) -> list[str]:
    """The store's tables (for checks and the settings page)."""
    return sorted(inspect(engine).get_table_names())


def is_current(engine: Engine) -> bool:
    """Whether ``engine`` is still the one kept for its store: background work started for a
    store (``refresh.watch``) ends once ``dispose_engine`` lets it go."""
    return any(kept is engine for kept in _ENGINES.values())


def dispose_engine(url: str) -> None:
    """Close an engine's connections and forget it (tests, and a store URL change)."""
    engine = _ENGINES.pop(database_url(url), None)
    if engine is not None:
        engine.dispose()
