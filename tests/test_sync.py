"""Admin API sync against local HTTP servers that replay the providers' response shapes.

The pages are built here (the shapes of ../shared/samples/openai-small/api: pagination with
``next_page``, ``amount.value`` as a 39-decimal string), so the test stands alone.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from analytics.access import SYSTEM, Principal
from analytics.ingest import import_sources
from analytics.store import AlertRow, ApiKey, Cost, Project, SyncState, Usage, get_engine
from analytics.sync import RetryPolicy, admin_key, sync_provider, sync_status
from analytics.sync.http import HttpClient, SyncError, retry_after_seconds
from tests.helpers import open_app, store_snapshot

DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(5)]
TODAY = DAYS[-1]
KEY = "sk-admin-test-0123456789abcdef"
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.02)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _bucket(day: date, results: list[dict]) -> dict:
    return {"object": "bucket", "start_time": _epoch(day), "end_time": _epoch(day) + 86400,
            "start_time_iso": f"{day}T00:00:00+00:00", "results": results}


def _usage_results(i: int) -> list[dict]:
    return [{"object": "organization.usage.completions.result", "input_tokens": 1000 + i,
             "output_tokens": 200 + i, "num_model_requests": 10 + i,
             "input_cached_tokens": 100, "project_id": project, "user_id": "user-a",
             "api_key_id": f"key_{project[-1]}", "model": "gpt-4o-mini-2024-07-18",
             "batch": batch, "service_tier": "default"}
            for project in ("proj_A", "proj_B") for batch in (False, True)]


def _cost_results(i: int) -> list[dict]:
    return [{"object": "organization.costs.result",
             "amount": {"value": f"{1 + i}.{'125' + '0' * 36}", "currency": "usd"},
             "line_item": f"gpt-4o-mini-2024-07-18, {kind}", "project_id": project,
             "organization_id": "org-x", "quantity": 1000 + i, "quantity_unit": "tokens"}
            for project in ("proj_A", "proj_B") for kind in ("input", "output")]


OPENAI_BUCKETS = {
    "/v1/organization/usage/completions": [_bucket(d, _usage_results(i))
                                           for i, d in enumerate(DAYS)],
    "/v1/organization/costs": [_bucket(d, _cost_results(i)) for i, d in enumerate(DAYS)],
}
EMPTY_USAGE = ("embeddings", "images", "audio_speeches", "audio_transcriptions")
PAGE_SIZE = 2  # buckets per page: five days make three pages, so paging is exercised


class ReplayServer:
    """Serves report pages filtered by the window and cut into pages, after optional faults.

    ``faults`` is consumed one per request: ``"429"`` (with Retry-After: 2), ``"500"``,
    ``"truncated"`` (a body shorter than its Content-Length), ``"badjson"`` (a complete
    response holding half a JSON document).
    """

    def __init__(self, buckets: dict[str, list[dict]], listings: dict[str, list[dict]],
                 time_keys: tuple[str, str]) -> None:
        self.buckets, self.listings, self.time_keys = buckets, listings, time_keys
        self.faults: list[str] = []
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                server.requests.append((url.path, query))
                server.headers.append(dict(self.headers))
                fault = server.faults.pop(0) if server.faults else ""
                if fault in ("429", "500"):
                    self.send_response(int(fault))
                    if fault == "429":
                        self.send_header("Retry-After", "2")
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "slow down"}}')
                    return
                status, body = server.answer(url.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if fault == "badjson":
                    data = data[: len(data) // 2]
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault == "truncated":
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        if path in self.listings:
            return 200, {"data": self.listings[path], "has_more": False, "first_id": None,
                         "last_id": None}
        if path not in self.buckets:
            return 404, {"error": {"message": f"no route {path}"}}
        lo, hi = (query[k][0] for k in self.time_keys)
        chosen = [b for b in self.buckets[path] if _within(b, lo, hi)]
        offset = int(query.get("page", ["page_0"])[0].removeprefix("page_"))
        data = chosen[offset:offset + PAGE_SIZE]
        more = offset + PAGE_SIZE < len(chosen)
        page = {"data": data, "has_more": more,
                "next_page": f"page_{offset + PAGE_SIZE}" if more else None}
        return 200, ({"object": "page", **page} if "start_time" in self.time_keys else page)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _within(bucket: dict, lo: str, hi: str) -> bool:
    if "start_time" in bucket:
        return int(lo) <= bucket["start_time"] < int(hi)
    return lo <= bucket["starting_at"] < hi


@pytest.fixture
def openai_server() -> Iterator[ReplayServer]:
    buckets = dict(OPENAI_BUCKETS)
    for kind in EMPTY_USAGE:
        buckets[f"/v1/organization/usage/{kind}"] = [_bucket(d, []) for d in DAYS]
    server = ReplayServer(buckets, {}, ("start_time", "end_time"))
    yield server
    server.close()


def _sync(engine: Engine, server: ReplayServer, waits: list[float] | None = None,
          since: date | None = DAYS[0], today: date = TODAY, provider: str = "openai",
          policy: RetryPolicy = FAST):
    return sync_provider(engine, SYSTEM, provider, KEY, since=since, today=today,
                         base_url=server.url, policy=policy,
                         sleep=(waits.append if waits is not None else lambda s: None))


def _facts(engine: Engine) -> dict[str, list[tuple]]:
    """Every stored fact, without ids and import ids, in a stable order."""
    out = {}
    for model in (Usage, Cost, Project, ApiKey):
        table = model.__table__
        cols = [c for c in table.columns if c.name not in ("id", "import_id")]
        with engine.connect() as conn:
            out[table.name] = sorted(tuple(_plain(v) for v in row)
                                     for row in conn.execute(select(*cols)).all())
    return out


def _plain(value: object) -> str:
    """Text that is equal across backends (PostgreSQL pads decimals, SQLite keeps floats)."""
    if isinstance(value, Decimal | float):
        return format(Decimal(str(value)).normalize(), "f")
    return str(value)


def _page_files(tmp: Path) -> list[Path]:
    """The same report pages saved as files, as a person would import them."""
    paths = []
    for path, buckets in OPENAI_BUCKETS.items():
        for n in range(0, len(buckets), PAGE_SIZE):
            more = n + PAGE_SIZE < len(buckets)
            page = {"object": "page", "data": buckets[n:n + PAGE_SIZE], "has_more": more,
                    "next_page": f"page_{n + PAGE_SIZE}" if more else None}
            file = tmp / f"{path.rsplit('/', 1)[1]}_page{n}.json"
            file.write_text(json.dumps(page))
            paths.append(file)
    return paths


def test_sync_equals_importing_the_same_pages_as_files(engine, openai_server, tmp_path):
    result = _sync(engine, openai_server)
    assert result.ok, result.error
    files_store = get_engine(f"sqlite:///{tmp_path / 'files.db'}")
    imported = import_sources(files_store, [(p.name, p) for p in _page_files(tmp_path)])
    assert all(r.ok for r in imported)
    assert _facts(engine) == _facts(files_store)
    # hand-computed: 5 days x 2 projects x 2 line items, amounts (1+i).125 each
    with engine.connect() as conn:
        total = conn.execute(select(func.sum(Cost.amount))).scalar_one()
        usage_rows = conn.execute(select(func.count()).select_from(Usage)).scalar_one()
    assert total == sum(Decimal(f"{1 + i}.125") * 4 for i in range(5))
    assert usage_rows == 5 * 4
    completions = [q for p, q in openai_server.requests if p.endswith("/completions")]
    assert len(completions) == 3  # pages of 2 + 2 + 1 days, followed by next_page
    assert completions[0]["group_by"] == ["project_id", "user_id", "api_key_id", "model",
                                          "batch", "service_tier"]
    assert all(h.get("Authorization") == f"Bearer {KEY}" for h in openai_server.headers)


def test_sync_and_files_of_the_same_days_count_once(engine, openai_server, tmp_path):
    import_sources(engine, [(p.name, p) for p in _page_files(tmp_path)])
    before = _facts(engine)
    assert _sync(engine, openai_server).ok
    assert _facts(engine) == before
    import_sources(engine, [(p.name, p) for p in _page_files(tmp_path)])
    assert _facts(engine) == before


def test_429_with_retry_after_and_500_and_truncated_bodies_are_retried(engine, openai_server):
    openai_server.faults = ["429", "500", "truncated", "", "badjson"]
    waits: list[float] = []
    result = _sync(engine, openai_server, waits, policy=RetryPolicy(4, base=0.01, cap=0.02))
    assert result.ok, result.error
    assert waits[0] == 2.0  # Retry-After: 2 outweighs the 0.01 s backoff
    assert len(waits) == 4 and all(w <= 0.02 for w in waits[1:])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Usage)).scalar_one() == 20


def test_a_failed_sync_changes_nothing_and_raises_an_alert(engine, openai_server, tmp_path):
    import_sources(engine, [(p.name, p) for p in _page_files(tmp_path)[:2]])
    before, facts = store_snapshot(engine), _facts(engine)
    # completions (3 pages) and four empty endpoints succeed, then costs fails every time
    openai_server.faults = [""] * 7 + ["500"] * FAST.attempts
    result = _sync(engine, openai_server)
    assert not result.ok and "did not answer after 3 attempts" in result.error
    assert store_snapshot(engine) == before and _facts(engine) == facts
    status = sync_status(engine)
    assert set(status["status"]) == {"failed"} and len(status) == 6
    with engine.connect() as conn:
        alerts = conn.execute(select(AlertRow.source, AlertRow.message)).all()
    assert [a.source for a in alerts] == ["sync"] and KEY not in alerts[0].message
    # the same failure again refreshes the alert instead of repeating it
    openai_server.faults = [""] * 7 + ["500"] * FAST.attempts
    assert not _sync(engine, openai_server).ok
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AlertRow)).scalar_one() == 1


def test_a_truncated_answer_that_never_heals_fails_cleanly(engine, openai_server):
    openai_server.faults = ["truncated"] * FAST.attempts
    before = store_snapshot(engine)
    result = _sync(engine, openai_server)
    assert not result.ok and "cut short" in result.error
    assert store_snapshot(engine) == before


def test_a_refused_key_fails_at_once_without_showing_the_key():
    policy_sleeps: list[float] = []

    class Refusing(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(401)
            self.end_headers()
            self.wfile.write(json.dumps({"error": {"message": f"Incorrect API key {KEY}"}})
                             .encode())

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = HttpClient(f"http://127.0.0.1:{httpd.server_address[1]}",
                            {"Authorization": f"Bearer {KEY}"}, sleep=policy_sleeps.append)
        with pytest.raises(SyncError) as err:
            client.get_json("/v1/organization/costs")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "refused the admin key" in str(err.value) and KEY not in str(err.value)
    assert policy_sleeps == []


def test_incremental_sync_starts_a_few_days_before_the_last_synced_day(engine, openai_server):
    assert _sync(engine, openai_server, since=None, today=DAYS[2]).ok
    first = [q for p, q in openai_server.requests if p.endswith("/costs")][0]
    assert int(first["start_time"][0]) == _epoch(DAYS[2] - timedelta(days=30))
    openai_server.requests.clear()
    assert _sync(engine, openai_server, since=None, today=TODAY).ok
    again = [q for p, q in openai_server.requests if p.endswith("/costs")][0]
    assert int(again["start_time"][0]) == _epoch(DAYS[2] - timedelta(days=3))
    assert int(again["end_time"][0]) == _epoch(TODAY + timedelta(days=1))
    with engine.connect() as conn:
        days = conn.execute(select(SyncState.last_day).where(
            SyncState.endpoint == "costs")).scalar_one()
    assert str(days)[:10] == TODAY.isoformat()


def test_only_an_owner_may_sync_and_a_key_is_required(engine, openai_server):
    from analytics.access import AccessDenied

    with pytest.raises(AccessDenied):
        sync_provider(engine, Principal("m", "member"), "openai", KEY, base_url=openai_server.url)
    with pytest.raises(ValueError, match="OPENAI_ADMIN_KEY"):
        sync_provider(engine, SYSTEM, "openai", None, base_url=openai_server.url)


def test_admin_key_comes_from_the_environment_or_secrets(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_ADMIN_KEY", raising=False)
    assert admin_key("anthropic") is None
    assert admin_key("anthropic", {"ANTHROPIC_ADMIN_KEY": " sk-ant-admin-x "}) == "sk-ant-admin-x"
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", "sk-ant-admin-env")
    assert admin_key("anthropic", {"ANTHROPIC_ADMIN_KEY": "other"}) == "sk-ant-admin-env"


def test_retry_after_accepts_seconds_and_http_dates():
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Fri, 27 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


# --- Anthropic: cents in the cost report, workspaces and keys by name --------------------------

WORKSPACES = [{"id": "wrkspc_R", "name": "Research"}]
KEYS = [{"id": "apikey_1", "name": "support-bot"}, {"id": "apikey_2", "name": "notebook-key"}]


def _a_bucket(day: date, results: list[dict]) -> dict:
    return {"starting_at": f"{day}T00:00:00Z", "ending_at": f"{day + timedelta(days=1)}T00:00:00Z",
            "results": results}


ANTHROPIC_BUCKETS = {
    "/v1/organizations/usage_report/messages": [_a_bucket(d, [
        {"uncached_input_tokens": 1000, "cache_read_input_tokens": 500,
         "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
         "output_tokens": 300, "server_tool_use": {"web_search_requests": 0},
         "api_key_id": key, "workspace_id": ws, "model": "claude-sonnet-4-5-20250929",
         "service_tier": "standard", "context_window": "0-200k"}
        for key, ws in (("apikey_1", None), ("apikey_2", "wrkspc_R"))]) for d in DAYS],
    "/v1/organizations/cost_report": [_a_bucket(d, [
        {"currency": "USD", "amount": amount, "workspace_id": ws,
         "description": "Claude Sonnet 4.5 Usage - Input Tokens", "cost_type": "tokens",
         "context_window": "0-200k", "model": "claude-sonnet-4-5-20250929",
         "service_tier": "standard", "token_type": "uncached_input_tokens"}
        for ws, amount in ((None, "300.5"), ("wrkspc_R", "0.3"))]) for d in DAYS],
}
TOKENS_CSV = "usage_date_utc,model_version,api_key,workspace,usage_type,context_window," \
    "usage_input_tokens_no_cache,usage_input_tokens_cache_write_5m," \
    "usage_input_tokens_cache_write_1h,usage_input_tokens_cache_read,usage_output_tokens\n" + \
    "".join(f"{d},claude-sonnet-4-5-20250929,{k},{w},standard,≤ 200k,1000,100,0,500,300\n"
            for d in DAYS for k, w in (("support-bot", "Default"), ("notebook-key", "Research")))
COST_CSV = "usage_date_utc,model,workspace,api_key,usage_type,token_type,cost_usd\n" + "".join(
    f"{d},Claude Sonnet 4.5,{w},,message,input_no_cache,{c}\n"
    for d in DAYS for w, c in (("Default", "3.005"), ("Research", "0.003")))


@pytest.fixture
def anthropic_server() -> Iterator[ReplayServer]:
    server = ReplayServer(ANTHROPIC_BUCKETS, {"/v1/organizations/workspaces": WORKSPACES,
                                              "/v1/organizations/api_keys": KEYS},
                          ("starting_at", "ending_at"))
    yield server
    server.close()


def _totals(engine: Engine) -> dict[tuple[str, str], Decimal]:
    with engine.connect() as conn:
        rows = conn.execute(select(Cost.project_id, Cost.model, func.sum(Cost.amount))
                            .group_by(Cost.project_id, Cost.model)).all()
    return {(p, m): a for p, m, a in rows}


def test_anthropic_sync_turns_cents_into_dollars_and_matches_the_console_csv(
        engine, anthropic_server, tmp_path):
    result = _sync(engine, anthropic_server, provider="anthropic")
    assert result.ok, result.error
    expected = {("Default", "claude-sonnet-4-5"): Decimal("3.005") * 5,
                ("Research", "claude-sonnet-4-5"): Decimal("0.003") * 5}
    assert _totals(engine) == expected
    csv_store = get_engine(f"sqlite:///{tmp_path / 'csv.db'}")
    import_sources(csv_store, [("claude_api_tokens.csv", TOKENS_CSV.encode()),
                               ("claude_api_cost.csv", COST_CSV.encode())])
    assert _totals(csv_store) == expected
    assert _facts(engine)["usage"] == _facts(csv_store)["usage"]
    # the CSV of the same days replaces the synced rows instead of adding to them
    import_sources(engine, [("claude_api_cost.csv", COST_CSV.encode())])
    assert _totals(engine) == expected
    headers = anthropic_server.headers[0]
    assert headers.get("X-Api-Key") == KEY and headers.get("Anthropic-Version") == "2023-06-01"


def test_the_key_is_never_written_to_the_store(engine, openai_server, db_url):
    assert _sync(engine, openai_server).ok
    openai_server.faults = [""] * 7 + ["500"] * FAST.attempts  # a failure writes messages too
    assert _sync(engine, openai_server).ok is False
    engine.dispose()
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert KEY.encode() not in stored


def test_sync_page_takes_a_key_without_echoing_it_and_syncs(engine, db_url, monkeypatch,
                                                            openai_server):

    from analytics import auth
    from analytics.sync import run

    monkeypatch.setenv("BURNRATE_DB_URL", db_url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "x" * 40)
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    monkeypatch.setitem(run.PROVIDERS, "openai",
                        dataclasses.replace(run.PROVIDERS["openai"], base_url=openai_server.url))
    auth.add_user(engine, "olivia", "Olivia Owner", "o@example.com", "owner-pass-1", "owner")
    at = open_app("olivia", "pages/sync.py")
    assert not at.exception
    at.text_input[0].input(KEY)
    at.button[0].click().run()  # "Use this key"
    assert not at.exception
    assert not at.text_input  # the field is gone once a key is held
    assert at.session_state["sync_admin_keys"] == {"openai": KEY}
    at.date_input[0].set_value(TODAY)
    next(b for b in at.button if b.label == "Sync now").click().run()
    assert not at.exception
    assert any("synced" in s.value for s in at.success)
    shown = " ".join(str(e.value) for kind in ("markdown", "caption", "success", "error")
                     for e in at.get(kind))
    assert KEY not in shown
