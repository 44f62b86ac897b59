"""OpenAI Admin API pages: ``/v1/organization/usage/<endpoint>`` and ``/v1/organization/costs``.

A page is ``{"object": "page", "data": [bucket, ...], "has_more", "next_page"}``; each bucket
holds ``results``. Costs give ``amount.value`` as a JSON number or as a string with 39
decimals; both become exact decimals. Several pages of one endpoint are one import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from analytics.importers.base import (
    CostRow,
    Coverage,
    FieldParser,
    ImportFailure,
    NotAnExport,
    PageEntry,
    ParsedFile,
    UsageRow,
    page_entries,
    parse_line_item,
)

USAGE_RESULT_PREFIX = "organization.usage."
COST_RESULT = "organization.costs.result"
# A page is often one long line: errors count its entries (buckets and results) instead.
ENTRY = "entry"


def load_page(raw: bytes, file_name: str) -> dict[str, Any]:
    """Parse and shape-check one page, so a wrong or truncated file fails before any row."""
    try:
        page = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ImportFailure(file_name, "is not UTF-8 text. Save the API response exactly as "
                            "it arrived, or fetch the page again.") from None
    except json.JSONDecodeError as exc:
        raise ImportFailure(file_name, f"is not valid JSON ({exc.msg}); the file may be "
                            "truncated. Fetch the page again.", exc.lineno) from None
    except (ValueError, RecursionError):  # a number of thousands of digits, absurd nesting
        raise ImportFailure(file_name, "is JSON no API returns (an absurdly long number or "
                            "deep nesting). Fetch the page again.") from None
    if not isinstance(page, dict) or page.get("object") != "page" or not isinstance(
            page.get("data"), list):
        raise NotAnExport(file_name, "is JSON but not an OpenAI Admin API page (expected "
                          '{"object": "page", "data": [...]}).')
    return page


def page_kind(page: dict[str, Any], file_name: str) -> str:
    """'costs' or the usage endpoint ('completions', 'embeddings', ...) the page came from."""
    for bucket in page["data"]:
        results = bucket.get("results") if isinstance(bucket, dict) else None
        for result in results if isinstance(results, list) else []:
            obj = str(result.get("object", "")) if isinstance(result, dict) else ""
            if obj == COST_RESULT:
                return "costs"
            if obj.startswith(USAGE_RESULT_PREFIX) and obj.endswith(".result"):
                return obj.removeprefix(USAGE_RESULT_PREFIX).removesuffix(".result")
    return "empty"


def read_pages(pages: list[tuple[str, dict[str, Any]]], kind: str, name: str) -> ParsedFile:
    """One import from the pages of a single endpoint (usage kind or 'costs')."""
    cov = Coverage()
    files = tuple(file_name for file_name, _ in pages)
    if kind == "costs":
        return ParsedFile(name, "openai_api_costs", "openai", "cost", "",
                          _cost_rows(pages, cov), cov, files, ENTRY)
    return ParsedFile(name, f"openai_api_usage_{kind}", "openai", "usage", kind,
                      _usage_rows(pages, kind, cov), cov, files, ENTRY)


def _buckets(pages: list[tuple[str, dict[str, Any]]], cov: Coverage) -> Iterator[PageEntry]:
    """Every result of every page, its bucket timed from ``start_time``/``end_time`` (epoch
    seconds, as the Admin API gives them)."""
    return page_entries(pages, cov, lambda parser, bucket, position: parser.bucket(
        bucket.get("start_time"), bucket.get("end_time"), position), ENTRY)


def _texts(parser: FieldParser, pos: int, result: dict[str, Any]) -> Callable[[str], str]:
    """A reader of the result's text fields: a JSON object or list where an id or a name
    belongs is a damaged page, not text to store."""

    def text(key: str) -> str:
        value = result.get(key)
        if isinstance(value, dict | list):
            raise parser.fail(pos, f"'{key}' holds a JSON {type(value).__name__}, not text. "
                              "Fetch the page again.")
        return "" if value is None else str(value).strip()

    return text


def _usage_rows(pages: list[tuple[str, dict[str, Any]]], kind: str,
                cov: Coverage) -> Iterator[UsageRow]:
    for parser, pos, (start, end, day), r in _buckets(pages, cov):
        text = _texts(parser, pos, r)
        project = text("project_id")
        cov.projects.add(project)
        cov.rows += 1
        yield UsageRow(
            pos, "openai", kind, day, start, end, project, text("user_id"),
            text("api_key_id"), text("model"),
            parser.flag(r.get("batch") if r.get("batch") is not None else False, "batch", pos),
            text("service_tier") or "default",
            parser.count(r.get("input_tokens"), "input_tokens", pos),
            parser.count(r.get("input_cached_tokens"), "input_cached_tokens", pos),
            parser.count(r.get("output_tokens"), "output_tokens", pos),
            parser.count(r.get("num_model_requests"), "num_model_requests", pos),
        )


def _cost_rows(pages: list[tuple[str, dict[str, Any]]], cov: Coverage) -> Iterator[CostRow]:
    for parser, pos, (_, _, day), r in _buckets(pages, cov):
        text = _texts(parser, pos, r)
        amount_obj = r.get("amount")
        if not isinstance(amount_obj, dict) or amount_obj.get("value") is None:
            continue  # no spend in this result
        amount = parser.amount(amount_obj.get("value"), "amount.value", pos)
        currency = str(amount_obj.get("currency") or "usd").upper()
        project = text("project_id")
        if project:
            cov.projects.add(project)
            if text("project_name"):
                cov.project_names[project] = parser.name(text("project_name"),
                                                         "project_name", pos)
        line_item = text("line_item")
        model, token_type = parse_line_item(line_item) if line_item else ("", "")
        quantity = r.get("quantity")
        cov.rows += 1
        if currency == "USD":
            cov.total_usd += amount
        yield CostRow(
            pos, "openai", day, not project, project, text("api_key_id"),
            text("user_id"), line_item, model, token_type, amount, currency,
            parser.amount(quantity, "quantity", pos) if quantity is not None else None,
            text("quantity_unit"),
        )
