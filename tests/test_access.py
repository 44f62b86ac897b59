"""A scoped user never sees another project's rows, whatever query they go through."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.access import AccessDenied, Principal
from analytics.demo import simulate, write_exports
from analytics.explore import explore
from analytics.ingest import import_sources
from analytics.queries import data_range, projects, spend, total_cost, usage_for_pricing

STAGING = "proj_demoStaging000000002"


@pytest.fixture
def org(engine, tmp_path):
    sim = simulate(days=20, end=date(2026, 10, 20), scale=0.05)
    files = write_exports(sim, tmp_path / "x", window_days=10, overlap_days=3)
    assert all(r.ok for r in import_sources(engine, [(p.name, p) for p in files]))
    return sim


def test_scoped_principal_sees_only_its_project(engine, org):
    sam = Principal("sam", "reader", frozenset({STAGING}))
    for by in ("project", "model", "api_key", "user", "day", "month"):
        frame = spend(engine, sam, ["project", by] if by != "project" else "project")
        assert set(frame["project"]) == {STAGING}, by
    expected = org.truth_by_project()[STAGING]
    assert abs(total_cost(engine, sam) - expected) < 1e-6
    assert set(usage_for_pricing(engine, sam)["project_id"]) == {STAGING}
    assert list(projects(engine, sam)["project_id"]) == [STAGING]
    table = explore(engine, sam, "api_key", "week", date(2026, 10, 1), date(2026, 10, 20)).table
    assert set(table["key"]) == {"key_demoStgA0003"}
    assert data_range(engine, sam)[1] == date(2026, 10, 20)


def test_asking_for_another_project_is_refused(engine, org):
    sam = Principal("sam", "reader", frozenset({STAGING}))
    with pytest.raises(AccessDenied):
        spend(engine, sam, "day", project="proj_demoProduction000003")
    with pytest.raises(AccessDenied):
        total_cost(engine, sam, project="proj_demoProduction000003")


def test_reader_cannot_write():
    rita = Principal("rita", "reader")
    with pytest.raises(AccessDenied):
        rita.require("import data")
    mark = Principal("mark", "member")
    mark.require("import data")
    with pytest.raises(AccessDenied):
        mark.require("change prices", owner_only=True)
