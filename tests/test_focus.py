"""The FOCUS export against FOCUS 1.2: every mandatory column, its type and its nulls."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics.access import SYSTEM, Principal
from analytics.focus import focus_csv, focus_frame, focus_parquet
from analytics.ingest import import_sources
from analytics.queries import total_cost
from tests.conftest import ROOT, shared_samples

START, END = date(2026, 9, 1), date(2026, 9, 30)
# FOCUS 1.2 mandatory columns (written here from the specification, not from the code).
SPEC = {
    "BilledCost": "Decimal", "BillingAccountId": "String", "BillingAccountName": "String",
    "BillingCurrency": "String", "BillingPeriodEnd": "DateTime",
    "BillingPeriodStart": "DateTime", "ChargeCategory": "String", "ChargeClass": "String",
    "ChargeDescription": "String", "ChargePeriodEnd": "DateTime",
    "ChargePeriodStart": "DateTime", "ContractedCost": "Decimal", "EffectiveCost": "Decimal",
    "InvoiceIssuerName": "String", "ListCost": "Decimal", "PricingQuantity": "Decimal",
    "PricingUnit": "String", "ProviderName": "String", "PublisherName": "String",
    "ServiceCategory": "String", "ServiceName": "String",
}
NULLABLE = {"ChargeClass"}  # null unless the row corrects an earlier period
SERVICE_CATEGORIES = {"AI and Machine Learning", "Analytics", "Business Applications",
                      "Compute", "Databases", "Developer Tools", "Multicloud", "Identity",
                      "Integration", "Internet of Things", "Management and Governance",
                      "Media", "Migration", "Mobile", "Networking", "Security", "Storage",
                      "Web", "Other"}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
def sample_org(engine):
    sources = [(p.name, p) for name in ("openai-small", "anthropic-small")
               for p in sorted(shared_samples(name).glob("*.csv"))]
    assert all(r.ok for r in import_sources(engine, sources))
    return engine


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_every_mandatory_column_with_its_type_and_nulls(sample_org):
    rows = _rows(focus_csv(focus_frame(sample_org, SYSTEM, START, END)))
    assert rows and set(SPEC) <= set(rows[0])
    for row in rows:
        for column, kind in SPEC.items():
            value = row[column]
            if column in NULLABLE:
                assert value == ""
                continue
            assert value != "", (column, row)
            if kind == "Decimal":
                try:
                    Decimal(value)
                except InvalidOperation:
                    pytest.fail(f"{column} {value!r} is not a decimal")
            elif kind == "DateTime":
                assert DATETIME.match(value), (column, value)
        assert row["ChargeCategory"] in {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
        assert row["ServiceCategory"] in SERVICE_CATEGORIES
        assert row["ServiceSubcategory"] == "Generative AI"
        assert re.fullmatch(r"[A-Z]{3}", row["BillingCurrency"])
        assert row["ChargePeriodStart"] < row["ChargePeriodEnd"]
        assert row["BillingPeriodStart"] <= row["ChargePeriodStart"]
        assert row["ChargePeriodEnd"] <= row["BillingPeriodEnd"]
        assert isinstance(json.loads(row["Tags"]), dict)
    providers = {r["ProviderName"] for r in rows}
    assert providers == {"OpenAI", "Anthropic"}
    september = [r for r in rows if r["ChargePeriodStart"] == "2026-09-01T00:00:00Z"]
    assert {r["BillingPeriodStart"] for r in september} == {"2026-09-01T00:00:00Z"}
    assert {r["BillingPeriodEnd"] for r in september} == {"2026-10-01T00:00:00Z"}


def test_billed_cost_total_equals_the_billed_spend(sample_org):
    rows = _rows(focus_csv(focus_frame(sample_org, SYSTEM, START, END)))
    billed = sum(Decimal(r["BilledCost"]) for r in rows)
    assert billed == total_cost(sample_org, SYSTEM, START, END)
    openai_truth = json.loads((shared_samples("openai-small") / "truth.json").read_text())
    anthropic_truth = json.loads((shared_samples("anthropic-small") / "truth.json").read_text())
    expected = (Decimal(str(openai_truth["truth"]["total_usd"]))
                + Decimal(str(anthropic_truth["truth"]["total_usd"])))
    assert billed.quantize(Decimal("0.000001")) == expected.quantize(Decimal("0.000001"))


def test_parquet_columns_carry_focus_types(sample_org):
    frame = focus_frame(sample_org, SYSTEM, START, END)
    table = pq.read_table(io.BytesIO(focus_parquet(frame)))
    kinds = {"Decimal": pa.types.is_decimal, "DateTime": pa.types.is_timestamp,
             "String": pa.types.is_string}
    for column, kind in SPEC.items():
        assert kinds[kind](table.schema.field(column).type), column
        nulls = table.column(column).null_count
        assert nulls == (table.num_rows if column in NULLABLE else 0), column
    assert table.schema.field("BilledCost").type.scale >= 9
    total = sum(v.as_py() for v in table.column("BilledCost"))
    assert total == total_cost(sample_org, SYSTEM, START, END)


def test_a_scoped_user_exports_only_their_projects(sample_org):
    scoped = Principal("r", "reader", frozenset({"Research"}))
    frame = focus_frame(sample_org, scoped, START, END)
    assert set(frame["SubAccountId"]) == {"Research"}
    assert sum(frame["BilledCost"]) == total_cost(sample_org, scoped, START, END)


def test_quantities_the_export_lacks_are_priced_per_dollar(engine):
    cost = ("usage_date_utc,model,workspace,api_key,usage_type,token_type,cost_usd\n"
            "2026-09-02,Claude Haiku 4.5,Default,bot,message,output,1.25\n")
    import_sources(engine, [("c.csv", cost.encode())])
    row = focus_frame(engine, SYSTEM, START, END).iloc[0]
    assert (row["PricingQuantity"], row["PricingUnit"]) == (Decimal("1.25"), "Dollars")
    assert (row["SubAccountId"], row["ResourceId"], row["SkuId"]) == (
        "Default", "bot", "claude-haiku-4-5/output")


def test_cli_writes_parquet(sample_org, db_url, tmp_path):
    out = tmp_path / "focus.parquet"
    done = subprocess.run(
        [sys.executable, "-m", "analytics", "export", "focus", "--db", db_url, "--start",
         "2026-09-01", "--end", "2026-09-30", "--format", "parquet", "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(out).num_rows == len(focus_frame(sample_org, SYSTEM, START, END))
