"""Run a sync: fetch every endpoint's pages, read them with the file importers, then import.

All pages of all endpoints are fetched and every row parsed *before* anything is written, so a
sync that fails on the network or on a malformed answer leaves the store as it was (the
failure is recorded in ``sync_state`` and raised as an alert). Each endpoint is then imported
in its own transaction through ``ingest.import_parsed``: the same replace-by-day-and-project
rule as a file, so a sync and a CSV of the same days count once.

The admin key is a parameter: it comes from the environment, Streamlit secrets or the page's
session, is sent only in a request header, and is never stored, logged or put in a message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from analytics.access import Principal
from analytics.importers.base import ImportFailure, ParsedFile
from analytics.ingest import ImportResult, import_parsed
from analytics.sync import anthropic, openai, state
from analytics.sync.http import HttpClient, RetryPolicy, SyncError
from analytics.sync.source import Endpoint, Pages, ProviderApi, fetch_pages

PROVIDERS: dict[str, ProviderApi] = {api.name: api for api in (openai.API, anthropic.API)}
LOOKBACK_DAYS = 3  # providers fill in recent days late: re-fetch these on every run
FIRST_SYNC_DAYS = 30  # how far back a first sync reaches without --since

Progress = Callable[[float, str], None]


@dataclass
class SyncResult:
    """What one provider's sync did: the imports it made, or why it failed."""

    provider: str
    ok: bool
    first_day: date | None = None
    last_day: date | None = None
    imports: list[ImportResult] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> str:
        label = PROVIDERS[self.provider].label
        if not self.ok:
            return f"{label}: sync failed: {self.error}"
        rows = sum(r.rows for r in self.imports)
        return (f"{label}: synced {self.first_day}..{self.last_day}, {rows:,} rows from "
                f"{len(self.imports)} endpoint(s)")


def admin_key(provider: str, secrets: Mapping[str, object] | None = None) -> str | None:
    """The provider's admin key from the environment (``OPENAI_ADMIN_KEY``,
    ``ANTHROPIC_ADMIN_KEY``) or, for the app, from Streamlit secrets under the same name."""
    name = api_of(provider).key_env
    value = os.environ.get(name) or (secrets.get(name) if secrets is not None else None)
    text = str(value or "").strip()
    return text or None


def api_of(provider: str) -> ProviderApi:
    if provider not in PROVIDERS:
        raise ValueError(f"Unknown provider '{provider}'. Choose one of: "
                         f"{', '.join(PROVIDERS)}.")
    return PROVIDERS[provider]


def _start(endpoint: Endpoint, last: Mapping[str, date | None], since: date | None,
           today: date) -> date:
    if since is not None:
        return since
    stored = last.get(endpoint.name)
    if stored is not None:
        return stored - timedelta(days=LOOKBACK_DAYS)
    return today - timedelta(days=FIRST_SYNC_DAYS)


def _materialised(parsed: ParsedFile) -> ParsedFile:
    """Parse every row now (filling the coverage), so a bad answer fails before any write."""
    rows = list(parsed.rows)
    return dataclasses.replace(parsed, rows=iter(rows))


def _digest(pages: Pages) -> str:
    digest = hashlib.sha256()
    for _, page in pages:
        digest.update(json.dumps(page, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def sync_provider(engine: Engine, principal: Principal, provider: str, key: str | None, *,
                  since: date | None = None, today: date | None = None,
                  base_url: str | None = None, progress: Progress | None = None,
                  policy: RetryPolicy | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> SyncResult:
    """Fetch ``provider``'s usage and cost reports from ``since`` (default: a few days before
    the last synced day) to ``today`` and import them. Failures are returned, recorded in
    ``sync_state`` and raised as an alert; only a missing key or role raises."""
    principal.require("sync provider data", owner_only=True)
    api = api_of(provider)
    if not key:
        raise ValueError(f"No admin key for {api.label}: set {api.key_env} in the environment "
                         "or in Streamlit secrets, or enter it on the Sync page.")
    today = today or datetime.now(UTC).date()
    if since is not None and since > today:
        raise ValueError(f"--since {since} is after today ({today}).")
    report = progress or (lambda fraction, text: None)
    client = HttpClient(base_url or api.base_url, api.headers(key), policy=policy, sleep=sleep)
    last = state.last_days(engine, provider)
    steps = len(api.endpoints) * 2
    parsed: list[tuple[Endpoint, ParsedFile, str]] = []
    starts = {e.name: min(_start(e, last, since, today), today) for e in api.endpoints}
    result = SyncResult(provider, False, min(starts.values()), today)
    try:
        lookups = api.names(client)
        for i, endpoint in enumerate(api.endpoints):
            report(i / steps, f"{api.label}: fetching {endpoint.name}")
            pages = fetch_pages(
                client, endpoint, api.window(starts[endpoint.name], today + timedelta(days=1)),
                lambda n, e=endpoint, i=i: report(i / steps, f"{api.label}: {e.name}, page {n}"))
            label = (f"{api.label} Admin API {endpoint.name} "
                     f"{starts[endpoint.name]}..{today}")
            parsed.append((endpoint, _materialised(api.parse(endpoint, pages, label, lookups)),
                           _digest(pages)))
    except (SyncError, ImportFailure) as exc:
        return _failed(engine, result, [e.name for e in api.endpoints], str(exc))
    done = len(api.endpoints)
    for j, (endpoint, item, digest) in enumerate(parsed):
        report((done + j) / steps, f"{api.label}: importing {endpoint.name}")
        try:
            imported = import_parsed(engine, item, digest, principal.username)
        except ImportFailure as exc:
            return _failed(engine, result, [e.name for e, _, _ in parsed[j:]], str(exc))
        result.imports.append(imported)
        state.record_success(engine, provider, endpoint.name, item.coverage.last_day,
                             f"{imported.rows:,} rows ({imported.new:,} new, "
                             f"{imported.replaced:,} replaced)")
    report(1.0, f"{api.label}: done")
    result.ok = True
    return result


def _failed(engine: Engine, result: SyncResult, endpoints: list[str],
            message: str) -> SyncResult:
    state.record_failure(engine, result.provider, endpoints, message)
    result.error = message
    return result


__all__ = ["PROVIDERS", "SyncResult", "admin_key", "api_of", "sync_provider", "LOOKBACK_DAYS",
           "FIRST_SYNC_DAYS"]
