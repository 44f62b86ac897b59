"""Anthropic Console CSVs and Admin API report files: canonical rows, exact dollars."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from analytics.importers import ImportFailure, parse_sources
from analytics.ingest import import_sources
from analytics.models import model_family
from analytics.store import Cost, Usage
from tests.conftest import shared_samples

TOKENS_HEADER = ("usage_date_utc,model_version,api_key,workspace,usage_type,context_window,"
                 "usage_input_tokens_no_cache,usage_input_tokens_cache_write_5m,"
                 "usage_input_tokens_cache_write_1h,usage_input_tokens_cache_read,"
                 "usage_output_tokens,web_search_count,inference_geo,speed\n")
COST_HEADER = ("usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,"
               "cost_usd,list_price_usd,cost_type,inference_geo,speed,api_key_id,"
               "api_key_status\n")


def _cost_by(engine, column) -> dict[str, Decimal]:
    with engine.connect() as conn:
        rows = conn.execute(select(column, func.sum(Cost.amount)).group_by(column)).all()
    return {k: v for k, v in rows}


def test_shared_sample_matches_truth_to_the_cent_by_workspace_and_model(engine):
    folder = shared_samples("anthropic-small")
    truth = json.loads((folder / "truth.json").read_text())["truth"]
    results = import_sources(engine, [(p.name, p) for p in sorted(folder.glob("*.csv"))])
    assert all(r.ok for r in results), results
    cent = Decimal("0.01")
    by_workspace = _cost_by(engine, Cost.project_id)
    assert {k: v.quantize(cent) for k, v in by_workspace.items()} == {
        k: Decimal(str(v)).quantize(cent) for k, v in truth["by_workspace"].items()}
    # the cost export names models by display name; truth by API snapshot: compare families
    by_model = _cost_by(engine, Cost.model)
    assert {k: v.quantize(cent) for k, v in by_model.items()} == {
        model_family(k): Decimal(str(v)).quantize(cent) for k, v in truth["by_model"].items()}
    assert sum(by_workspace.values()) == Decimal(str(truth["total_usd"]))
    again = import_sources(engine, [(p.name, p) for p in sorted(folder.glob("*.csv"))])
    assert all(r.ok for r in again)
    assert _cost_by(engine, Cost.project_id) == by_workspace  # re-import counts once


def test_token_row_folds_cache_writes_and_reads_into_input(engine):
    csv = TOKENS_HEADER + (
        "2026-09-01,claude-haiku-4-5-20251001,bot,Default,standard,≤ 200k,1000,200,50,300,"
        "400,0,not_available,\n"
        "2026-09-01,claude-haiku-4-5-20251001,bot,Default,standard,> 200k,10,0,0,0,5,0,"
        "not_available,\n")
    results = import_sources(engine, [("claude_api_tokens_x.csv", csv.encode())])
    assert results[0].ok and results[0].format == "anthropic_tokens_csv"
    with engine.connect() as conn:
        rows = conn.execute(select(Usage.kind, Usage.project_id, Usage.api_key_id,
                                   Usage.service_tier, Usage.input_tokens,
                                   Usage.cached_input_tokens, Usage.output_tokens)
                            .order_by(Usage.input_tokens)).all()
    assert [tuple(r) for r in rows] == [
        ("messages", "Default", "bot", "long_context", 10, 0, 5),
        ("messages", "Default", "bot", "default", 1000 + 200 + 50 + 300, 300, 400)]


def test_older_column_sets_are_read():
    old_tokens = ("usage_date_utc,model_version,api_key,workspace,usage_type,"
                  "usage_input_tokens_no_cache,usage_input_tokens_cache_write,"
                  "usage_input_tokens_cache_read,usage_output_tokens\n"
                  "2025-03-01,claude-3-5-sonnet-20241022,k,,standard,100,20,30,40\n")
    old_cost = ("usage_date_utc,model,workspace,api_key,usage_type,token_type,cost_usd\n"
                "2025-03-01,Claude 3.5 Sonnet,,k,message,input_cache_write,0.000075\n")
    tokens, cost = parse_sources([("a.csv", old_tokens.encode()), ("b.csv", old_cost.encode())])
    usage = list(tokens.rows)
    assert usage[0].input_tokens == 150 and usage[0].cached_input_tokens == 30
    assert usage[0].project_id == "Default"  # no workspace: the default workspace
    line = list(cost.rows)[0]
    assert (line.model, line.token_type, line.amount, line.project_id) == (
        "claude-3-5-sonnet", "cache_write_5m", Decimal("0.000075"), "Default")


def test_cost_rows_keep_long_context_and_batch_apart(engine):
    csv = COST_HEADER + "".join(
        f"2026-09-02,Claude Sonnet 4.5,Research,nb,{usage},{ctx},output,{amount},{amount},"
        f"token,not_available,,apikey_1,active\n"
        for usage, ctx, amount in (("message", "≤ 200k", "1.50"), ("message", "> 200k", "2.25"),
                                   ("batch", "≤ 200k", "0.75")))
    assert import_sources(engine, [("claude_api_cost_x.csv", csv.encode())])[0].ok
    with engine.connect() as conn:
        items = dict(conn.execute(select(Cost.line_item, Cost.amount)).all())
    assert items == {"claude-sonnet-4-5, output": Decimal("1.50"),
                     "claude-sonnet-4-5, output (long_context)": Decimal("2.25"),
                     "claude-sonnet-4-5, output (batch)": Decimal("0.75")}


def test_cost_report_pages_in_cents_become_exact_dollars(engine):
    page = {"data": [{"starting_at": "2026-09-03T00:00:00Z", "ending_at": "2026-09-04T00:00:00Z",
                      "results": [{"currency": "USD", "amount": "12345.678901", "workspace_id":
                                   None, "description": "x", "cost_type": "tokens",
                                   "model": "claude-haiku-4-5-20251001",
                                   "token_type": "cache_read_input_tokens",
                                   "service_tier": "standard", "context_window": "0-200k"}]}],
            "has_more": False, "next_page": None}
    result = import_sources(engine, [("cost_report.json", json.dumps(page).encode())])[0]
    assert result.ok and result.format == "anthropic_api_cost"
    with engine.connect() as conn:
        row = conn.execute(select(Cost.amount, Cost.project_id, Cost.token_type)).one()
    assert tuple(row) == (Decimal("123.45678901"), "Default", "cached_input")


@pytest.mark.parametrize("body,expected", [
    (TOKENS_HEADER + "2026-09-01,m,k,Default,standard,≤ 200k,-5,0,0,0,1,0,,\n", "at least 0"),
    (TOKENS_HEADER + "09/01/2026,m,k,Default,standard,≤ 200k,5,0,0,0,1,0,,\n", "2026-09-01"),
    (COST_HEADER + "2026-09-01,Claude Sonnet 4.5,Default,k,message,≤ 200k,output,abc,,token,"
     ",,,\n", "not an amount"),
    ("usage_date_utc,workspace\n2026-09-01,Default\n", "needs usage_date_utc, usage_output"),
])
def test_damaged_exports_fail_with_the_line_and_a_reason(engine, body, expected):
    result = import_sources(engine, [("claude.csv", body.encode())])[0]
    assert not result.ok and expected in result.error
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Usage)).scalar_one() == 0


def test_a_failure_names_the_file():
    bad = parse_sources([("claude.csv", (TOKENS_HEADER + "x,m,k,D,s,c,1,0,0,0,1,0,,\n")
                          .encode())])[0]
    with pytest.raises(ImportFailure, match="claude.csv, line 2"):
        list(bad.rows)
