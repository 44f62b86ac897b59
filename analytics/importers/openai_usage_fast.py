"""A columnar reader for OpenAI's usage CSV: the same rows as ``openai_csv.read_usage``, read
by Arrow in batches instead of one Python tuple at a time.

Parsing row by row was half of a million-row import. Arrow splits and types the file in C++;
what Python still does is per *distinct* value (a few hundred buckets, projects, keys and
models), never per row. The reader is strict in one direction only: on anything it does not
handle exactly as ``read_usage`` would (a ragged row, an odd count spelling, a bad bucket, a
control character...) it raises ``FastPathDeclined`` and the import falls back to
``read_usage``, which accepts or refuses the file with its line-numbered message. So the two
readers cannot disagree on what a file means; this one only makes the common case fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from analytics.importers.base import (
    MAX_COUNT,
    Coverage,
    FastPathDeclined,
    FieldParser,
    ImportFailure,
    moment_text,
)
from analytics.importers.base import USAGE_STORED as STORED

# Arrow's streaming reader holds some dozens of blocks in flight: small blocks keep its memory
# near 40 MB, and blocks are then joined into larger batches (``_joined``).
_BLOCK = 1 << 20
_ROWS = 32_768
_FIRST_ROWS = 4_096
_TEXT = ("project_id", "user_id", "api_key_id", "model", "service_tier")
_COUNTS = (("input_tokens", "input_tokens"), ("cached_input_tokens", "input_cached_tokens"),
           ("output_tokens", "output_tokens"), ("requests", "num_model_requests"))


def usage_batches(source: bytes | Path, header: list[str], kind: str, cov: Coverage,
                  parser: FieldParser, flags: dict[str, bool]
                  ) -> Iterator[tuple[pa.Table, None]]:
    """The file's non-empty rows as column batches (line numbers unknown: ``None``), filling
    ``cov`` as ``read_usage`` does."""
    wanted = [name for name in ("start_time", "end_time", "num_model_requests", "model",
                                "project_id", "user_id", "api_key_id", "batch",
                                "service_tier", "input_tokens", "input_cached_tokens",
                                "output_tokens") if name in header]
    try:
        stream = pcsv.open_csv(
            str(source) if isinstance(source, Path) else pa.BufferReader(source),
            read_options=pcsv.ReadOptions(column_names=header, skip_rows=1,
                                          block_size=_BLOCK, use_threads=False),
            parse_options=pcsv.ParseOptions(newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                include_columns=wanted, column_types={name: pa.string() for name in wanted},
                strings_can_be_null=False, quoted_strings_can_be_null=False))
        for record_batch in _joined(stream):
            batch = _convert(record_batch, kind, cov, parser, flags)
            if batch is not None:
                yield batch, None
    except (pa.ArrowException, ImportFailure, UnicodeDecodeError) as exc:
        raise FastPathDeclined(str(exc)) from None


def _joined(stream: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The reader's small batches joined into batches of ``_FIRST_ROWS`` rows, doubling up
    to ``_ROWS``: the import writes a batch while the next is read, so a small first batch
    gets the writing going sooner, and large later ones spread the per-batch Python work."""
    pending: list[pa.RecordBatch] = []
    rows, wanted = 0, _FIRST_ROWS
    for batch in stream:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= wanted:
            yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
            pending, rows, wanted = [], 0, min(2 * wanted, _ROWS)
    if rows:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _stripped(column: pa.Array) -> pa.DictionaryArray:
    """The column with every value stripped as ``str.strip`` does, computed per distinct
    value."""
    encoded = pc.dictionary_encode(column)
    values = [value.strip() for value in encoded.dictionary.to_pylist()]
    return pa.DictionaryArray.from_arrays(encoded.indices, pa.array(values, pa.string()))


def _mapped(encoded: pa.DictionaryArray, values: list, kind: pa.DataType) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(encoded.indices, pa.array(values, kind))


def _constant(value: str, rows: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)),
                                          pa.array([value]))


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    """A column of the file, or blanks when the export lacks it (embeddings: no output)."""
    if name in batch.schema.names:
        return batch.column(name)
    return pa.array([""] * batch.num_rows, pa.string())


def _counts(column: pa.Array) -> pa.Array:
    """Counts as ``FieldParser.count`` reads them (blank is 0), or decline."""
    numbers = pc.cast(pc.if_else(pc.equal(column, ""), "0", column), pa.float64()).to_numpy()
    whole = np.floor(numbers)
    if not (np.isfinite(numbers).all() and (whole == numbers).all()
            and (numbers >= 0).all() and (numbers <= MAX_COUNT).all()):
        raise FastPathDeclined("a count the row reader must judge")
    return pa.array(numbers.astype(np.int64))


def _buckets(batch: pa.RecordBatch) -> tuple[pa.DictionaryArray, list[tuple[str, str]]]:
    """Each row's bucket as an index into the distinct (start_time, end_time) pairs, and the
    pairs."""
    starts = pc.dictionary_encode(batch.column("start_time"))
    ends = pc.dictionary_encode(batch.column("end_time"))
    width = len(ends.dictionary)
    codes = (starts.indices.to_numpy().astype(np.int64) * width
             + ends.indices.to_numpy().astype(np.int64))
    distinct, index = np.unique(codes, return_inverse=True)
    pairs = list(zip(starts.dictionary.take(pa.array(distinct // width)).to_pylist(),
                     ends.dictionary.take(pa.array(distinct % width)).to_pylist(), strict=True))
    rows = pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)),
                                          pa.array(np.arange(len(pairs))))
    return rows, pairs


def _convert(batch: pa.RecordBatch, kind: str, cov: Coverage, parser: FieldParser,
             flags: dict[str, bool]) -> pa.Table | None:
    buckets, pairs = _buckets(batch)
    days, starts, ends = [], [], []
    for start_text, end_text in pairs:
        start, end, day = parser.bucket(start_text.strip(), end_text.strip(), 0)
        cov.days.add(day)
        days.append(day.isoformat())
        starts.append(moment_text(start))
        ends.append(moment_text(end))
    model = _stripped(_column(batch, "model"))
    blank_model = pc.equal(pc.cast(model, pa.string()), "")
    empty = pc.and_(pc.equal(_column(batch, "num_model_requests"), ""), blank_model)
    if pc.any(empty).as_py():  # empty buckets: their days are covered, they hold no usage
        keep = pc.invert(empty)
        batch, buckets, model = batch.filter(keep), buckets.filter(keep), model.filter(keep)
    rows = batch.num_rows
    if rows == 0:
        return None
    columns: dict[str, pa.Array] = {
        "provider": _constant("openai", rows), "kind": _constant(kind, rows),
        "day": _mapped(buckets, days, pa.string()),
        "bucket_start": _mapped(buckets, starts, pa.string()),
        "bucket_end": _mapped(buckets, ends, pa.string()),
    }
    for name in _TEXT:
        columns[name] = model if name == "model" else _stripped(_column(batch, name))
    tiers = columns["service_tier"]
    columns["service_tier"] = _mapped(tiers, [t or "default" for t in tiers.dictionary.to_pylist()],
                                      pa.string())
    batch_flags = _stripped(_column(batch, "batch"))
    columns["batch"] = pc.take(pa.array([
        flags[v] if v in flags else parser.flag(v, "batch", 0)
        for v in batch_flags.dictionary.to_pylist()], pa.bool_()), batch_flags.indices)
    for stored, exported in _COUNTS:
        columns[stored] = _counts(_column(batch, exported))
    projects = columns["project_id"]
    cov.projects.update(projects.dictionary.take(pc.unique(projects.indices)).to_pylist())
    cov.rows += rows
    return pa.table({name: columns[name] for name in STORED})


__all__ = ["usage_batches"]
