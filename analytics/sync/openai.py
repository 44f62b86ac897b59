"""OpenAI's Admin API as a sync source: the usage endpoints that carry spend, and costs.

Grouping asks for every dimension the store keeps (project, user, key, model, batch, service
tier for completions). Images can also be grouped by size and source, which the store has no
column for: asking would split one stored row into several with the same natural key, so
those are left out. Pages are read by the same importer as saved Admin API pages.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from analytics.importers.base import ParsedFile
from analytics.importers.openai_api import read_pages
from analytics.sync.source import Endpoint, Names, Pages, ProviderApi

_BY = ("project_id", "user_id", "api_key_id", "model")
_USAGE_LIMIT = 31  # daily buckets per page, the API's maximum
_COSTS_LIMIT = 180


def _usage(kind: str, extra: tuple[str, ...] = ()) -> Endpoint:
    return Endpoint(kind, f"/v1/organization/usage/{kind}",
                    tuple(("group_by", g) for g in (*_BY, *extra)), _USAGE_LIMIT)


ENDPOINTS = (
    _usage("completions", ("batch", "service_tier")),
    _usage("embeddings"),
    _usage("images"),
    _usage("audio_speeches"),
    _usage("audio_transcriptions"),
    Endpoint("costs", "/v1/organization/costs",
             (("group_by", "project_id"), ("group_by", "line_item")), _COSTS_LIMIT),
)


def _unix(day: date) -> str:
    return str(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()))


def window(first: date, after_last: date) -> list[tuple[str, str]]:
    return [("start_time", _unix(first)), ("end_time", _unix(after_last)),
            ("bucket_width", "1d")]


def parse(endpoint: Endpoint, pages: Pages, label: str, names: Names) -> ParsedFile:
    del names  # OpenAI reports carry ids the exports use too
    return read_pages(pages, endpoint.name, label)


API = ProviderApi(
    name="openai", label="OpenAI", base_url="https://api.openai.com", key_env="OPENAI_ADMIN_KEY",
    endpoints=ENDPOINTS, headers=lambda key: {"Authorization": f"Bearer {key}"},
    window=window, parse=parse)
