"""A store made by an older release is upgraded in place on first use, data kept, and the
models agree with the migrations (nothing left for autogenerate to find)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, create_engine, inspect, text

from analytics.importers import parse_sources
from analytics.ingest import import_sources
from analytics.store import ROOT, Base, dispose_engine, get_engine, head_revision
from tests.test_import_errors import DAY, USAGE_HEADER, csv_text, usage_row


def _config(conn, migrations: Path = ROOT / "migrations") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.attributes["connection"] = conn
    return cfg


def test_an_old_store_is_upgraded_with_its_data(db_url):
    old = create_engine(db_url)
    with old.begin() as conn:
        command.upgrade(_config(conn), "0001")
        conn.execute(text("INSERT INTO settings (key, value) VALUES ('org_name', 'Kept Ltd')"))
        conn.execute(text(
            "INSERT INTO users (username, name, email, password_hash, role, projects, "
            "failed_logins, locked_until, created_at) VALUES ('ann', 'Ann', 'a@x.test', "
            "'hash', 'reader', 'proj_a', 0, NULL, '2026-01-01 00:00:00')"))
    old.dispose()
    dispose_engine(db_url)
    engine = get_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM settings WHERE key = 'org_name'")
                            ).scalar() == "Kept Ltd"
        assert tuple(conn.execute(text("SELECT username, role, projects FROM users")).one()
                     ) == ("ann", "reader", "proj_a")
        assert conn.execute(text("SELECT version_num FROM alembic_version")
                            ).scalar() == head_revision()
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    names = {i["name"] for i in inspect(engine).get_indexes("usage")}
    assert "ix_usage_key" not in names and "ix_usage_day_project" in names


def _usage_export(days: int) -> bytes:
    rows = [usage_row(DAY + timedelta(days=d), key=f"key_{k}", batch=("True", "False")[k % 2])
            for d in range(days) for k in range(3)]
    return csv_text(USAGE_HEADER, rows).encode()


def test_usage_stored_before_key_hash_gets_the_hash_an_import_computes(db_url):
    """Migration 0003 hashes the rows already stored: importing the same export afterwards
    finds every one of them (nothing new, all replaced), on both backends."""
    content = _usage_export(4)
    [parsed] = parse_sources([("old.csv", content)])
    old = create_engine(db_url)
    with old.begin() as conn:
        command.upgrade(_config(conn), "0002")
        imports = Table("imports", MetaData(), autoload_with=conn)
        import_id = conn.execute(imports.insert().values(
            file_name="old.csv", file_hash="0" * 64, format=parsed.format, provider="openai",
            kind="completions", rows_read=12, rows_new=12, rows_replaced=0, imported_by="old",
            imported_at=datetime(2026, 10, 1))).inserted_primary_key[0]
        usage = Table("usage", MetaData(), autoload_with=conn)  # SQLAlchemy's own storage
        conn.execute(usage.insert(), [{**row._asdict(), "import_id": import_id}
                                      for row in parsed.rows])
    old.dispose()
    dispose_engine(db_url)
    engine = get_engine(db_url)
    [result] = import_sources(engine, [("new.csv", content)])
    assert (result.ok, result.rows, result.new, result.replaced) == (True, 12, 0, 12)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM usage")).scalar() == 12


def test_the_head_read_from_the_files_is_alembics_even_after_a_new_migration(tmp_path):
    """``migrate`` skips Alembic when the store is at ``head_revision()``: if that ever
    disagreed with Alembic, a store would silently miss a migration."""
    assert head_revision() == ScriptDirectory.from_config(_config(None)).get_current_head()
    copy = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", copy, ignore=shutil.ignore_patterns("__pycache__"))
    cfg = _config(None, copy)
    command.revision(cfg, "a later change", rev_id="0099")  # Alembic's own file template
    assert head_revision(copy / "versions") == "0099"
    assert ScriptDirectory.from_config(cfg).get_current_head() == "0099"
    command.revision(cfg, "a branch", rev_id="0100", head="0001", splice=True)
    assert head_revision(copy / "versions") is None  # two heads: Alembic decides


def test_a_store_at_the_head_opens_without_loading_alembic(db_url):
    get_engine(db_url)  # creates the schema
    dispose_engine(db_url)
    code = ("import sys; from analytics.store import get_engine; "
            f"get_engine({db_url!r}); print(sorted(m for m in sys.modules if 'alembic' in m))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_repeated_budget_alerts_are_merged_and_cannot_come_back(db_url):
    """Migration 0004 keeps the oldest of each repeated budget alert (two checks at once
    could store one twice) and a unique index then refuses a repeat; sync alerts, which
    repeat their key on purpose, are left as they are."""
    from sqlalchemy.exc import IntegrityError

    old = create_engine(db_url)
    row = {"at": datetime(2026, 11, 1), "level": "warning", "delivered": "app"}
    with old.begin() as conn:
        command.upgrade(_config(conn), "0003")
        alerts = Table("alerts", MetaData(), autoload_with=conn)
        conn.execute(alerts.insert(), [
            {**row, "source": "budget", "key": "budget:Dev:1", "message": "first"},
            {**row, "source": "budget", "key": "budget:Dev:1", "message": "again"},
            {**row, "source": "budget", "key": "budget:Dev:2", "message": "other"},
            {**row, "source": "sync", "key": "sync:openai", "message": "down"},
            {**row, "source": "sync", "key": "sync:openai", "message": "down again"}])
    old.dispose()
    dispose_engine(db_url)
    engine = get_engine(db_url)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT source, key, message FROM alerts ORDER BY id")).all()
    assert [tuple(r) for r in kept] == [
        ("budget", "budget:Dev:1", "first"), ("budget", "budget:Dev:2", "other"),
        ("sync", "sync:openai", "down"), ("sync", "sync:openai", "down again")]
    with engine.begin() as conn:  # another sync repeat is fine
        conn.execute(alerts.insert().values(**row, source="sync", key="sync:openai",
                                            message="still down"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(alerts.insert().values(**row, source="budget", key="budget:Dev:2",
                                            message="twice"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM alerts")).scalar() == 5
