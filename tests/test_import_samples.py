"""The shared sample org: every file in, in any order and any number of times, equals the
provider's truth to the cent (issue: store, importers and CLI)."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from analytics.access import SYSTEM
from analytics.importers import sources_from_paths
from analytics.ingest import import_sources
from analytics.queries import spend
from tests.conftest import shared_samples

CENT = Decimal("0.01")


def _exports(folder):
    return [s for s in sources_from_paths([folder]) if not s[0].endswith("truth.json")]


def _assert_truth(engine, truth):
    by_project = spend(engine, SYSTEM, "project")
    got = {r.project: r.cost_usd for r in by_project.itertuples()}
    assert set(got) == set(truth["by_project"])
    for pid, expected in truth["by_project"].items():
        assert abs(got[pid] - Decimal(str(expected))) < Decimal("0.005"), pid
    by_day = spend(engine, SYSTEM, "day")
    got_day = {r.day: r.cost_usd for r in by_day.itertuples()}
    assert set(got_day) == set(truth["by_day"])
    for day, expected in truth["by_day"].items():
        assert abs(got_day[day] - Decimal(str(expected))) < Decimal("0.005"), day
    total = sum(got.values())
    assert total.quantize(CENT) == Decimal(str(truth["total_usd"])).quantize(CENT)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_any_order_twice_equals_truth(engine, seed):
    folder = shared_samples("openai-small")
    truth = json.loads((folder / "truth.json").read_text())["truth"]
    sources = _exports(folder)
    rng = random.Random(seed)
    first = sources[:]
    rng.shuffle(first)
    results = import_sources(engine, first)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    _assert_truth(engine, truth)
    again = sources[:]
    rng.shuffle(again)
    second = import_sources(engine, again)
    assert [r.new for r in second] == [0] * len(second)
    assert sum(r.replaced for r in second) > 0
    _assert_truth(engine, truth)


def test_api_pages_alone_equal_csvs_alone(engine):
    folder = shared_samples("openai-small")
    truth = json.loads((folder / "truth.json").read_text())["truth"]
    import_sources(engine, sources_from_paths([folder / "api"]))
    _assert_truth(engine, truth)
    tokens_api = spend(engine, SYSTEM, "project")[["project", "input_tokens", "output_tokens"]]
    csvs = [s for s in _exports(folder) if "/api/" not in s[0]]
    results = import_sources(engine, csvs)
    assert all(r.ok for r in results)
    _assert_truth(engine, truth)
    tokens_both = spend(engine, SYSTEM, "project")[["project", "input_tokens", "output_tokens"]]
    assert tokens_api.equals(tokens_both)


def test_usage_tokens_match_truth_counts(engine):
    folder = shared_samples("openai-small")
    truth = json.loads((folder / "truth.json").read_text())["truth"]
    import_sources(engine, _exports(folder))
    frame = spend(engine, SYSTEM, "month")
    # The usage export has no embeddings; cached and output tokens are completions-only.
    assert int(frame["cached_input_tokens"].sum()) == truth["tokens"]["cached"]
    assert int(frame["output_tokens"].sum()) == truth["tokens"]["output"]
