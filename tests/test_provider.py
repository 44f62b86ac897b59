"""Provider everywhere: OpenAI and Anthropic spend side by side, filtered and grouped."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from analytics.access import SYSTEM
from analytics.explore import explore
from analytics.ingest import import_sources
from analytics.overview import billed, overview
from analytics.queries import spend
from analytics.series import daily_spend
from tests.conftest import shared_samples

START, END = date(2026, 9, 1), date(2026, 9, 30)


def _truth(name: str) -> Decimal:
    data = json.loads((shared_samples(name) / "truth.json").read_text())
    return Decimal(str(data["truth"]["total_usd"]))


@pytest.fixture
def two_providers(engine):
    sources = [(p.name, p) for name in ("openai-small", "anthropic-small")
               for p in sorted(shared_samples(name).glob("*.csv"))]
    assert all(r.ok for r in import_sources(engine, sources))
    return engine


def _close(a: Decimal | float, b: Decimal) -> bool:
    return abs(Decimal(str(a)) - b) < Decimal("0.000001")


def test_spend_groups_and_filters_by_provider(two_providers):
    by = spend(two_providers, SYSTEM, "provider", START, END).set_index("provider")
    assert _close(by.loc["openai", "cost_usd"], _truth("openai-small"))
    assert _close(by.loc["anthropic", "cost_usd"], _truth("anthropic-small"))
    only = spend(two_providers, SYSTEM, "project", START, END, provider="anthropic")
    assert set(only["project"]) == {"Default", "Research"}


def test_overview_splits_spend_by_provider_and_filters(two_providers):
    view = overview(two_providers, SYSTEM, date(2026, 9, 30))
    shares = dict(zip(view.by_provider["provider"], view.by_provider["cost_usd"], strict=True))
    assert list(view.by_provider["provider"]) == ["openai", "anthropic"]  # largest first
    assert _close(shares["anthropic"], _truth("anthropic-small"))
    assert _close(view.spend, _truth("openai-small") + _truth("anthropic-small"))
    narrowed = overview(two_providers, SYSTEM, date(2026, 9, 30), provider="anthropic")
    assert _close(narrowed.spend, _truth("anthropic-small"))
    assert set(narrowed.top_models["model"]) == {"claude-sonnet-4-5", "claude-haiku-4-5"}
    assert billed(two_providers, SYSTEM, START, END, "openai") == view.spend - narrowed.spend


def test_explore_filters_by_provider(two_providers):
    result = explore(two_providers, SYSTEM, "project", "month", START, END, "anthropic")
    assert set(result.table["key"]) == {"Default", "Research"}
    assert _close(result.table["cost_usd"].sum(), _truth("anthropic-small"))
    both = explore(two_providers, SYSTEM, "provider", "month", START, END)
    assert set(both.table["key"]) == {"openai", "anthropic"}


def test_budgets_span_providers(two_providers):
    org = daily_spend(two_providers, SYSTEM, "org", START, END)
    assert _close(round(org.sum(), 6), _truth("openai-small") + _truth("anthropic-small"))
