"""What a provider's Admin API looks like to a sync: its endpoints, how a date window and the
key are sent, how pages are followed, and which importer reads them.

Both providers page the same way (``has_more`` + ``next_page``, passed back as ``page``), so
the paging loop lives here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from analytics.importers.base import ParsedFile
from analytics.sync.http import HttpClient, SyncError

# A runaway cursor (a server that always says has_more) must end: 60 days of daily buckets
# need a handful of pages, so this is far above any real sync.
MAX_PAGES = 1000

Pages = list[tuple[str, dict[str, Any]]]
Names = Mapping[str, Mapping[str, str]]  # lookup tables a provider needs (ids -> names)


@dataclass(frozen=True)
class Endpoint:
    """One report endpoint: its name in ``sync_state``, path, fixed parameters (grouping),
    and the largest page of daily buckets it allows."""

    name: str
    path: str
    params: tuple[tuple[str, str], ...]
    limit: int


@dataclass(frozen=True)
class ProviderApi:
    """A provider's Admin API as the sync uses it."""

    name: str
    label: str
    base_url: str
    key_env: str
    endpoints: tuple[Endpoint, ...]
    headers: Callable[[str], dict[str, str]]
    window: Callable[[date, date], list[tuple[str, str]]]  # first day, day after the last
    parse: Callable[[Endpoint, Pages, str, Names], ParsedFile]
    names: Callable[[HttpClient], Names] = lambda client: {}


def fetch_pages(client: HttpClient, endpoint: Endpoint, window: list[tuple[str, str]],
                on_page: Callable[[int], None] | None = None) -> Pages:
    """Every page of ``endpoint`` for the window, following ``next_page`` until ``has_more``
    is false. Each page is shape-checked here so a wrong answer fails before any import."""
    params = [*window, *endpoint.params, ("limit", str(endpoint.limit))]
    pages: Pages = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = client.get_json(endpoint.path, params + ([("page", cursor)] if cursor else []))
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise SyncError(f"{client.base_url}{endpoint.path} answered with something that is "
                            "not a report page. Check the API address.")
        pages.append((f"{endpoint.path} page {len(pages) + 1}", page))
        if on_page is not None:
            on_page(len(pages))
        if not page.get("has_more"):
            return pages
        cursor = page.get("next_page")
        if not cursor or cursor in seen or len(pages) >= MAX_PAGES:
            raise SyncError(f"{client.base_url}{endpoint.path} says it has more pages but gives "
                            "no new cursor to fetch them. Try again later.")
        seen.add(str(cursor))
        cursor = str(cursor)


def fetch_listing(client: HttpClient, path: str) -> dict[str, str]:
    """id -> name from a list endpoint paged by ``after_id`` (workspaces, API keys)."""
    out: dict[str, str] = {}
    after: str | None = None
    for _ in range(MAX_PAGES):
        page = client.get_json(path, [("limit", "100")] + ([("after_id", after)] if after
                                                          else []))
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise SyncError(f"{client.base_url}{path} answered with something that is not a "
                            "list. Check the API address.")
        for item in data:
            if isinstance(item, dict) and item.get("id") and item.get("name"):
                out[str(item["id"])] = str(item["name"])
        if not page.get("has_more") or not page.get("last_id") or page["last_id"] == after:
            return out
        after = str(page["last_id"])
    raise SyncError(f"{client.base_url}{path} never stops paging. Try again later.")


__all__ = ["Endpoint", "ProviderApi", "fetch_pages", "fetch_listing", "MAX_PAGES"]
