"""Results kept per data version: reused until an import or a purge, never across scopes."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.access import SYSTEM, Principal
from analytics.memo import clear_all, per_data_version
from analytics.queries import spend
from analytics.series import bump_data_version
from tests.pricing_fixtures import BATCH, D1, D2, GPT4O, MINI, PROD, import_exports, usage

CALLS: list[str] = []


@per_data_version
def _spend_by_project(engine, principal, tag: str) -> pd.DataFrame:
    CALLS.append(tag)
    return spend(engine, principal, "project")


@pytest.fixture
def store(engine, tmp_path):
    clear_all()
    CALLS.clear()
    import_exports(engine, tmp_path / "first", [usage(D1, PROD, GPT4O, 1000, 0, 100)], [])
    return engine


def test_kept_until_an_import_then_read_again(store, tmp_path):
    first = _spend_by_project(store, SYSTEM, "a")
    assert _spend_by_project(store, SYSTEM, "a").equals(first)
    assert CALLS == ["a"]
    import_exports(store, tmp_path / "more", [usage(D2, BATCH, MINI, 500, 0, 50)], [])
    after = _spend_by_project(store, SYSTEM, "a")
    assert CALLS == ["a", "a"]
    assert after["project"].tolist() == [BATCH, PROD]


def test_a_purge_without_an_import_is_seen_too(store):
    _spend_by_project(store, SYSTEM, "a")
    with store.begin() as conn:
        bump_data_version(conn)
    _spend_by_project(store, SYSTEM, "a")
    assert CALLS == ["a", "a"]


def test_arguments_and_scopes_are_kept_apart(store):
    scoped = Principal("sam", "reader", frozenset({BATCH}))
    _spend_by_project(store, SYSTEM, "a")
    _spend_by_project(store, SYSTEM, "b")
    assert _spend_by_project(store, scoped, "a").empty
    assert CALLS == ["a", "b", "a"]


def test_a_caller_changing_its_frame_does_not_change_the_kept_one(store):
    mine = _spend_by_project(store, SYSTEM, "a")
    mine.loc[0, "input_tokens"] = -1
    assert _spend_by_project(store, SYSTEM, "a").loc[0, "input_tokens"] == 1000
    assert CALLS == ["a"]


def test_results_for_older_data_are_let_go(store):
    """Once the data changed, older results can never be asked for again: they are dropped
    (a million-row result weighs tens of MB), while other scopes' current ones stay."""
    reader = Principal("r", "reader", frozenset({PROD}))
    for tag in ("a", "b"):
        _spend_by_project(store, SYSTEM, tag)
    _spend_by_project(store, reader, "a")
    assert len(_spend_by_project.kept) == 3
    with store.begin() as conn:
        bump_data_version(conn)
    _spend_by_project(store, SYSTEM, "a")
    assert len(_spend_by_project.kept) == 1, "the three results of the old version are gone"
    _spend_by_project(store, reader, "a")
    assert len(_spend_by_project.kept) == 2
    assert CALLS == ["a", "b", "a", "a", "a"]


@per_data_version
def _outer_total(engine, principal) -> int:
    """A kept call made of another kept call."""
    return len(_spend_by_project(engine, principal, "inner"))


def test_a_call_and_its_parts_read_the_data_version_once(store, monkeypatch):
    """The parts of a kept call use the version the call computes for: one small query per
    visit, not one per part."""
    from analytics import memo

    reads: list[object] = []
    real = memo.data_version
    monkeypatch.setattr(memo, "data_version", lambda engine: reads.append(engine) or real(engine))
    assert _outer_total(store, SYSTEM) == 1
    assert len(reads) == 1 and CALLS == ["inner"]
    assert _outer_total(store, SYSTEM) == 1  # kept: one read to know it is still current
    assert len(reads) == 2
