"""A store made by an older release is upgraded in place on first use, data kept, and the
models agree with the migrations (nothing left for autogenerate to find)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from analytics.store import ROOT, Base, dispose_engine, get_engine


def _config(conn) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["connection"] = conn
    return cfg


def test_an_old_store_is_upgraded_with_its_data(db_url):
    old = create_engine(db_url)
    with old.begin() as conn:
        command.upgrade(_config(conn), "0001")
        conn.execute(text("INSERT INTO settings (key, value) VALUES ('org_name', 'Kept Ltd')"))
    old.dispose()
    dispose_engine(db_url)
    engine = get_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM settings WHERE key = 'org_name'")
                            ).scalar() == "Kept Ltd"
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    names = {i["name"] for i in inspect(engine).get_indexes("usage")}
    assert "ix_usage_key" in names
