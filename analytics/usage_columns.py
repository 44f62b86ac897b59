"""Usage rows as columns: the shape the bulk import path writes, and the natural-key hash.

A usage export of a large organisation runs to millions of rows. Handling them one Python
tuple at a time spent most of an import's time, so the import moves them in batches of
columns (``pyarrow`` tables): the fast CSV reader builds them directly, and rows from the
other readers are packed into the same shape. Dates and times are kept as the text SQLite
stores (``YYYY-MM-DD`` and ``YYYY-MM-DD HH:MM:SS.ffffff``), which PostgreSQL's ``COPY`` reads
as well, so neither backend converts them again.

The natural key (provider, kind, bucket, project, user, key, model, batch, tier) is stored as
a 64-bit hash, ``key_hash``, instead of a ten-column unique index whose upkeep cost more than
writing the rows. The hash answers "is this row already stored?" for the new/replaced counts;
a second, independent 64 bits in memory make the fingerprint that finds repeats inside one
file. Hashes are computed per distinct value (an export repeats a few hundred projects, keys
and models across millions of rows), then combined per row in numpy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics.importers.base import USAGE_STORED as STORED
from analytics.importers.base import UsageRow, moment_text
from analytics.store import USAGE_KEY

COUNT_COLUMNS = ("input_tokens", "cached_input_tokens", "output_tokens", "requests")

_MULTIPLIER = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime
_SEEDS = np.array([0xCBF29CE484222325, 0x84222325CBF29CE4], dtype=np.uint64)


def _value_hashes(text: str) -> tuple[int, int]:
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


def _column_hashes(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each row's two hashes of this column's value (shape (rows, 2)), each distinct value
    hashed once."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    distinct = np.array([_value_hashes(str(v)) for v in encoded.dictionary.to_pylist()],
                        dtype=np.uint64).reshape(-1, 2)
    return distinct[encoded.indices.to_numpy(zero_copy_only=False)]


def key_hashes(batch: pa.Table) -> np.ndarray:
    """Two independent 64-bit hashes of every row's natural key, shape (rows, 2), as signed
    integers (what both SQLite and PostgreSQL store in a BIGINT).

    The first is stored as ``key_hash``; together they are a 128-bit fingerprint, which
    is what calls two rows of one file repeats (a chance collision is beyond any real
    concern at 2^-128). ``batch`` is hashed through its text form (``True``/``False``), so a
    row hashes the same whichever reader built it and however it was read back.
    """
    combined = np.tile(_SEEDS, (batch.num_rows, 1))
    for name in USAGE_KEY:
        combined ^= _column_hashes(batch[name])
        combined *= _MULTIPLIER
    return combined.view(np.int64)


def batch_from_rows(rows: Sequence[UsageRow], moments: dict[date | datetime, str]
                    ) -> tuple[pa.Table, np.ndarray]:
    """Pack canonical rows into a batch; also return their line numbers.

    ``moments`` remembers the text of the days and times met so far (a few hundred
    buckets repeat across a file).
    """
    columns = list(zip(*rows, strict=True))
    lines = np.asarray(columns[0], dtype=np.int64)
    data: dict[str, pa.Array] = {}
    for name, values in zip(STORED, columns[1:], strict=True):
        if name in ("day", "bucket_start", "bucket_end"):
            texts = []
            for value in values:
                text = moments.get(value)
                if text is None:
                    text = moments[value] = moment_text(value)
                texts.append(text)
            data[name] = pa.array(texts, pa.string())
        elif name == "batch":
            data[name] = pa.array(values, pa.bool_())
        elif name in COUNT_COLUMNS:
            data[name] = pa.array(values, pa.int64())
        else:
            data[name] = pa.array(values, pa.string())
    return pa.table(data), lines


def stored_key_table(records: Iterable[Sequence[object]]) -> pa.Table:
    """Key columns read back from the store (in ``USAGE_KEY`` order) as a batch to hash:
    used to give rows stored before ``key_hash`` existed their hash."""
    columns = list(zip(*records, strict=True)) or [()] * len(USAGE_KEY)
    data: dict[str, pa.Array] = {}
    for name, values in zip(USAGE_KEY, columns, strict=True):
        if name == "batch":
            data[name] = pa.array([bool(v) for v in values], pa.bool_())
        elif name in ("bucket_start", "bucket_end"):
            data[name] = pa.array([v if isinstance(v, str) else moment_text(v) for v in values],
                                  pa.string())
        else:
            data[name] = pa.array(values, pa.string())
    return pa.table(data)


__all__ = ["STORED", "COUNT_COLUMNS", "key_hashes",
           "batch_from_rows", "stored_key_table"]
