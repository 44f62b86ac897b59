"""Faults (issue 8, item 6): a full store rolls back with a clear message; a database that is
down gives a friendly message without credentials, in the CLI and the app; a PostgreSQL
restart while the app runs is survived. (Killed imports and two imports at once: see
test_import_faults.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from streamlit.testing.v1 import AppTest

from analytics import audit
from analytics.access import SYSTEM
from analytics.ingest import import_sources
from analytics.queries import total_cost
from analytics.store import StoreFull, StoreUnavailable, explain, get_engine
from tests.conftest import ROOT
from tests.helpers import store_snapshot, write
from tests.test_import_errors import DAY, USAGE_HEADER, csv_text, usage_row

SECRET = "pw-9f8e7d"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _down_url() -> str:
    return f"postgresql+psycopg://burnrate_admin:{SECRET}@127.0.0.1:{_closed_port()}/burnrate"


def test_a_full_sqlite_store_rolls_back_with_a_clear_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'small.db'}"
    engine = get_engine(url)
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    limit = pages + 40  # room for a little, not for 20,000 rows

    @event.listens_for(engine, "connect")
    def _cap(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.execute(f"PRAGMA max_page_count = {limit}")

    engine.dispose()
    small = write(tmp_path, "small.csv", csv_text(USAGE_HEADER, [usage_row(DAY)]).encode())
    assert import_sources(engine, [("small.csv", small)])[0].ok
    before, log = store_snapshot(engine), len(audit.entries(engine))
    big = write(tmp_path, "big.csv", csv_text(USAGE_HEADER, [
        usage_row(DAY + timedelta(days=n % 30), key=f"key_{n:06d}") for n in range(20_000)
    ]).encode())
    [result] = import_sources(engine, [("big.csv", big)])
    assert not result.ok
    assert result.error.startswith("big.csv: The store is full") and "nothing was" in result.error
    assert "INSERT" not in result.error and "\n" not in result.error
    assert store_snapshot(engine) == before
    assert len(audit.entries(engine)) == log, "no audit row for what did not happen"
    event.remove(engine, "connect", _cap)
    engine.dispose()
    assert import_sources(engine, [("big.csv", big)])[0].ok, "with room, it imports"


def test_store_errors_never_show_sql_parameters_or_passwords() -> None:
    url = f"postgresql+psycopg://admin:{SECRET}@db.internal:5432/burnrate"
    full = OperationalError("INSERT INTO usage VALUES (%(secret)s)", {"secret": SECRET},
                            Exception("could not extend file: No space left on device"))
    down = OperationalError("SELECT 1", {"p": SECRET},
                            Exception(f"connection failed: password {SECRET} rejected\nmore"))
    assert isinstance(explain(full, url), StoreFull)
    message = str(explain(down, url))
    assert isinstance(explain(down, url), StoreUnavailable)
    assert "db.internal:5432/burnrate" in message
    for leak in (SECRET, "admin", "SELECT", "INSERT", "more"):
        assert leak not in message and leak not in str(explain(full, url))


def test_postgresql_down_at_start_is_a_friendly_message() -> None:
    url = _down_url()
    with pytest.raises(StoreUnavailable) as caught:
        get_engine(url)
    message = str(caught.value)
    assert "cannot be reached" in message and "BURNRATE_DB_URL" in message
    assert SECRET not in message and "burnrate_admin" not in message


def test_postgresql_down_in_the_cli_is_one_line_without_credentials() -> None:
    done = subprocess.run([sys.executable, "-m", "analytics", "report", "spend", "--db",
                           _down_url()], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: The store at postgresql+psycopg://127.0.0.1:")
    assert len(done.stderr.strip().splitlines()) == 1
    assert SECRET not in done.stderr and "Traceback" not in done.stderr


def test_postgresql_down_in_the_app_is_a_friendly_message(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNRATE_DB_URL", _down_url())
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    [error] = at.error
    assert "cannot be reached" in error.value and SECRET not in error.value
    assert not at.text_input, "no login form over a store that is not there"


def test_a_postgresql_restart_is_survived(engine: Engine, db_url: str, backend: str,
                                          tmp_path: Path) -> None:
    """Every connection of the pool is killed server-side, as a restart would; the next query
    and the next import work (pool_pre_ping replaces the dead connections)."""
    if backend != "postgres":
        pytest.skip("a PostgreSQL server restart; SQLite has no server")
    path = write(tmp_path, "u.csv", csv_text(USAGE_HEADER, [usage_row(DAY)]).encode())
    assert import_sources(engine, [("u.csv", path)])[0].ok
    admin = create_engine(os.environ["BURNRATE_TEST_PG_URL"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = :db AND pid <> pg_backend_pid()"),
            {"db": db_url.rsplit("/", 1)[1]}).scalar_one()
    admin.dispose()
    assert killed >= 1
    assert total_cost(engine, SYSTEM) == 0
    more = write(tmp_path, "v.csv", csv_text(USAGE_HEADER, [usage_row(DAY, key="k2")]).encode())
    assert import_sources(engine, [("v.csv", more)])[0].ok
