"""Billed vs estimated cost: agreement, flagged differences and their likely reasons.

gpt-4o bucket of 1,000,000 input (200,000 cached) and 100,000 output at list price:
0.8 x 2.50 + 0.2 x 1.25 + 0.1 x 10 = $3.25. gpt-5-mini batch bucket of 1M in, 1M out:
(0.25 + 2) / 2 = $1.125. With gpt-4o at 5 / 2.5 / 20 the first bucket costs $6.50.
"""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import select

from analytics.access import SYSTEM, Principal
from analytics.grouping import period_labels
from analytics.models import model_family
from analytics.org import label_project
from analytics.price_store import add_price, current_book
from analytics.pricing import estimate_cost, shifted_book
from analytics.queries import usage_for_pricing
from analytics.reconcile import reconcile
from analytics.reconcile_rows import (
    MISSING_COST,
    MISSING_USAGE,
    PRICE_CHANGE,
    UNEXPLAINED,
    UNPRICED,
    compared_rows,
)
from analytics.store import SpendDaily
from tests.pricing_fixtures import (
    BATCH,
    D1,
    D2,
    GPT4O,
    MINI,
    PROD,
    RESEARCH,
    import_exports,
    import_sample,
    usage,
)

BUCKET = (1_000_000, 200_000, 100_000)
OWNER = Principal("olivia", "owner")


@pytest.fixture
def store(engine, tmp_path):
    import_exports(engine, tmp_path, [
        usage(D1, PROD, GPT4O, *BUCKET),
        usage(D2, PROD, GPT4O, *BUCKET),
        usage(D2, BATCH, MINI, 1_000_000, 0, 1_000_000, batch=True),
        usage(D1, RESEARCH, "mystery-model-1", 500, 0, 50),
    ], [
        (D1, PROD, f"{GPT4O}, input", "2.00"),
        (D1, PROD, f"{GPT4O}, cached input", "0.25"),
        (D1, PROD, f"{GPT4O}, output", "1.00"),
        (D2, PROD, f"{GPT4O}, input", "3.50"),
        (D1, PROD, "text-embedding-3-small, input", "0.40"),
        (D1, RESEARCH, "mystery-model-1, input", "0.10"),
    ])
    return engine


def _row(result, day, project, model):
    rows = getattr(result, "rows", result)  # a Reconciliation or its frame
    match = rows[(rows["day"] == day.isoformat()) & (rows["project_id"] == project)
                 & (rows["model"] == model)]
    assert len(match) == 1, match
    return match.iloc[0]


def test_matching_row_is_not_flagged(store):
    row = _row(reconcile(store, SYSTEM), D1, PROD, "gpt-4o")
    assert row["billed_usd"] == pytest.approx(3.25)
    assert row["estimated_usd"] == pytest.approx(3.25)
    assert not row["flagged"] and row["reason"] == ""
    assert row["models"] == GPT4O and row["project"] == "Production"
    # Plain Python values for the CLI on either store (PostgreSQL sums integers as numeric).
    compared = compared_rows(store, SYSTEM)
    at = list(compared.columns).index("tokens")
    assert {type(r[at]) for r in compared.rows} == {int}
    assert 1_100_000 in {r[at] for r in compared.rows}


def test_each_difference_gets_its_likely_reason(store):
    result = reconcile(store, SYSTEM)
    over = _row(result, D2, PROD, "gpt-4o")
    assert over["difference_usd"] == pytest.approx(0.25)  # 3.50 billed - 3.25
    assert over["difference_pct"] == pytest.approx(0.25 / 3.50 * 100)
    assert over["reason"].startswith(UNEXPLAINED)
    assert _row(result, D1, PROD, "text-embedding-3-small")["reason"].startswith(MISSING_USAGE)
    missing_cost = _row(result, D2, BATCH, "gpt-5-mini")
    assert missing_cost["estimated_usd"] == pytest.approx(1.125)
    assert missing_cost["reason"].startswith(MISSING_COST)
    unpriced = _row(result, D1, RESEARCH, "mystery-model-1")
    assert unpriced["flagged"] and unpriced["reason"].startswith(UNPRICED)
    assert len(result.flagged) == 4


def test_threshold_and_minimum_dollars(store):
    loose = reconcile(store, SYSTEM, threshold_pct=10)
    assert not _row(loose, D2, PROD, "gpt-4o")["flagged"]  # 7.1% < 10%
    coarse = reconcile(store, SYSTEM, min_usd=0.30)
    assert not _row(coarse, D2, PROD, "gpt-4o")["flagged"]  # $0.25 <= $0.30
    assert _row(coarse, D1, PROD, "text-embedding-3-small")["flagged"]  # $0.40


def test_summary_by_model_and_project(store):
    result = reconcile(store, SYSTEM)
    models = result.summary(["model"]).set_index("model")
    assert models.loc["gpt-4o", "billed_usd"] == pytest.approx(6.75)
    assert models.loc["gpt-4o", "estimated_usd"] == pytest.approx(6.50)
    assert models.loc["gpt-4o", "flagged"]  # 0.25 / 6.75 = 3.7%
    assert models.loc["gpt-4o", "reasons"] == UNEXPLAINED
    projects = result.summary(["project"]).set_index("project")
    assert projects.loc["Production", "reasons"] == f"{MISSING_USAGE}; {UNEXPLAINED}"
    assert projects.loc["Production", "flagged_rows"] == 2
    days = result.summary(["day"]).set_index("day")
    for day, rows in result.rows.groupby("day"):
        for column in ("billed_usd", "estimated_usd"):
            assert days.loc[day, column] == math.fsum(rows[column].dropna()), (day, column)
        assert days.loc[day, "flagged_rows"] == rows["flagged"].sum()
    assert days["flagged_rows"].sum() == len(result.flagged) > 0


def test_scope_and_period_filters(store):
    scoped = reconcile(store, Principal("sam", "reader", frozenset({BATCH})))
    assert set(scoped.rows["project_id"]) == {BATCH}
    day_one = reconcile(store, SYSTEM, start=D1, end=D1)
    assert set(day_one.rows["day"]) == {D1.isoformat()}
    newest = reconcile(store, SYSTEM, last_days=1)  # the last day of data, whichever it is
    assert set(newest.rows["day"]) == {D2.isoformat()}
    with pytest.raises(ValueError, match="not both"):
        reconcile(store, SYSTEM, start=D1, last_days=1)


def test_bill_at_the_old_price_points_at_a_price_change(engine, tmp_path):
    import_exports(engine, tmp_path, [usage(D1, PROD, GPT4O, *BUCKET),
                                      usage(D2, PROD, GPT4O, *BUCKET)],
                   [(D1, PROD, f"{GPT4O}, input", "3.25"), (D2, PROD, f"{GPT4O}, input", "3.25")])
    add_price(engine, OWNER, {"provider": "openai", "family": "gpt-4o",
                              "effective_from": D2.isoformat(), "input_per_1m": "5",
                              "cached_input_per_1m": "2.5", "output_per_1m": "20"})
    result = reconcile(engine, SYSTEM)
    assert not _row(result, D1, PROD, "gpt-4o")["flagged"]
    changed = _row(result, D2, PROD, "gpt-4o")
    assert changed["estimated_usd"] == pytest.approx(6.50)
    assert changed["reason"].startswith(PRICE_CHANGE)
    assert "the price before" in changed["reason"]


def test_bill_at_a_price_the_book_dates_later_points_at_a_price_change(engine, tmp_path):
    import_exports(engine, tmp_path, [usage(D2, PROD, GPT4O, *BUCKET)],
                   [(D2, PROD, f"{GPT4O}, input", "6.50")])
    add_price(engine, OWNER, {"provider": "openai", "family": "gpt-4o",
                              "effective_from": "2026-09-03", "input_per_1m": "5",
                              "cached_input_per_1m": "2.5", "output_per_1m": "20"})
    row = _row(reconcile(engine, SYSTEM), D2, PROD, "gpt-4o")
    assert row["reason"].startswith(PRICE_CHANGE) and "the price after" in row["reason"]


def test_empty_store_reconciles_to_nothing(engine):
    result = reconcile(engine, SYSTEM)
    assert result.rows.empty and result.summary(["model"]).empty


def test_negative_threshold_is_refused(engine):
    with pytest.raises(ValueError, match="cannot be negative"):
        reconcile(engine, SYSTEM, threshold_pct=-1)


def test_sample_completions_agree_and_embeddings_lack_usage(engine):
    folder = import_sample(engine, "completions_usage_*.csv", "cost_*.csv")
    truth = json.loads((folder / "truth.json").read_text())
    result = reconcile(engine, SYSTEM, threshold_pct=1.0)
    models = result.summary(["model"]).set_index("model")
    completions = models.drop(index="text-embedding-3-small")
    assert not completions["flagged"].any()
    assert (completions["difference_pct"].abs() <= 1.0).all()
    embeddings = models.loc["text-embedding-3-small"]
    assert embeddings["flagged"] and embeddings["reasons"] == MISSING_USAGE
    assert embeddings["billed_usd"] == pytest.approx(
        truth["truth"]["by_model"]["text-embedding-3-small"], rel=1e-9)
    assert set(result.flagged["model"]) == {"text-embedding-3-small"}


def test_kept_rows_give_way_to_a_new_import_and_a_new_price(store, tmp_path):
    """Reconciled rows are kept per data version and book: both changes are seen at once."""
    assert math.isnan(_row(reconcile(store, SYSTEM), D2, BATCH, "gpt-5-mini")["billed_usd"])
    import_exports(store, tmp_path / "bill", [usage(D2, BATCH, MINI, 1_000_000, 0, 1_000_000,
                                                    batch=True)],
                   [(D2, BATCH, f"{MINI}, input", "1.125")])
    billed = _row(reconcile(store, SYSTEM), D2, BATCH, "gpt-5-mini")
    assert billed["billed_usd"] == pytest.approx(1.125) and not billed["flagged"]
    add_price(store, OWNER, {"provider": "openai", "family": "gpt-5-mini",
                             "effective_from": D1.isoformat(), "input_per_1m": "0.5",
                             "output_per_1m": "4"})
    repriced = _row(reconcile(store, SYSTEM), D2, BATCH, "gpt-5-mini")
    assert repriced["estimated_usd"] == pytest.approx(2.25) and repriced["flagged"]


def test_a_renamed_project_shows_its_new_name_at_once(store):
    """Renaming is no new data: the kept rows carry ids, and names are looked up each call."""
    assert _row(reconcile(store, SYSTEM), D1, PROD, "gpt-4o")["project"] == "Production"
    label_project(store, OWNER, "openai", PROD, "Storefront", None)
    assert _row(reconcile(store, SYSTEM), D1, PROD, "gpt-4o")["project"] == "Storefront"
    assert "Storefront" in set(reconcile(store, SYSTEM).summary(["project"])["project"])


def _priced_per_family(engine, book):
    """The reference: every usage row priced by ``estimate_cost`` (the price book's own
    code, row by row), summed per day, provider, project and model family."""
    priced = estimate_cost(usage_for_pricing(engine, SYSTEM), book)
    priced["day"] = period_labels(priced["day"], "day")
    reasons = priced["unpriced_reason"].where(priced["unpriced_reason"] != "")
    grouped = priced.assign(reason=reasons).groupby(["day", "provider", "project_id", "family"])
    return grouped["estimated_cost_usd"].sum(min_count=1), grouped["reason"].min()


def test_estimates_equal_pricing_every_usage_row(engine, tmp_path):
    """Two snapshots of one family, a price change between the days, a bucket with more
    cached than input tokens, and a model nobody prices: the rollup's figures (at the price
    in effect, before and after it) are the book's, pricing group by pricing group."""
    import_exports(engine, tmp_path, [
        usage(D1, PROD, GPT4O, *BUCKET), usage(D1, PROD, "gpt-4o", 300_000, 0, 7_000),
        usage(D2, PROD, GPT4O, *BUCKET), usage(D2, PROD, "gpt-4o", 10, 20, 30),
        usage(D2, BATCH, MINI, 1_000_000, 0, 1_000_000, batch=True),
        usage(D1, RESEARCH, "mystery-model-1", 500, 0, 50),
        # Two keys in one pricing group: one row alone has more cached than input, the
        # group's sums do not, so the group is priced (as estimate_cost prices the sums).
        usage(D1, BATCH, MINI, 100, 300, 10),
        {**usage(D1, BATCH, MINI, 1_000, 0, 10), "api_key_id": "key_other"},
    ], [(D1, PROD, f"{GPT4O}, input", "4.00"), (D2, PROD, f"{GPT4O}, input", "3.00"),
        (D1, RESEARCH, "mystery-model-1, input", "0.10")])
    add_price(engine, OWNER, {"provider": "openai", "family": "gpt-4o",
                              "effective_from": D2.isoformat(), "input_per_1m": "5",
                              "cached_input_per_1m": "2.5", "output_per_1m": "20"})
    book = current_book(engine)
    estimates, reasons = _priced_per_family(engine, book)
    rows = reconcile(engine, SYSTEM).rows
    keyed = rows.set_index(["day", "provider", "project_id", "model"])
    used = keyed.loc[estimates.index]
    assert used["estimated_usd"].fillna(0).to_numpy() == pytest.approx(
        estimates.fillna(0).to_numpy(), abs=1e-9)
    assert list(used["unpriced"]) == list(reasons.notna())
    assert not _row(rows, D1, BATCH, "gpt-5-mini")["unpriced"]
    assert _row(rows, D1, PROD, "gpt-4o")["models"] == ", ".join(sorted(["gpt-4o", GPT4O]))
    assert _row(rows, D2, PROD, "gpt-4o")["reason"] == (
        f"{UNPRICED}: cached tokens exceed input tokens")
    assert _row(rows, D1, RESEARCH, "mystery-model-1")["reason"] == (
        f"{UNPRICED}: {reasons.loc[(D1.isoformat(), 'openai', RESEARCH, 'mystery-model-1')]}")
    # The neighbouring prices, kept per raw model: D1 has a price after, D2 one before.
    with engine.connect() as conn:
        kept = {(r.day.isoformat(), r.project_id, r.value): r for r in conn.execute(
            select(SpendDaily.__table__).where(SpendDaily.dim == "model"))}
    for step, column in ((1, "estimate_before"), (-1, "estimate_after")):
        shifted, _ = _priced_per_family(engine, shifted_book(book, step))
        assert shifted.notna().any(), column  # the test compares some figures
        for (day, _, project, family), expected in shifted.items():
            found = [getattr(r, column) for (d, p, m), r in kept.items()
                     if (d, p) == (day, project) and model_family(m) == family
                     and getattr(r, column) is not None]
            assert (sum(found) if found else float("nan")) == pytest.approx(
                expected, abs=1e-9, nan_ok=True), (column, day, project, family)

