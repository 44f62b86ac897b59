"""OpenAI's dashboard exports: the usage CSV (completions, embeddings) and the cost CSV.

Facts these readers rely on (see DESIGN.md): unix-second bucket columns plus ISO twins, counts
written as floats (``10.0``), ``batch`` as True/False/TRUE/FALSE, empty-bucket rows with only
the four time columns, header-only files, dollars as long zero-padded decimals, lowercase
``usd``, quoted line items that hold a comma, and ungrouped rows that are org-wide totals.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import TextIO

from analytics.importers.base import (
    CostRow,
    Coverage,
    FieldParser,
    ImportFailure,
    ParsedFile,
    UsageRow,
    parse_line_item,
)

TIME_COLUMNS = ("start_time", "end_time")
USAGE_REQUIRED = (*TIME_COLUMNS, "num_model_requests", "input_tokens")
COST_REQUIRED = (*TIME_COLUMNS, "amount_value", "amount_currency")

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


def _rows(reader: Iterator[list[str]], width: int, parser: FieldParser,
          text: TextIO) -> Iterator[tuple[int, list[str]]]:
    """Data rows with their 1-based line numbers; a ragged row is a truncated or edited file."""
    line = 1
    try:
        for record in reader:
            line += 1
            if not record or (len(record) == 1 and record[0] == ""):
                continue
            if len(record) != width:
                raise parser.fail(
                    line, f"has {len(record)} fields where the header has {width}. The file is "
                    "truncated or was edited; download it again from the provider.")
            yield line, record
    except UnicodeDecodeError:
        raise parser.fail(line + 1, "is not UTF-8 text. Use the file exactly as the provider "
                          "exported it (a spreadsheet re-save changes the encoding).") from None
    except csv.Error as exc:
        raise parser.fail(line + 1, f"is not valid CSV ({exc}).") from None
    finally:
        text.close()


def read_usage(text: TextIO, header: list[str], file_name: str, fmt: str) -> ParsedFile:
    """A usage export: completions (with output tokens) or embeddings (input tokens only)."""
    parser = FieldParser(file_name)
    cov = Coverage()
    kind = "completions" if "output_tokens" in header else "embeddings"
    idx = {name: header.index(name) for name in header}

    def get(record: list[str], name: str) -> str:
        i = idx.get(name)
        return record[i].strip() if i is not None else ""

    def rows() -> Iterator[UsageRow]:
        reader = csv.reader(text)
        for line, rec in _rows(reader, len(header), parser, text):
            start, end, day = parser.bucket(get(rec, "start_time"), get(rec, "end_time"), line)
            cov.days.add(day)
            if get(rec, "num_model_requests") == "" and get(rec, "model") == "":
                continue  # an empty bucket: the day is covered and had no usage
            project = get(rec, "project_id")
            cov.projects.add(project)
            cov.rows += 1
            yield UsageRow(
                line, "openai", kind, day, start, end, project, get(rec, "user_id"),
                get(rec, "api_key_id"), get(rec, "model"),
                parser.flag(get(rec, "batch"), "batch", line),
                get(rec, "service_tier") or "default",
                parser.count(get(rec, "input_tokens"), "input_tokens", line),
                parser.count(get(rec, "input_cached_tokens"), "input_cached_tokens", line),
                parser.count(get(rec, "output_tokens"), "output_tokens", line),
                parser.count(get(rec, "num_model_requests"), "num_model_requests", line),
            )

    return ParsedFile(file_name, fmt, "openai", "usage", kind, rows(), cov)


def read_cost(text: TextIO, header: list[str], file_name: str, fmt: str) -> ParsedFile:
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
        reader = csv.reader(text)
        for line, rec in _rows(reader, len(header), parser, text):
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
                    cov.project_names[project] = opt(rec, "project_name")
            key = opt(rec, "api_key_id")
            if key and opt(rec, "api_key_name"):
                cov.key_names[key] = opt(rec, "api_key_name")
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

    return ParsedFile(file_name, fmt, "openai", "cost", "", rows(), cov)


def check_header(header: list[str], file_name: str) -> None:
    """Refuse headers a reader would misread: blank or repeated column names."""
    seen: set[str] = set()
    for name in header:
        if not name:
            raise ImportFailure(file_name, "the header has an empty column name.", 1)
        if name in seen:
            raise ImportFailure(file_name, f"the header names column '{name}' twice.", 1)
        seen.add(name)


__all__ = ["read_usage", "read_cost", "is_usage_header", "is_cost_header", "check_header"]
