"""The audit log (issue 8, item 2): imports are recorded in the import's own transaction, a
failed or interrupted import leaves no row, logins carry their client, and the Owner's page
and the CLI export it safely."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from analytics import audit, auth, ingest
from analytics.access import SYSTEM
from analytics.importers import parse_sources
from analytics.ingest import import_parsed, import_sources
from analytics.queries import total_cost
from tests.conftest import ROOT
from tests.helpers import open_app, write
from tests.test_import_errors import DAY, cost_csv, cost_row, usage_csv, usage_row

APP = str(ROOT / "app.py")


def test_an_import_writes_its_audit_row(engine: Engine, tmp_path: Path) -> None:
    content = cost_csv([cost_row(DAY, "1.50"), cost_row(DAY, "2.25", "gpt-5, output")])
    [result] = import_sources(engine, [("cost.csv", write(tmp_path, "cost.csv", content))],
                              "alice")
    [row] = audit.entries(engine, action="import").itertuples()
    after = json.loads(row.after)
    assert (row.username, row.target, row.before) == ("alice", "cost.csv", None)
    assert after["import_id"] == result.import_id
    assert (after["rows"], after["new"], after["replaced"]) == (2, 2, 0)
    assert after["total_usd"] is not None and float(after["total_usd"]) == 3.75
    assert after["first_day"] == after["last_day"] == DAY.isoformat()


def test_a_refused_or_interrupted_import_leaves_no_audit_row(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = usage_csv([usage_row(DAY), usage_row(DAY, requests="many")])
    [refused] = import_sources(engine, [("bad.csv", bad)])
    assert not refused.ok
    monkeypatch.setattr(ingest, "_upsert_names", lambda *_: (_ for _ in ()).throw(
        KeyboardInterrupt))
    [parsed] = parse_sources([("cost.csv", cost_csv([cost_row(DAY)]))])
    with pytest.raises(KeyboardInterrupt):
        import_parsed(engine, parsed, "0" * 64, "alice")
    assert audit.entries(engine, action="import").empty
    assert total_cost(engine, SYSTEM) == 0


def test_a_rerun_of_the_same_file_imports_once(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "cost.csv", cost_csv([cost_row(DAY, "4.00")]))
    first, second = (import_sources(engine, [("cost.csv", path)])[0] for _ in range(2))
    assert first.ok and second.ok and second.import_id == first.import_id
    assert (second.new, second.replaced) == (0, 0) and "identical" in second.note
    assert len(audit.entries(engine, action="import")) == 1
    assert total_cost(engine, SYSTEM) == 4


def test_logins_are_audited_with_their_client(engine: Engine) -> None:
    auth.add_user(engine, "olivia", "O", "o@x.org", "owner-pass-1", "owner")
    assert not auth.authenticate(engine, "olivia", "nope-nope", "203.0.113.7").ok
    assert auth.authenticate(engine, "olivia", "owner-pass-1", "203.0.113.7").ok
    assert not auth.authenticate(engine, "ghost\x1b[2J", "whatever1", "198.51.100.1").ok
    log = audit.entries(engine)
    logins = log[log["action"].str.startswith("login")]
    got = {(r.action, r.username, r.target) for r in logins.itertuples()}
    assert got == {("login.failed", "olivia", "203.0.113.7"),
                   ("login", "olivia", "203.0.113.7"),
                   ("login.failed", "ghost?[2J", "198.51.100.1")}


def test_audit_cli_exports_csv_with_formulas_neutralised(engine: Engine, db_url: str) -> None:
    auth.authenticate(engine, '=HYPERLINK("http://x","y")', "whatever1", "10.0.0.9")
    done = subprocess.run([sys.executable, "-m", "analytics", "audit", "--format", "csv",
                           "--action", "login.failed", "--db", db_url], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header == "id,at,username,action,target,before,after"
    assert ",\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",login.failed,10.0.0.9," in row


@pytest.fixture
def owner_app(engine: Engine, db_url: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("BURNRATE_DB_URL", db_url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "z" * 40)
    auth.add_user(engine, "olivia", "Olivia", "o@x.org", "owner-pass-1", "owner")
    import_sources(engine, [("old.csv", cost_csv([cost_row(DAY, "9.00")]))], "olivia")
    return engine


def _audit_page() -> AppTest:
    return open_app("olivia", "pages/audit.py")


def test_audit_page_lists_filters_and_purges_after_confirmation(owner_app: Engine) -> None:
    at = _audit_page()
    assert not at.exception, at.exception
    assert at.title[0].value == "Audit log"
    shown = at.dataframe[0].value
    assert {"import", "user.add"} <= set(shown["action"])
    at.selectbox[0].select("import").run()
    assert set(at.dataframe[0].value["action"]) == {"import"}
    purge = next(b for b in at.button if b.label == "Purge")
    assert purge.disabled, "nothing is deleted before the box is ticked"
    at.number_input[0].set_value(1).run()
    at.checkbox(key="confirm_purge").check().run()
    next(b for b in at.button if b.label == "Purge").click().run()
    assert not at.exception, at.exception
    assert total_cost(owner_app, SYSTEM) == 0  # 2026-09-01 is older than a month
    assert any("Deleted 1 rows" in s.value for s in at.success)
    assert len(audit.entries(owner_app, action="data.purge")) == 1
