"""Anthropic's Admin API as a sync source: the messages usage report and the cost report.

The reports name workspaces and keys by id while the Console CSVs name them, so the sync
first lists workspaces and keys and hands the importer id -> name tables; a sync and a CSV of
the same days then speak for the same projects and replace each other. Costs arrive in cents
and are turned into dollars by the importer.
"""

from __future__ import annotations

from datetime import date

from analytics.importers.anthropic_api import read_reports
from analytics.importers.base import ParsedFile
from analytics.sync.http import HttpClient
from analytics.sync.source import Endpoint, Names, Pages, ProviderApi, fetch_listing

VERSION = "2023-06-01"
_LIMIT = 31  # daily buckets per page, the API's maximum

ENDPOINTS = (
    Endpoint("messages", "/v1/organizations/usage_report/messages",
             tuple(("group_by[]", g) for g in (
                 "api_key_id", "workspace_id", "model", "service_tier", "context_window",
                 "inference_geo")), _LIMIT),
    Endpoint("cost", "/v1/organizations/cost_report",
             (("group_by[]", "workspace_id"), ("group_by[]", "description")), _LIMIT),
)


def window(first: date, after_last: date) -> list[tuple[str, str]]:
    return [("starting_at", f"{first.isoformat()}T00:00:00Z"),
            ("ending_at", f"{after_last.isoformat()}T00:00:00Z"), ("bucket_width", "1d")]


def names(client: HttpClient) -> Names:
    return {"workspaces": fetch_listing(client, "/v1/organizations/workspaces"),
            "keys": fetch_listing(client, "/v1/organizations/api_keys")}


def parse(endpoint: Endpoint, pages: Pages, label: str, lookups: Names) -> ParsedFile:
    kind = "cost" if endpoint.name == "cost" else "usage"
    return read_reports(pages, kind, label, lookups.get("workspaces"), lookups.get("keys"))


API = ProviderApi(
    name="anthropic", label="Anthropic", base_url="https://api.anthropic.com",
    key_env="ANTHROPIC_ADMIN_KEY", endpoints=ENDPOINTS,
    headers=lambda key: {"x-api-key": key, "anthropic-version": VERSION},
    window=window, parse=parse, names=names)
