"""Anthropic Admin API reports: ``/v1/organizations/usage_report/messages`` and
``/v1/organizations/cost_report``, and the vocabulary they share with the Console CSVs.

A report page is ``{"data": [bucket, ...], "has_more", "next_page"}``; a bucket holds
``starting_at``/``ending_at`` (RFC 3339) and ``results``. The cost report gives ``amount`` as a
decimal string in **cents**; it becomes exact dollars here (``Decimal / 100`` is exact).

Both routes (CSV and API) are written in one canonical form so that a sync and a CSV of the
same days replace each other: workspaces become projects identified by their *name* (the
Console CSVs name workspaces, never their ids; the API's ``null`` workspace is "Default"),
keys are identified by name for the same reason, cost rows carry the model *family* (the cost
CSV has only the display name), and token types use one vocabulary (``input``,
``cached_input``, ``cache_write_5m``, ``cache_write_1h``, ``output``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from analytics.importers.base import (
    CostRow,
    Coverage,
    FieldParser,
    ImportFailure,
    PageEntry,
    ParsedFile,
    UsageRow,
    page_entries,
)
from analytics.models import model_family

PROVIDER = "anthropic"
DEFAULT_WORKSPACE = "Default"
ENTRY = "entry"
USAGE_KIND = "messages"

# Console CSV and API names of a token type -> the canonical one.
TOKEN_TYPES = {
    "input_no_cache": "input", "uncached_input_tokens": "input", "input": "input",
    "input_cache_read": "cached_input", "cache_read_input_tokens": "cached_input",
    "input_cache_write_5m": "cache_write_5m", "input_cache_write": "cache_write_5m",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write_5m",
    "input_cache_write_1h": "cache_write_1h",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
    "output": "output", "output_tokens": "output",
}
# Values that mean "the standard price" for each qualifier a price can depend on.
_STANDARD_CONTEXT = {"", "≤ 200k", "<= 200k", "0-200k", "not_available"}
_STANDARD_GEO = {"", "not_available", "global"}
_STANDARD_SPEED = {"", "standard", "not_available"}
_STANDARD_TIERS = {"", "standard", "default", "not_available", "message", "messages"}


def token_type(raw: str) -> str:
    """The canonical token type of a CSV or API name (unknown names kept, lower-cased).

    >>> token_type("input_cache_write_5m"), token_type("cache_read_input_tokens")
    ('cache_write_5m', 'cached_input')
    """
    text = raw.strip().lower()
    return TOKEN_TYPES.get(text, text)


def price_qualifiers(context_window: str = "", inference_geo: str = "", speed: str = "",
                     tier: str = "") -> list[str]:
    """What makes a row's price differ from the standard one: priority tier, long context,
    a pinned inference region, fast mode. Empty for the common case."""
    out = []
    if tier.strip().lower() not in _STANDARD_TIERS | {"batch"}:
        out.append(tier.strip().lower())
    if context_window.strip() not in _STANDARD_CONTEXT:
        out.append("long_context")
    if inference_geo.strip().lower() not in _STANDARD_GEO:
        out.append(f"geo_{inference_geo.strip().lower()}")
    if speed.strip().lower() not in _STANDARD_SPEED:
        out.append(f"speed_{speed.strip().lower()}")
    return out


def batch_qualifier(usage_type: str) -> list[str]:
    """``["batch"]`` for Batch API rows: a cost line of its own (half price), while usage
    rows carry it in their ``batch`` column."""
    return ["batch"] if "batch" in usage_type.strip().lower() else []


def service_tier(qualifiers: list[str]) -> str:
    """The usage row's service tier: ``default`` unless the price differs (then the
    qualifiers, e.g. ``long_context``), so the price book never prices such rows at the
    standard rate without saying so."""
    return "+".join(qualifiers) or "default"


def line_item(family: str, kind: str, qualifiers: list[str]) -> str:
    """A readable, unique line item: ``claude-sonnet-4-5, cache write 5m (long_context)``."""
    text = f"{family}, {kind.replace('_', ' ')}" if family else kind.replace("_", " ")
    return f"{text} ({', '.join(qualifiers)})" if qualifiers else text


def workspace_project(name_or_id: str | None, names: Mapping[str, str] | None = None) -> str:
    """The project id of a workspace: its name (``Default`` for the default workspace)."""
    text = (name_or_id or "").strip()
    if not text:
        return DEFAULT_WORKSPACE
    return (names or {}).get(text, text)


def load_report(raw: bytes) -> dict[str, Any] | None:
    """The page if ``raw`` is an Anthropic report page, None if it is some other JSON.

    Undecodable JSON is left to the OpenAI reader, which already explains it.
    """
    try:
        page = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(page, dict) or "object" in page or not isinstance(page.get("data"), list):
        return None
    buckets = page["data"]
    if not buckets and "has_more" in page:
        return page
    if buckets and all(isinstance(b, dict) and "starting_at" in b for b in buckets):
        return page
    return None


def report_kind(page: dict[str, Any]) -> str:
    """'cost' or 'usage' (an empty page is neither and says 'empty')."""
    for bucket in page["data"]:
        for result in bucket.get("results") or []:
            if isinstance(result, dict):
                return "cost" if "amount" in result else "usage"
    return "empty"


def read_reports(pages: list[tuple[str, dict[str, Any]]], kind: str, name: str,
                 workspaces: Mapping[str, str] | None = None,
                 keys: Mapping[str, str] | None = None) -> ParsedFile:
    """One import from the pages of one report ('usage' or 'cost').

    ``workspaces`` and ``keys`` map API ids to Console names (a sync fetches them); without
    them the ids are kept.
    """
    cov = Coverage()
    files = tuple(file_name for file_name, _ in pages)
    if kind == "cost":
        return ParsedFile(name, "anthropic_api_cost", PROVIDER, "cost", "",
                          _cost_rows(pages, cov, workspaces), cov, files, ENTRY)
    return ParsedFile(name, "anthropic_api_usage", PROVIDER, "usage", USAGE_KIND,
                      _usage_rows(pages, cov, workspaces, keys), cov, files, ENTRY)


def _instant(parser: FieldParser, text: Any, column: str, pos: int) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise parser.fail(pos, f"'{column}' holds {str(text)[:40]!r}, not an RFC 3339 time. "
                          "Fetch the report again.") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _bucket_times(parser: FieldParser, bucket: dict[str, Any],
                  position: int) -> tuple[datetime, datetime, date]:
    """A bucket's ``starting_at``/``ending_at`` (RFC 3339 text); its day is the start's."""
    start = _instant(parser, bucket.get("starting_at"), "starting_at", position)
    end = _instant(parser, bucket.get("ending_at"), "ending_at", position)
    if end <= start:
        raise parser.fail(position, "ending_at is not after starting_at.")
    return start, end, start.date()


def _buckets(pages: list[tuple[str, dict[str, Any]]], cov: Coverage) -> Iterator[PageEntry]:
    return page_entries(pages, cov, _bucket_times, ENTRY)


def _text(result: Mapping[str, Any], key: str) -> str:
    value = result.get(key)
    return "" if value is None else str(value).strip()


def _usage_rows(pages: list[tuple[str, dict[str, Any]]], cov: Coverage,
                workspaces: Mapping[str, str] | None,
                keys: Mapping[str, str] | None) -> Iterator[UsageRow]:
    for parser, pos, (start, end, day), r in _buckets(pages, cov):
        creation = r.get("cache_creation") or {}
        if not isinstance(creation, dict):
            raise parser.fail(pos, "'cache_creation' is not a JSON object.")
        uncached = parser.count(r.get("uncached_input_tokens"), "uncached_input_tokens", pos)
        read = parser.count(r.get("cache_read_input_tokens"), "cache_read_input_tokens", pos)
        writes = sum(parser.count(creation.get(k), f"cache_creation.{k}", pos)
                     for k in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"))
        project = workspace_project(_text(r, "workspace_id"), workspaces)
        key_id = _text(r, "api_key_id")
        cov.projects.add(project)
        cov.rows += 1
        tier = _text(r, "service_tier")
        yield UsageRow(
            pos, PROVIDER, USAGE_KIND, day, start, end, project, _text(r, "account_id"),
            (keys or {}).get(key_id, key_id), _text(r, "model"), tier.lower() == "batch",
            service_tier(price_qualifiers(_text(r, "context_window"),
                                          _text(r, "inference_geo"), _text(r, "speed"), tier)),
            uncached + writes + read, read,
            parser.count(r.get("output_tokens"), "output_tokens", pos), 0,
        )


CENTS = Decimal(100)


def _cost_rows(pages: list[tuple[str, dict[str, Any]]], cov: Coverage,
               workspaces: Mapping[str, str] | None) -> Iterator[CostRow]:
    for parser, pos, (_, _, day), r in _buckets(pages, cov):
        if r.get("amount") is None:
            continue
        dollars = parser.amount(r.get("amount"), "amount", pos) / CENTS
        currency = (_text(r, "currency") or "USD").upper()
        project = workspace_project(_text(r, "workspace_id"), workspaces)
        model = _text(r, "model")
        family = model_family(model, PROVIDER) if model else ""
        cost_type = _text(r, "cost_type").lower()
        kind = (token_type(_text(r, "token_type")) if cost_type in ("", "tokens", "token")
                else cost_type)
        if not kind:
            kind = _text(r, "description")
        tier = _text(r, "service_tier")
        qualifiers = price_qualifiers(_text(r, "context_window"), _text(r, "inference_geo"),
                                      _text(r, "speed"), tier) + batch_qualifier(tier)
        cov.projects.add(project)
        cov.rows += 1
        if currency == "USD":
            cov.total_usd += dollars
        yield CostRow(pos, PROVIDER, day, False, project, "", "",
                      line_item(family, kind, qualifiers), family, kind, dollars, currency,
                      None, "")


__all__ = ["load_report", "report_kind", "read_reports", "token_type", "price_qualifiers",
           "service_tier", "line_item", "workspace_project", "ImportFailure"]
