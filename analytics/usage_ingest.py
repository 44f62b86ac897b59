"""The usage half of an import: rows straight into ``usage`` in column batches, then the
rows they replace retired, inside the caller's transaction.

Why not a staging table, as for cost lines: a usage export can hold millions of rows, and
writing each twice (stage, then copy) with a ten-column unique index to keep up cost four
times what the rows alone cost. Here each batch goes straight in, by ``executemany`` on
SQLite and ``COPY`` on PostgreSQL, carrying its natural-key hash (``usage_columns``):

1. a batch row identical to a row an earlier import stored (same key, same counts) is not
   written again: the stored row is kept and handed to this import, so re-importing a file
   costs less than importing it first;
2. a row that repeats inside the file (same 128-bit key fingerprint) refuses the file,
   naming both lines;
3. the other stored rows of the file's scope (its provider and kind of data, days and
   projects) are counted against the file's keys (replaced, or new) and deleted.

Rows stored before this import are those with an ``id`` up to the largest one at its start
(the write lock keeps other writers out): unlike ``import_id``, the ``id`` sits in every
index entry, so finding the older rows of a scope skips the new ones without reading them.

A file may offer a fast columnar reader (``ParsedFile.columnar``), tried first. It declines
(``FastPathDeclined``) on anything unusual; the caller then rolls the transaction back and
imports the file again row by row with its ordinary reader, whose messages name the line.
(Not a savepoint: SQLite ends the whole transaction on a full disk, and the savepoint's
rollback would then hide the real error.) Any error rolls the whole transaction back, so the
store is left as it was.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from itertools import chain, islice
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy import Connection, text

from analytics.import_scope import scope_clause
from analytics.importers import ImportFailure, ParsedFile
from analytics.importers.base import FastPathDeclined, text_problem
from analytics.prefetch import prefetched
from analytics.store import Usage, driver_call
from analytics.usage_columns import COUNT_COLUMNS, STORED, batch_from_rows, key_hashes

CHUNK = 20_000  # rows per batch when packing rows from a row-by-row reader
_ROWS_PER_INSERT = 256  # rows per SQLite INSERT statement, within its variable limit
Batch = tuple[pa.Table, np.ndarray | None]  # columns, and their lines when the reader knows them

_INSERTED = (*STORED, "key_hash")
_LIMITS = {name: Usage.__table__.c[name].type.length for name in STORED
           if getattr(Usage.__table__.c[name].type, "length", None)}


class _Written:
    """What the batches of one file left behind: every row's key fingerprint and line (lines
    only from the row reader), how many rows had a key already stored, and the ids of stored
    rows kept instead of rewritten."""

    def __init__(self) -> None:
        self.fingerprints: list[np.ndarray] = []
        self.lines: list[np.ndarray] = []
        self.matched = 0
        self.kept: list[tuple[int, int]] = []  # runs of consecutive ids, first and last


def write_usage(conn: Connection, parsed: ParsedFile, import_id: int) -> tuple[int, int]:
    """Write the file's rows under ``import_id`` and retire what they replace: (new, replaced)."""
    newest_before = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM usage")).scalar_one()
    written = _write_preferring_columns(conn, parsed, import_id, newest_before)
    return _retire_replaced(conn, parsed, import_id, newest_before, written)


def _write_preferring_columns(conn: Connection, parsed: ParsedFile, import_id: int,
                              newest_before: int) -> _Written:
    """Write through the fast reader when the file has one; ``FastPathDeclined`` propagates
    so the caller can roll back and import again row by row."""
    if parsed.columnar is not None:
        written = _write(conn, parsed, import_id, newest_before, parsed.columnar())
        if _first_repeat(written.fingerprints, None):
            raise FastPathDeclined("a repeated key: the row reader names the lines")
        return written
    written = _write(conn, parsed, import_id, newest_before, _row_batches(parsed))
    repeat = _first_repeat(written.fingerprints, written.lines)
    if repeat:
        first, last = repeat
        raise ImportFailure(parsed.file_name, f"repeats the row of {parsed.unit} {first} "
                            "(same day, project, key, user, model and type). Each row must "
                            "appear once: download the export again rather than joining files "
                            "by hand.", last, parsed.unit)
    return written


def _row_batches(parsed: ParsedFile) -> Iterator[Batch]:
    moments: dict[date | datetime, str] = {}
    rows = iter(parsed.rows)
    while chunk := list(islice(rows, CHUNK)):
        yield batch_from_rows(chunk, moments)


def _write(conn: Connection, parsed: ParsedFile, import_id: int, newest_before: int,
           batches: Iterator[Batch]) -> _Written:
    written = _Written()
    insert = _sqlite_insert if conn.dialect.name == "sqlite" else _copy_insert
    for batch, lines, fingerprints in prefetched(_prepared(batches, parsed)):
        written.fingerprints.append(fingerprints)
        if lines is not None:
            written.lines.append(lines)
        if not newest_before:
            insert(conn, batch, fingerprints[:, 0], import_id)
            continue
        matched, kept, kept_ids = _stored_twins(conn, parsed, newest_before, batch,
                                                fingerprints)
        written.matched += int(matched.sum())
        written.kept.extend(_runs(np.unique(kept_ids)))
        if not kept.any():
            insert(conn, batch, fingerprints[:, 0], import_id)
        elif not kept.all():
            insert(conn, batch.filter(pa.array(~kept)), fingerprints[~kept, 0], import_id)
    return written


def _prepared(batches: Iterator[Batch], parsed: ParsedFile
              ) -> Iterator[tuple[pa.Table, np.ndarray | None, np.ndarray]]:
    """The file's batches checked, ordered for the store and fingerprinted: the work that
    needs no database, done on the prefetch thread while the previous batch is written."""
    checked: dict[str, set[str]] = {name: set() for name in _LIMITS}
    try:
        for batch, lines in batches:
            _check_text(batch, lines, checked, parsed)
            order = _store_order(batch)
            batch = batch.take(order)
            yield batch, None if lines is None else lines[order], key_hashes(batch)
    finally:  # the reader's file and buffers go now, not when a traceback lets them go
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _store_order(batch: pa.Table) -> np.ndarray:
    """Row order by (day, project): the order of the store's ``(day, project_id)`` index, so
    SQLite adds each batch's index entries in a few runs instead of at thousands of scattered
    places (a fifth of the insert time at a million rows)."""
    return np.lexsort((_ranks(batch["project_id"]), _ranks(batch["day"])))


def _ranks(column: pa.ChunkedArray) -> np.ndarray:
    """Each row's rank among the column's distinct values (Arrow cannot sort a dictionary
    column itself)."""
    array = column.combine_chunks()
    encoded = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
    values = encoded.dictionary.to_numpy(zero_copy_only=False)
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.argsort(values, kind="stable")] = np.arange(len(values))
    return rank[encoded.indices.to_numpy(zero_copy_only=False)]


def _stored_twins(conn: Connection, parsed: ParsedFile, newest_before: int,
                  batch: pa.Table, fingerprints: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which batch rows have a key an earlier import stored (on the same days); which of
    those it stored exactly (same counts too); and the ids of the exact ones."""
    sqlite = conn.dialect.name == "sqlite"
    days = [d if sqlite else date.fromisoformat(d) for d in pc.unique(batch["day"]).to_pylist()]
    projects = pc.unique(batch["project_id"]).to_pylist()
    params: dict[str, Any] = {"prov": parsed.provider, "kind": parsed.usage_kind,
                              "newest_before": newest_before}
    params.update({f"d{i}": day for i, day in enumerate(days)})
    params.update({f"p{i}": project for i, project in enumerate(projects)})
    result = conn.execute(text(
        f"SELECT key_hash, {', '.join(COUNT_COLUMNS)}, id FROM usage "
        "WHERE id <= :newest_before AND provider = :prov AND kind = :kind "
        f"AND day IN ({', '.join(f':d{i}' for i in range(len(days)))}) "
        f"AND project_id IN ({', '.join(f':p{i}' for i in range(len(projects)))})"), params)
    # Straight from the driver's tuples into numpy: no Row object per stored row.
    width = 2 + len(COUNT_COLUMNS)
    with driver_call(conn, "SELECT key_hash ... FROM usage"):
        stored = np.fromiter(chain.from_iterable(result.cursor),
                             dtype=np.int64).reshape(-1, width)
    result.close()
    if not stored.size:
        none = np.zeros(batch.num_rows, dtype=bool)
        return none, none, np.empty(0, dtype=np.int64)
    stored = stored[np.argsort(stored[:, 0], kind="stable")]
    at = np.minimum(np.searchsorted(stored[:, 0], fingerprints[:, 0]), len(stored) - 1)
    candidate = stored[at]
    counts = np.column_stack([batch[name].to_numpy() for name in COUNT_COLUMNS])
    matched = candidate[:, 0] == fingerprints[:, 0]
    kept = matched & (candidate[:, 1:-1] == counts).all(axis=1)
    return matched, kept, candidate[kept, -1]


def _check_text(batch: pa.Table, lines: np.ndarray | None, checked: dict[str, set[str]],
                parsed: ParsedFile) -> None:
    """Refuse text the store cannot keep as it is, the same way on every backend.

    PostgreSQL rejects an over-long value or a NUL character (SQLite would keep either), and
    its refusal would name neither file nor line; other control characters are no provider's
    and could rewrite a terminal showing the text. Each distinct value is checked once.
    """
    problems: list[tuple[int, str]] = []
    for name, limit in _LIMITS.items():
        column = batch[name].combine_chunks()
        encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
        for value in encoded.dictionary.to_pylist():
            if value in checked[name]:
                continue
            problem = text_problem(value, limit)
            if problem is None:
                checked[name].add(value)
                continue
            if lines is None:
                raise FastPathDeclined(f"the {name} value {problem}")
            first = pc.index(pc.cast(column, pa.string()), value).as_py()
            problems.append((int(lines[first]), f"the {name} value {problem}"))
    if problems:
        line, message = min(problems)
        raise ImportFailure(parsed.file_name, f"{message}. This is not what the provider "
                            "exports; download the file again.", line, parsed.unit)


def _plain(column: pa.ChunkedArray) -> list[Any]:
    """A column as a Python list, decoding dictionary columns through their few values."""
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        values = np.asarray(array.dictionary.to_pylist(), dtype=object)
        return values[array.indices.to_numpy(zero_copy_only=False)].tolist()
    if pa.types.is_integer(array.type):
        return array.to_numpy().tolist()
    return array.to_pylist()


def _sqlite_insert(conn: Connection, batch: pa.Table, hashes: np.ndarray,
                   import_id: int) -> None:
    """The batch as multi-row ``INSERT ... VALUES (...), (...)`` statements.

    One statement per row (plain ``executemany``) spent a third of its time on per-statement
    work (reset, step, handing the GIL back and forth); ``_ROWS_PER_INSERT`` rows per
    statement spend it once. Columns holding one text for the whole batch (provider, kind)
    are written into the statement as literals, which spares binding them per row.
    """
    values: list[str] = [str(int(import_id))]
    columns: list[list[Any]] = []
    for name in STORED:
        distinct = pc.unique(batch[name]).to_pylist()
        if len(distinct) == 1 and isinstance(distinct[0], str):
            values.append("'" + distinct[0].replace("'", "''") + "'")
        else:
            values.append("?")
            columns.append(_plain(batch[name]))
    values.append("?")
    columns.append(hashes.tolist())
    grid = np.empty((batch.num_rows, len(columns)), dtype=object)
    for at, column in enumerate(columns):
        grid[:, at] = column
    flat = grid.ravel().tolist()  # row after row
    del grid
    raw = conn.connection.driver_connection
    per_statement = min(_ROWS_PER_INSERT,
                        raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(columns))
    width = per_statement * len(columns)
    whole = len(flat) - len(flat) % width

    def statement(rows: int) -> str:
        row = f"({', '.join(values)})"
        return (f"INSERT INTO usage (import_id, {', '.join(_INSERTED)}) "
                f"VALUES {', '.join([row] * rows)}")

    cursor = raw.cursor()
    try:
        with driver_call(conn, "INSERT INTO usage ..."):
            if whole:
                cursor.executemany(statement(per_statement),
                                   (flat[at:at + width] for at in range(0, whole, width)))
            if whole < len(flat):
                cursor.execute(statement((len(flat) - whole) // len(columns)), flat[whole:])
    finally:
        cursor.close()


def _copy_insert(conn: Connection, batch: pa.Table, hashes: np.ndarray,
                 import_id: int) -> None:
    """``COPY`` the batch as CSV written by Arrow: no Python work per row."""
    columns = {"import_id": pa.array(np.full(batch.num_rows, import_id, dtype=np.int64))}
    for name in STORED:
        column = batch[name]
        columns[name] = (pc.cast(column, pa.string())
                         if pa.types.is_dictionary(column.type) else column)
    columns["key_hash"] = pa.array(hashes)
    buffer = io.BytesIO()
    pcsv.write_csv(pa.table(columns), buffer, pcsv.WriteOptions(
        include_header=False, quoting_style="all_valid"))
    statement = f"COPY usage (import_id, {', '.join(_INSERTED)}) FROM STDIN (FORMAT csv)"
    raw = conn.connection.driver_connection
    with driver_call(conn, statement), raw.cursor() as cur, cur.copy(statement) as copy:
        copy.write(buffer.getbuffer())


def _first_repeat(fingerprints: list[np.ndarray],
                  lines: list[np.ndarray] | None) -> tuple[int, int] | None:
    """The earliest repeated key as (its first line, the line repeating it), or None; without
    lines (the fast reader), any repeat gives (0, 0).

    Memory matters at millions of rows: only the first hashes are sorted (8 bytes a row), and
    only rows whose first hash repeats are compared on both.
    """
    if not fingerprints:
        return None
    firsts = np.concatenate([part[:, 0] for part in fingerprints])
    firsts.sort()
    suspects = np.unique(firsts[1:][firsts[1:] == firsts[:-1]])
    del firsts
    if not suspects.size:
        return None
    picked = [np.isin(part[:, 0], suspects) for part in fingerprints]
    both = np.concatenate([part[mask] for part, mask in zip(fingerprints, picked, strict=True)])
    order = np.lexsort((both[:, 1], both[:, 0]))
    same = (both[order][1:] == both[order][:-1]).all(axis=1)
    if not same.any():
        return None
    if lines is None:
        return 0, 0
    where = np.concatenate([part[mask] for part, mask in zip(lines, picked, strict=True)])
    # Number each group of equal fingerprints; keep the groups with more than one row.
    group = np.concatenate(([0], np.cumsum(~same)))
    repeated = np.isin(group, group[1:][same])
    group_lines = where[order][repeated]
    groups = group[repeated]
    first = np.full(groups.max() + 1, np.iinfo(np.int64).max)
    last = np.zeros(groups.max() + 1, dtype=np.int64)
    np.minimum.at(first, groups, group_lines)
    np.maximum.at(last, groups, group_lines)
    earliest = int(np.argmin(first))
    return int(first[earliest]), int(last[earliest])


def _retire_replaced(conn: Connection, parsed: ParsedFile, import_id: int, newest_before: int,
                     written: _Written) -> tuple[int, int]:
    """Hand the kept rows to this import and delete the other rows of earlier imports in the
    file's scope: (new, replaced). A row of the file is new when no earlier row had its key;
    kept rows count as replaced, as rows rewritten would."""
    cov = parsed.coverage
    if not cov.days or not cov.projects or not newest_before:  # nothing stored, or no usage
        return cov.rows, 0
    clause, params = scope_clause(
        cov.days, cov.projects, conn, "usage",
        "usage.id <= :newest_before AND usage.provider = :prov AND usage.kind = :kind",
        {"prov": parsed.provider, "kind": parsed.usage_kind, "newest_before": newest_before})
    for low, high in written.kept:
        conn.execute(text("UPDATE usage SET import_id = :import_id "
                          "WHERE id BETWEEN :low AND :high"),
                     {"import_id": import_id, "low": low, "high": high})
    deleted = conn.execute(text(f"DELETE FROM usage WHERE {clause} AND import_id <> :import_id"),
                           {**params, "import_id": import_id}).rowcount
    kept = sum(high - low + 1 for low, high in written.kept)
    return cov.rows - written.matched, deleted + kept


def _runs(ids: np.ndarray) -> list[tuple[int, int]]:
    """Sorted ids as runs of consecutive values: an earlier import stored its rows in one
    run, so a re-import hands them over in a few statements, not one per row (and holds a
    few pairs, not an id per row)."""
    if not ids.size:
        return []
    breaks = np.flatnonzero(np.diff(ids) != 1)
    starts = np.concatenate(([ids[0]], ids[breaks + 1]))
    ends = np.concatenate((ids[breaks], [ids[-1]]))
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


__all__ = ["write_usage", "CHUNK"]
