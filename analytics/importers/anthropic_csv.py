"""The Anthropic Console's exports: token usage (``claude_api_tokens_*``) and cost
(``claude_api_cost_*``), in their current and older column sets.

Facts these readers rely on: one row per day x model x key x workspace (x token type for
cost); the day as ``usage_date_utc`` (``2026-09-01``); workspaces and keys by *name*; the cost
export names models by display name ("Claude Sonnet 4.5") and gives dollars; the token export
splits input into uncached, cache writes (5 minute and 1 hour; older exports had a single
cache-write column) and cache reads; ``context_window`` uses the character ``≤``.

Canonical form (see ``anthropic_api``): ``input_tokens`` = uncached + cache writes + cache
reads, ``cached_input_tokens`` = cache reads. The usage table has no column for cache writes,
so estimates price them as plain input until it has one; billed cost is unaffected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from analytics.importers.anthropic_api import (
    PROVIDER,
    USAGE_KIND,
    batch_qualifier,
    line_item,
    price_qualifiers,
    service_tier,
    token_type,
    workspace_project,
)
from analytics.importers.base import (
    REDOWNLOAD,
    CostRow,
    Coverage,
    FieldParser,
    ParsedFile,
    UsageRow,
)
from analytics.importers.openai_csv import _rows
from analytics.models import display_to_api_family, model_family

DAY = "usage_date_utc"
TOKEN_REQUIRED = (DAY, "usage_output_tokens")
COST_REQUIRED = (DAY, "model", "cost_usd")
# Columns only an Anthropic export has (for telling a damaged export from another file).
ANTHROPIC_COLUMNS = frozenset({
    DAY, "usage_output_tokens", "usage_input_tokens_no_cache", "usage_input_tokens_cache_read",
    "usage_input_tokens_cache_write_5m", "usage_input_tokens_cache_write_1h", "cost_usd",
    "list_price_usd", "model_version",
})
_WRITES = ("usage_input_tokens_cache_write_5m", "usage_input_tokens_cache_write_1h",
           "usage_input_tokens_cache_write")  # the last: older exports, one column


def is_token_header(header: list[str]) -> bool:
    return all(c in header for c in TOKEN_REQUIRED)


def is_cost_header(header: list[str]) -> bool:
    return all(c in header for c in COST_REQUIRED)


def is_anthropic_header(header: list[str]) -> bool:
    """Any Anthropic column at all: such a header is read (or refused) here."""
    return bool(ANTHROPIC_COLUMNS.intersection(header))


Getter = Callable[[list[str], str], str]


def _getter(header: list[str]) -> Getter:
    idx = {name: i for i, name in enumerate(header)}

    def get(record: list[str], name: str) -> str:
        i = idx.get(name)
        return record[i].strip() if i is not None else ""

    return get


class _Days:
    """``usage_date_utc`` -> (day, bucket start, bucket end), parsed once per distinct day."""

    def __init__(self, parser: FieldParser) -> None:
        self.parser = parser
        self.cache: dict[str, tuple[date, datetime, datetime]] = {}

    def __call__(self, text: str, line: int) -> tuple[date, datetime, datetime]:
        hit = self.cache.get(text)
        if hit is None:
            try:
                day = date.fromisoformat(text[:10])
            except ValueError:
                raise self.parser.fail(line, f"column '{DAY}' holds {text[:40]!r}; expected a "
                                       f"date such as 2026-09-01. {REDOWNLOAD}") from None
            start = datetime(day.year, day.month, day.day)
            hit = self.cache[text] = (day, start, start + timedelta(days=1))
        return hit


def read_tokens(text: TextIO, header: list[str], file_name: str,
                source: bytes | Path) -> ParsedFile:
    """The token export -> usage rows of kind 'messages'."""
    parser = FieldParser(file_name)
    cov = Coverage()
    get = _getter(header)
    days = _Days(parser)
    model_col = "model_version" if "model_version" in header else "model"

    def count(rec: list[str], column: str, line: int) -> int:
        return parser.count(get(rec, column), column, line)

    def rows() -> Iterator[UsageRow]:
        for line, rec in _rows(text, len(header), parser, source):
            day, start, end = days(get(rec, DAY), line)
            cov.days.add(day)
            read = count(rec, "usage_input_tokens_cache_read", line)
            writes = sum(count(rec, c, line) for c in _WRITES)
            uncached = count(rec, "usage_input_tokens_no_cache", line)
            project = workspace_project(get(rec, "workspace"))
            usage_type = get(rec, "usage_type")
            cov.projects.add(project)
            cov.rows += 1
            yield UsageRow(
                line, PROVIDER, USAGE_KIND, day, start, end, project, "", get(rec, "api_key"),
                get(rec, model_col), bool(batch_qualifier(usage_type)),
                service_tier(price_qualifiers(get(rec, "context_window"),
                                              get(rec, "inference_geo"), get(rec, "speed"),
                                              usage_type)),
                uncached + writes + read, read, count(rec, "usage_output_tokens", line), 0)

    return ParsedFile(file_name, "anthropic_tokens_csv", PROVIDER, "usage", USAGE_KIND, rows(),
                      cov, (file_name,))


def read_cost(text: TextIO, header: list[str], file_name: str,
              source: bytes | Path) -> ParsedFile:
    """The cost export -> billed cost rows in dollars, one per token type."""
    parser = FieldParser(file_name)
    cov = Coverage()
    get = _getter(header)
    days = _Days(parser)
    families: dict[str, str] = {}

    def family(display: str) -> str:
        if display not in families:
            families[display] = model_family(display_to_api_family(display), PROVIDER)
        return families[display]

    def rows() -> Iterator[CostRow]:
        for line, rec in _rows(text, len(header), parser, source):
            day, _, _ = days(get(rec, DAY), line)
            cov.days.add(day)
            raw = get(rec, "cost_usd")
            if raw == "":
                continue  # a day without spend
            amount = parser.amount(raw, "cost_usd", line)
            cost_type = get(rec, "cost_type").lower()
            kind = (token_type(get(rec, "token_type")) if cost_type in ("", "token", "tokens")
                    else cost_type)
            usage_type = get(rec, "usage_type")
            qualifiers = price_qualifiers(get(rec, "context_window"), get(rec, "inference_geo"),
                                          get(rec, "speed"), usage_type)
            qualifiers += batch_qualifier(usage_type)
            model = family(get(rec, "model")) if get(rec, "model") else ""
            project = workspace_project(get(rec, "workspace"))
            cov.projects.add(project)
            cov.rows += 1
            cov.total_usd += amount
            yield CostRow(line, PROVIDER, day, False, project, get(rec, "api_key"), "",
                          line_item(model, kind, qualifiers), model, kind, amount, "USD", None,
                          "")

    return ParsedFile(file_name, "anthropic_cost_csv", PROVIDER, "cost", "", rows(), cov,
                      (file_name,))


__all__ = ["read_tokens", "read_cost", "is_token_header", "is_cost_header",
           "is_anthropic_header", "ANTHROPIC_COLUMNS", "TOKEN_REQUIRED", "COST_REQUIRED"]
