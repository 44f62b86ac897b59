"""OpenAI's dashboard exports: the usage CSV (completions, embeddings) and the cost CSV.

Facts these readers rely on (see DESIGN.md): unix-second bucket columns plus ISO twins, counts
written as floats (``10.0``), ``batch`` as True/False/TRUE/FALSE, empty-bucket rows with only
the four time columns, header-only files, dollars as long zero-padded decimals, lowercase
``usd``, quoted line items that hold a comma, and ungrouped rows that are org-wide totals.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO

from analytics.importers.base import (
    MAX_COUNT,
    REDOWNLOAD,
    CostRow,
    Coverage,
    FieldParser,
    ImportFailure,
    ParsedFile,
    UsageRow,
    parse_line_item,
)
from analytics.importers.openai_usage_fast import usage_batches

TIME_COLUMNS = ("start_time", "end_time")
USAGE_REQUIRED = (*TIME_COLUMNS, "num_model_requests", "input_tokens")
COST_REQUIRED = (*TIME_COLUMNS, "amount_value", "amount_currency")
# Columns only an OpenAI export has: a header with none of them is some other file.
EXPORT_COLUMNS = frozenset({
    *USAGE_REQUIRED, *COST_REQUIRED, "start_time_iso", "end_time_iso", "output_tokens",
    "input_cached_tokens", "line_item",
})

MAX_COLUMNS = 200

# The usage columns a row is read for, in the order ``read_usage`` unpacks them.
_USAGE_FIELDS = ("start_time", "end_time", "num_model_requests", "model", "project_id",
                 "user_id", "api_key_id", "batch", "service_tier", "input_tokens",
                 "input_cached_tokens", "output_tokens")
# How the export spells ``batch``; anything else goes through ``FieldParser.flag``.
_FLAGS = {"True": True, "False": False, "TRUE": True, "FALSE": False, "": False}
# Counts shorter than this are read directly (MAX_COUNT is still enforced).
_FAST_COUNT_LEN = 20

# Column names that differ between versions of the cost export.
_ALIASES = {
    "quantity": ("quantity", "quantity_value"),
    "unit": ("quantity_unit", "unit"),
    "user_id": ("user_id",),
    "api_key_id": ("api_key_id",),
    "project_name": ("project_name",),
    "api_key_name": ("api_key_name",),
}


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def is_usage_header(header: list[str]) -> bool:
    return all(c in header for c in USAGE_REQUIRED)


def is_cost_header(header: list[str]) -> bool:
    return all(c in header for c in COST_REQUIRED)


def open_text(data: bytes | Path) -> TextIO:
    """The export as text: UTF-8 (a BOM is dropped), line endings left to the CSV reader."""
    if isinstance(data, Path):
        return data.open("r", encoding="utf-8-sig", newline="")
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")


def reader(text: TextIO) -> Iterator[list[str]]:
    """Strict CSV: a quoted field cut short by a truncated download is an error, not data."""
    return csv.reader(text, strict=True)


def bad_utf8_line(data: bytes | Path) -> int:
    """The line holding the first byte that is not UTF-8.

    Text is decoded in blocks, so a decode error surfaces at the first record of its block;
    finding the real line takes a second pass, paid only when the file is already refused.
    """
    with data.open("rb") if isinstance(data, Path) else io.BytesIO(data) as fh:
        for number, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def not_utf8(file_name: str, data: bytes | Path) -> ImportFailure:
    return ImportFailure(file_name, "is not UTF-8 text (it looks re-saved by a spreadsheet, "
                         "which changes the encoding). Use the file exactly as the provider "
                         "exported it, or download it again.", bad_utf8_line(data))


def _rows(text: TextIO, width: int, parser: FieldParser,
          source: bytes | Path) -> Iterator[tuple[int, list[str]]]:
    """Data rows with the line each starts on (a quoted field may span lines); a ragged row
    is a truncated or edited file."""
    records = reader(text)
    line = 1  # the header's
    try:
        for record in records:
            start, line = line + 1, records.line_num + 1
            if len(record) != width:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # a blank line
                raise parser.fail(
                    start, f"has {len(record)} fields where the header has {width}. The file is "
                    "truncated or was edited; download it again from the provider.")
            yield start, record
    except UnicodeDecodeError:
        raise not_utf8(parser.file_name, source) from None
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise parser.fail(line + 1, f"has a field longer than {csv.field_size_limit():,} "
                              f"characters, which no export has. {REDOWNLOAD}") from None
        raise parser.fail(line + 1, f"is not valid CSV ({exc}). The file is truncated or was "
                          "edited; download it again from the provider.") from None
    finally:
        text.close()


def read_usage(text: TextIO, header: list[str], file_name: str, fmt: str,
               source: bytes | Path) -> ParsedFile:
    """A usage export: completions (with output tokens) or embeddings (input tokens only).

    Rows number in the millions, so the loop picks its columns in one call (a missing column
    points past the row's end, at an appended blank), and remembers what repeats: a bucket's
    times, a ``batch`` spelling. Counts take a fast path when written as plain digits; any
    other text goes through ``FieldParser.count`` and its checks.
    """
    parser = FieldParser(file_name)
    cov = Coverage()
    kind = "completions" if "output_tokens" in header else "embeddings"
    width = len(header)
    pick = itemgetter(*(header.index(name) if name in header else width
                        for name in _USAGE_FIELDS))
    buckets: dict[tuple[str, str], tuple[datetime, datetime, date]] = {}
    flags = dict(_FLAGS)

    def count(value: str, column: str, line: int) -> int:
        if len(value) < _FAST_COUNT_LEN:
            whole, _, frac = value.partition(".")
            if (frac == "0" or frac == "") and whole.isascii() and whole.isdigit():
                number = int(whole)
                if number <= MAX_COUNT:
                    return number
        return parser.count(value, column, line)

    def rows() -> Iterator[UsageRow]:
        for line, rec in _rows(text, width, parser, source):
            rec.append("")
            (start_text, end_text, requests, model, project, user, key, batch, tier, inputs,
             cached, outputs) = map(str.strip, pick(rec))
            bucket = buckets.get((start_text, end_text))
            if bucket is None:
                bucket = parser.bucket(start_text, end_text, line)
                buckets[start_text, end_text] = bucket
            start, end, day = bucket
            cov.days.add(day)
            if requests == "" and model == "":
                continue  # an empty bucket: the day is covered and had no usage
            cov.projects.add(project)
            cov.rows += 1
            flag = flags.get(batch)
            if flag is None:
                flag = parser.flag(batch, "batch", line)
            yield UsageRow(
                line, "openai", kind, day, start, end, project, user, key, model, flag,
                tier or "default",
                count(inputs, "input_tokens", line),
                count(cached, "input_cached_tokens", line),
                count(outputs, "output_tokens", line),
                count(requests, "num_model_requests", line),
            )

    def columnar() -> Iterator[tuple[Any, None]]:
        return usage_batches(source, header, kind, cov, parser, flags)

    return ParsedFile(file_name, fmt, "openai", "usage", kind, rows(), cov, (file_name,),
                      columnar=columnar)


def read_cost(text: TextIO, header: list[str], file_name: str, fmt: str,
              source: bytes | Path) -> ParsedFile:
    """A cost export, 10-column (project, line item) or 17-column (adds quantity, user, key,
    names). A row without a project is an org-wide figure and is kept apart."""
    parser = FieldParser(file_name)
    cov = Coverage()
    idx = {name: header.index(name) for name in header}
    alias = {key: _column(header, names) for key, names in _ALIASES.items()}

    def get(record: list[str], name: str) -> str:
        i = idx.get(name)
        return record[i].strip() if i is not None else ""

    def opt(record: list[str], key: str) -> str:
        i = alias[key]
        return record[i].strip() if i is not None else ""

    def rows() -> Iterator[CostRow]:
        for line, rec in _rows(text, len(header), parser, source):
            _, _, day = parser.bucket(get(rec, "start_time"), get(rec, "end_time"), line)
            cov.days.add(day)
            raw_amount = get(rec, "amount_value")
            if raw_amount == "":
                continue  # a day without spend
            amount = parser.amount(raw_amount, "amount_value", line)
            currency = get(rec, "amount_currency").upper() or "USD"
            project = get(rec, "project_id")
            if project:
                cov.projects.add(project)
                if opt(rec, "project_name"):
                    cov.project_names[project] = parser.name(
                        opt(rec, "project_name"), "project_name", line)
            key = opt(rec, "api_key_id")
            if key and opt(rec, "api_key_name"):
                cov.key_names[key] = parser.name(opt(rec, "api_key_name"), "api_key_name", line)
            line_item = get(rec, "line_item")
            model, token_type = parse_line_item(line_item) if line_item else ("", "")
            quantity_text = opt(rec, "quantity")
            quantity = parser.amount(quantity_text, "quantity", line) if quantity_text else None
            cov.rows += 1
            if currency == "USD":
                cov.total_usd += amount
            yield CostRow(
                line, "openai", day, not project, project, key, opt(rec, "user_id"), line_item,
                model, token_type, amount, currency, quantity, opt(rec, "unit"),
            )

    return ParsedFile(file_name, fmt, "openai", "cost", "", rows(), cov, (file_name,))


def check_header(header: list[str], file_name: str) -> None:
    """Refuse headers a reader would misread: blank or repeated column names, or thousands of
    columns (every row would be that wide; no export has more than a few dozen)."""
    if len(header) > MAX_COLUMNS:
        raise ImportFailure(file_name, f"the header has {len(header):,} columns; an export has "
                            f"at most a few dozen. {REDOWNLOAD}", 1)
    seen: set[str] = set()
    for name in header:
        if not name:
            raise ImportFailure(file_name, "the header has an empty column name.", 1)
        if name in seen:
            raise ImportFailure(file_name, f"the header names column '{name}' twice.", 1)
        seen.add(name)


__all__ = ["read_usage", "read_cost", "is_usage_header", "is_cost_header", "check_header",
           "open_text", "reader", "not_utf8", "EXPORT_COLUMNS"]
