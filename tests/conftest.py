"""Shared fixtures: a real store on every configured backend, and sample paths.

``BURNRATE_TEST_BACKENDS`` picks the backends the ``engine`` fixture runs on: ``sqlite``
(default, a file in the test's temp folder) and/or ``postgres`` (a fresh database per test on
the server named by ``BURNRATE_TEST_PG_URL``). Tests that use a store are marked ``store``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from analytics.store import dispose_engine, get_engine

ROOT = Path(__file__).resolve().parent.parent
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = os.environ.get("BURNRATE_TEST_BACKENDS", "sqlite").split(",")
        metafunc.parametrize("backend", [b.strip() for b in backends if b.strip()])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "backend" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.store)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty store of the backend under test."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'burnrate.db'}"
        yield url
        dispose_engine(url)
        return
    admin_url = os.environ["BURNRATE_TEST_PG_URL"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    yield url
    dispose_engine(url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def shared_samples(name: str) -> Path:
    """A folder of ../shared/samples, or a skip that says what is missing and why."""
    path = SHARED_SAMPLES / name
    if not path.is_dir():
        pytest.skip(f"needs ../shared/samples/{name} (the team's real-format sample exports), "
                    "which is not beside this checkout")
    return path
