"""Write a parsed export into the store: all rows or none, counted exactly once.

Each import runs in one transaction, holding the store's write lock:

1. record the import, so its rows can carry its id;
2. write the rows, in bounded memory: usage straight into ``usage`` in column batches
   (``usage_ingest``), cost lines through a temporary staging table; a bad row raises and the
   transaction rolls back, leaving the store as it was;
3. refuse a file that repeats a row (the same natural key twice);
4. delete what the store held for the days and projects the file covers (for that provider
   and kind of data), whatever import or grouping brought it, and fill in the import's
   counts and its audit row.

A file identical to the newest import, whose rows are all still stored, is not imported again:
a rerun or a double click changes nothing and records nothing.

Step 3 is what makes overlapping downloads, a CSV and the Admin API pages of the same days, or
a cost export grouped two ways count once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any, get_type_hints

from sqlalchemy import Connection, Engine, Row, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from analytics import audit, spend_daily
from analytics.import_scope import scope_clause
from analytics.importers import ImportFailure, NotAnExport, ParsedFile, Source, parse_sources
from analytics.importers.base import CostRow, FastPathDeclined, text_problem
from analytics.store import (
    COST_KEY,
    ApiKey,
    Cost,
    ImportRecord,
    Money,
    Project,
    StoreError,
    Usage,
    explain,
    write_transaction,
)
from analytics.usage_ingest import CHUNK, write_usage

_SEEN_LIMIT = 100_000  # checked text values remembered per column
FACT_LOCK = 7261001  # PostgreSQL advisory lock id held by every write of facts

COST_COLUMNS = CostRow._fields  # line first, then the stored columns in order


@dataclass
class ImportResult:
    """What one import did, for the CLI line, the JSON output and the import page.

    ``skipped`` marks a file found while walking a folder that is no export at all (``note``
    says why): it is reported, not imported, and is not a failure.
    """

    file: str
    ok: bool
    format: str = ""
    kind: str = ""
    rows: int = 0
    new: int = 0
    replaced: int = 0
    first_day: str | None = None
    last_day: str | None = None
    total_usd: str | None = None
    import_id: int | None = None
    error: str | None = None
    skipped: bool = False
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hash_sources(parts: Iterable[bytes | Path]) -> str:
    """SHA-256 of a file's bytes (of all its pages, in order, for Admin API pages)."""
    parts = list(parts)
    if len(parts) == 1 and isinstance(parts[0], Path):  # one file: read in C, GIL released
        with parts[0].open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    digest = hashlib.sha256()
    for data in parts:
        if isinstance(data, Path):
            with data.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        else:
            digest.update(data)
    return digest.hexdigest()


def _text_checks(table: Any, columns: tuple[str, ...]) -> list[tuple[int, str, int]]:
    """(position in a row, column, longest text the store keeps) for every text column."""
    return [(i, name, table.c[name].type.length) for i, name in enumerate(columns)
            if i and getattr(table.c[name].type, "length", None)]


_COST_CHECKS = _text_checks(Cost.__table__, COST_COLUMNS)


def _checked(rows: Iterator[tuple], checks: list[tuple[int, str, int]],
             parsed: ParsedFile) -> Iterator[tuple]:
    """Refuse text the store cannot keep as it is, the same way on every backend.

    PostgreSQL rejects an over-long value or a NUL character (SQLite would keep either), and
    its refusal would name neither the file nor the line; other control characters are no
    provider's and could rewrite a terminal showing the text.

    Projects, keys, users and models repeat on most rows, so each column remembers the values
    it has already passed (up to ``_SEEN_LIMIT`` of them, keeping memory bounded).
    """
    remembered: list[tuple[int, str, int, set[str]]] = [(*check, set()) for check in checks]
    for row in rows:
        for i, name, limit, passed in remembered:
            value = row[i]
            if value in passed:
                continue
            problem = text_problem(value, limit)
            if problem:
                raise ImportFailure(parsed.file_name, f"the {name} value {problem}. This is not "
                                    "what the provider exports; download the file again.",
                                    row[0], parsed.unit)
            if len(passed) < _SEEN_LIMIT:
                passed.add(value)
        yield row


class _Writer:
    """Dialect-specific bulk paths: ``executemany`` on SQLite, ``COPY`` on PostgreSQL."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self._money = Money()
        self._cache: dict[Any, Any] = {}
        self._row_positions: dict[type, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def _convert(self, value: Any) -> Any:
        """Python values to what SQLAlchemy itself would store for them on this dialect."""
        if not self.sqlite:
            return value
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, Decimal):  # a quantity: SQLAlchemy keeps Numeric as REAL here
            return float(value)
        if isinstance(value, datetime | date):
            hit = self._cache.get(value)
            if hit is None:
                hit = (value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime)
                       else value.isoformat())
                self._cache[value] = hit
            return hit
        return value

    def create_stage(self, name: str, like: str, columns: tuple[str, ...]) -> None:
        cols = ", ".join(columns[1:])
        if self.sqlite:
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")
            self.conn.exec_driver_sql(
                f"CREATE TEMP TABLE {name} AS SELECT 0 AS line, {cols} FROM {like} WHERE 0")
        else:
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            self.conn.exec_driver_sql(
                f"CREATE TEMP TABLE {name} ON COMMIT DROP AS "
                f"SELECT 0 AS line, {cols} FROM {like} WITH NO DATA")

    def write(self, name: str, columns: tuple[str, ...], rows: Iterator[tuple],
              money_index: int | None) -> None:
        if self.sqlite:
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"
            while chunk := list(islice(rows, CHUNK)):
                converted = [self._sqlite_row(r, money_index) for r in chunk]
                self.conn.exec_driver_sql(sql, converted)
            return
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(
                f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _sqlite_row(self, row: tuple, money_index: int | None) -> tuple:
        out = list(row)
        dated, other = self._positions(type(row))
        cache = self._cache
        for i in dated:
            value = out[i]
            hit = cache.get(value)
            out[i] = hit if hit is not None else self._convert(value)
        for i in other:
            out[i] = self._convert(out[i])
        if money_index is not None:
            out[money_index] = self._money.process_bind_param(row[money_index], self.conn.dialect)
        return tuple(out)

    def _positions(self, row_type: type) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Where a row of this type holds values SQLite needs converted: (dates and times,
        booleans and decimals). Text passes as it is, which spares a call per text cell on
        large cost exports."""
        hit = self._row_positions.get(row_type)
        if hit is None:
            hints = get_type_hints(row_type)
            kinds = [_CONVERTED.get(hints[name]) for name in row_type._fields]
            hit = (tuple(i for i, k in enumerate(kinds) if k == "dated"),
                   tuple(i for i, k in enumerate(kinds) if k == "other"))
            self._row_positions[row_type] = hit
        return hit


# Field types of UsageRow and CostRow whose values the SQLite path converts.
_CONVERTED: dict[Any, str] = {date: "dated", datetime: "dated", bool: "other",
                              Decimal: "other", Decimal | None: "other"}


def _key_match(columns: Iterable[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{c} = {right}.{c}" for c in columns)


def _check_duplicates(conn: Connection, stage: str, key: tuple[str, ...],
                      parsed: ParsedFile) -> None:
    """Refuse a file that repeats a natural key, naming both lines.

    A unique index on the staged key proves there is no repeat in one sort (and then speeds
    up matching the staged rows to the stored ones); only when it cannot be built does the
    slower ``GROUP BY`` run, to find the lines to name. The key's columns are never NULL, so
    the index and the grouping agree on what a repeat is.
    """
    cols = ", ".join(key)
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(f"CREATE UNIQUE INDEX {stage}_key ON {stage} ({cols})")
        return
    except IntegrityError:
        pass
    dup = conn.exec_driver_sql(
        f"SELECT MIN(line), MAX(line) FROM {stage} GROUP BY {cols} HAVING COUNT(*) > 1 "
        f"ORDER BY MIN(line) LIMIT 1").first()
    if dup:
        raise ImportFailure(parsed.file_name, f"repeats the row of {parsed.unit} {dup[0]} "
                            "(same day, project, key, user, model and type). Each row must "
                            "appear once: download the export again rather than joining files "
                            "by hand.", dup[1], parsed.unit)


def _replace_costs(conn: Connection, parsed: ParsedFile, stage: str,
                   import_id: int) -> tuple[int, int]:
    """Swap the staged cost lines in for what the store holds in the file's scope:
    (new, replaced)."""
    cov = parsed.coverage
    params = {"prov": parsed.provider}
    org_days = conn.execute(text(f"SELECT COUNT(*) FROM {stage} WHERE org_level = :t"),
                            {"t": True}).scalar_one()
    scopes = [("cost.provider = :prov AND cost.org_level = :f", {**params, "f": False},
               cov.projects - {""})]
    if org_days:
        scopes.append(("cost.provider = :prov AND cost.org_level = :t", {**params, "t": True},
                       {""}))
    if not cov.days:
        return 0, 0
    matched = conn.exec_driver_sql(
        f"SELECT COUNT(*) FROM {stage} s JOIN cost ON {_key_match(COST_KEY, 's', 'cost')}"
    ).scalar_one()
    # SQLite keeps the rows a re-import brings unchanged; on PostgreSQL an UPDATE writes a
    # new version of every row anyway, and keeping them measured slower than replacing them.
    cols = COST_COLUMNS[1:]
    same = _same_row(COST_KEY, cols, stage, "cost") if conn.dialect.name == "sqlite" else None
    replaced = 0
    for where, prm, projects in scopes:
        if not projects:
            continue
        clause, bound = scope_clause(cov.days, projects, conn, "cost", where, prm)
        if same is None:
            replaced += conn.execute(text(f"DELETE FROM cost WHERE {clause}"),
                                     bound).rowcount
            continue
        replaced += conn.execute(text(f"DELETE FROM cost WHERE {clause} AND NOT {same}"),
                                 bound).rowcount
        replaced += conn.execute(text(f"UPDATE cost SET import_id = :import_id "
                                      f"WHERE {clause} AND {same}"),
                                 {**bound, "import_id": import_id}).rowcount
    staged = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {stage}").scalar_one()
    kept = (f" WHERE NOT EXISTS (SELECT 1 FROM cost WHERE {_key_match(COST_KEY, 's', 'cost')})"
            if same is not None else "")
    conn.execute(text(f"INSERT INTO cost (import_id, {', '.join(cols)}) "
                      f"SELECT :import_id, {', '.join(cols)} FROM {stage} s{kept}"),
                 {"import_id": import_id})
    return staged - matched, replaced


def _same_row(key: tuple[str, ...], cols: tuple[str, ...], stage: str, table: str) -> str:
    """SQLite's test that a stored row equals a staged one in every column.

    A re-import mostly brings rows the store already holds: those are kept and handed to the
    new import (``replaced`` still counts them), which spares deleting and re-inserting them
    with all their indexes. ``IS`` compares a nullable column (a cost line's quantity) with
    NULL equal to NULL.
    """
    rest = "".join(f" AND s.{c} IS {table}.{c}" for c in cols if c not in key)
    return f"EXISTS (SELECT 1 FROM {stage} s WHERE {_key_match(key, 's', table)}{rest})"


def _upsert_names(conn: Connection, parsed: ParsedFile) -> None:
    """Remember project and key names the export carried, without touching environments."""
    cov = parsed.coverage
    projects = Project.__table__
    for pid in sorted(p for p in cov.projects if p):
        row = conn.execute(projects.select().where(
            projects.c.provider == parsed.provider, projects.c.project_id == pid)).first()
        name = cov.project_names.get(pid)
        if row is None:
            conn.execute(projects.insert().values(
                provider=parsed.provider, project_id=pid, name=name, environment=None))
        elif name and row.name != name:
            conn.execute(projects.update().where(
                projects.c.provider == parsed.provider, projects.c.project_id == pid)
                .values(name=name))
    keys = ApiKey.__table__
    for kid, kname in sorted(cov.key_names.items()):
        conn.execute(keys.delete().where(keys.c.provider == parsed.provider,
                                         keys.c.api_key_id == kid))
        conn.execute(keys.insert().values(provider=parsed.provider, api_key_id=kid, name=kname))


def _unchanged_rerun(conn: Connection, parsed: ParsedFile, file_hash: str) -> Row | None:
    """The newest import if it was this very file and the store still holds every row it
    brought: importing it again could change nothing (a rerun, a double click)."""
    imports = ImportRecord.__table__
    last = conn.execute(select(imports).order_by(imports.c.id.desc()).limit(1)).first()
    if last is None or (last.file_hash, last.format) != (file_hash, parsed.format):
        return None
    table = Usage.__table__ if parsed.kind == "usage" else Cost.__table__
    held = conn.execute(select(func.count()).select_from(table)
                        .where(table.c.import_id == last.id)).scalar_one()
    return last if held == last.rows_read else None


def _rerun_result(parsed: ParsedFile, last: Row) -> ImportResult:
    def day(value: Any) -> str | None:
        return str(value)[:10] if value is not None else None

    return ImportResult(
        file=parsed.file_name, ok=True, format=parsed.format,
        kind=parsed.usage_kind or parsed.kind, rows=last.rows_read, first_day=day(last.first_day),
        last_day=day(last.last_day), import_id=last.id,
        total_usd=str(last.total_usd) if last.total_usd is not None else None,
        note=f"identical to import #{last.id}, the newest one: nothing changed")


@contextmanager
def fact_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that may replace or delete facts, holding the store's write lock.

    SQLite takes the write lock up front (``BEGIN IMMEDIATE``) and PostgreSQL an advisory
    lock, so two imports (or an import and a deletion) at once queue instead of each missing
    the other's rows.
    """
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({FACT_LOCK})")
        yield conn


def _record_import(conn: Connection, parsed: ParsedFile, file_hash: str, user: str) -> int:
    """The import's record, written first so its rows can carry its id; the counts are
    filled in once the rows are in."""
    imports = ImportRecord.__table__
    return conn.execute(imports.insert().values(
        file_name=parsed.file_name, file_hash=file_hash, format=parsed.format,
        provider=parsed.provider, kind=parsed.usage_kind or parsed.kind, rows_read=0,
        rows_new=0, rows_replaced=0, imported_by=user,
        imported_at=datetime.now(UTC).replace(tzinfo=None),
    )).inserted_primary_key[0]


def _import_costs(conn: Connection, parsed: ParsedFile, import_id: int) -> tuple[int, int]:
    """Stage the cost lines, refuse a repeated line, and swap them in: (new, replaced)."""
    stage = "stage_cost"
    writer = _Writer(conn)
    writer.create_stage(stage, "cost", COST_COLUMNS)
    writer.write(stage, COST_COLUMNS, _checked(iter(parsed.rows), _COST_CHECKS, parsed),
                 COST_COLUMNS.index("amount"))
    _check_duplicates(conn, stage, COST_KEY, parsed)
    counts = _replace_costs(conn, parsed, stage, import_id)
    conn.exec_driver_sql(f"DROP TABLE {stage}")
    return counts


def import_parsed(engine: Engine, parsed: ParsedFile, file_hash: str, user: str) -> ImportResult:
    """Write one recognised export in one ``fact_transaction``; raise ``ImportFailure`` on
    bad rows and ``StoreError`` when the store fails (full, unreachable), with nothing
    written."""
    try:
        try:
            return _import_locked(engine, parsed, file_hash, user)
        except FastPathDeclined:  # rolled back: read the file again, row by row
            parsed.coverage.clear()
            parsed.columnar = None
            return _import_locked(engine, parsed, file_hash, user)
    except DBAPIError as exc:
        raise explain(exc, engine.url.render_as_string(hide_password=True)) from None


def _import_locked(engine: Engine, parsed: ParsedFile, file_hash: str,
                   user: str) -> ImportResult:
    cov = parsed.coverage
    with fact_transaction(engine) as conn:
        last = _unchanged_rerun(conn, parsed, file_hash)
        if last is not None:
            return _rerun_result(parsed, last)
        import_id = _record_import(conn, parsed, file_hash, user)
        if parsed.kind == "usage":
            new, replaced = write_usage(conn, parsed, import_id)
        else:
            new, replaced = _import_costs(conn, parsed, import_id)
        spend_daily.mark_days(conn, cov.first_day, cov.last_day)
        imports = ImportRecord.__table__
        conn.execute(imports.update().where(imports.c.id == import_id)
                     .values(rows_read=cov.rows, rows_new=new, rows_replaced=replaced,
                             first_day=cov.first_day, last_day=cov.last_day,
                             total_usd=cov.total_usd if parsed.kind == "cost" else None))
        _upsert_names(conn, parsed)
        result = ImportResult(
            file=parsed.file_name, ok=True, format=parsed.format,
            kind=parsed.usage_kind or parsed.kind, rows=cov.rows, new=new, replaced=replaced,
            first_day=cov.first_day.isoformat() if cov.first_day else None,
            last_day=cov.last_day.isoformat() if cov.last_day else None,
            total_usd=str(cov.total_usd) if parsed.kind == "cost" else None,
            import_id=import_id)
        audit.record(conn, user, "import", parsed.file_name, None, {
            "import_id": import_id, "format": parsed.format, "file_hash": file_hash,
            "rows": cov.rows, "new": new, "replaced": replaced, "first_day": result.first_day,
            "last_day": result.last_day, "total_usd": result.total_usd})
    return result


def import_sources(engine: Engine, sources: list[Source] | list[tuple[str, bytes | Path]],
                   user: str = "cli") -> list[ImportResult]:
    """Import every source, each in its own transaction; a bad one is reported, not fatal.

    A file found by walking a folder (``Source.from_folder``) that is no export at all is
    reported as skipped; named on purpose, the same file is a failure.
    """
    data_of = {src[0]: src[1] for src in sources}
    optional = {src[0] for src in sources if len(src) > 2 and src[2]}
    results: list[ImportResult] = []
    for item in parse_sources(sources):
        if isinstance(item, NotAnExport) and item.file_name in optional:
            results.append(ImportResult(file=item.file_name, ok=True, skipped=True,
                                        note=item.reason))
            continue
        if isinstance(item, ImportFailure):
            results.append(ImportResult(file=item.file_name, ok=False, error=str(item)))
            continue
        try:
            digest = _hash_sources(data_of[name] for name in item.sources)
            results.append(import_parsed(engine, item, digest, user))
        except ImportFailure as failure:
            results.append(ImportResult(file=item.file_name, ok=False, format=item.format,
                                        error=str(failure)))
        except StoreError as exc:
            results.append(ImportResult(file=item.file_name, ok=False, format=item.format,
                                        error=f"{item.file_name}: {exc}"))
        except OSError as exc:
            error = f"{item.file_name}: cannot be read ({exc.strerror})."
            results.append(ImportResult(file=item.file_name, ok=False, format=item.format,
                                        error=error))
    return results


__all__ = ["ImportResult", "import_sources", "import_parsed", "fact_transaction"]
