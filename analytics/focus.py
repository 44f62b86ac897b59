"""Billed AI spend as a FOCUS 1.2 cost-and-usage dataset, so it lands in FinOps tools next to
cloud bills.

One FOCUS row per stored cost line (org-wide rows only on days without project rows, exactly
as every spend figure counts them), so ``BilledCost`` sums to the billed spend. Choices:

- **Costs.** The providers bill list price with no negotiated or commitment discounts in
  their exports, so ``ListCost = ContractedCost = EffectiveCost = BilledCost``.
- **Quantity.** ``PricingQuantity`` is the export's token count where it has one (OpenAI's
  newer cost export and Admin API). Where it has none (OpenAI's 10-column export, Anthropic's
  cost reports), the row is priced per dollar (``PricingUnit`` "Dollars",
  ``PricingQuantity`` = ``BilledCost``) rather than left null, which FOCUS forbids for usage.
- **Who.** ``SubAccountId``/``Name`` is the project (OpenAI project, Anthropic workspace),
  ``ResourceId`` the API key, ``SkuId`` the model and token type, ``Tags`` the environment.
- **Billing period.** The organisation's billing month (its anchor day), end exclusive.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, select

from analytics.access import Principal
from analytics.budgets import period_containing
from analytics.exports import to_csv
from analytics.org import anchor_day, get_setting
from analytics.queries import effective_cost_condition, rows_frame, visible_projects
from analytics.store import ApiKey, Cost, Project

FOCUS_VERSION = "1.2"
# Column -> FOCUS data type, in the order written. The first block is FOCUS 1.2's mandatory
# columns; the rest are conditional or recommended columns this data can fill.
MANDATORY: dict[str, str] = {
    "BilledCost": "Decimal", "BillingAccountId": "String", "BillingAccountName": "String",
    "BillingCurrency": "String", "BillingPeriodEnd": "DateTime",
    "BillingPeriodStart": "DateTime", "ChargeCategory": "String", "ChargeClass": "String",
    "ChargeDescription": "String", "ChargePeriodEnd": "DateTime",
    "ChargePeriodStart": "DateTime", "ContractedCost": "Decimal", "EffectiveCost": "Decimal",
    "InvoiceIssuerName": "String", "ListCost": "Decimal", "PricingQuantity": "Decimal",
    "PricingUnit": "String", "ProviderName": "String", "PublisherName": "String",
    "ServiceCategory": "String", "ServiceName": "String",
}
OPTIONAL: dict[str, str] = {
    "ChargeFrequency": "String", "ServiceSubcategory": "String", "SubAccountId": "String",
    "SubAccountName": "String", "SubAccountType": "String", "ResourceId": "String",
    "ResourceName": "String", "ResourceType": "String", "SkuId": "String", "Tags": "JSON",
}
COLUMNS: dict[str, str] = {**MANDATORY, **OPTIONAL}

_PROVIDERS = {"openai": ("OpenAI", "OpenAI API", "Project"),
              "anthropic": ("Anthropic", "Claude API", "Workspace")}
_DATETIME = "%Y-%m-%dT%H:%M:%SZ"
_SCALE = Decimal("1e-12")  # Money keeps at most 12 decimals


def _cost_rows(engine: Engine, principal: Principal, start: date, end: date) -> pd.DataFrame:
    """The cost lines that count, with project and key names, for ``start``..``end``."""
    cost, projects, keys = Cost.__table__, Project.__table__, ApiKey.__table__
    scope = visible_projects(engine, principal, None)
    query = (
        select(cost.c.provider, cost.c.day, cost.c.project_id, cost.c.api_key_id,
               cost.c.line_item, cost.c.model, cost.c.token_type, cost.c.amount,
               cost.c.currency, cost.c.quantity, cost.c.unit,
               projects.c.name.label("project_name"), projects.c.environment,
               keys.c.name.label("key_name"))
        .select_from(cost.outerjoin(projects, and_(projects.c.provider == cost.c.provider,
                                                   projects.c.project_id == cost.c.project_id))
                     .outerjoin(keys, and_(keys.c.provider == cost.c.provider,
                                           keys.c.api_key_id == cost.c.api_key_id)))
        .where(effective_cost_condition(cost), cost.c.day >= start, cost.c.day <= end)
        .order_by(cost.c.day, cost.c.provider, cost.c.project_id, cost.c.line_item))
    if scope is not None:
        query = query.where(cost.c.project_id.in_(scope))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return rows_frame(rows, list(query.selected_columns.keys()))


def _none_if_blank(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna() & (values.astype(str) != ""), None)


def focus_frame(engine: Engine, principal: Principal, start: date, end: date) -> pd.DataFrame:
    """FOCUS 1.2 rows for the billed spend between ``start`` and ``end`` (inclusive) that
    ``principal`` may see. Money as ``Decimal``, times as UTC ``datetime``, nulls as None."""
    if end < start:
        raise ValueError(f"The export range ends ({end}) before it starts ({start}).")
    rows = _cost_rows(engine, principal, start, end)
    if rows.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    anchor, org = anchor_day(engine), get_setting(engine, "org_name")
    days = {d: _as_date(d) for d in rows["day"].unique()}
    periods = {d: period_containing(v, "month", anchor) for d, v in days.items()}
    provider = rows["provider"].map(lambda p: _PROVIDERS.get(p, (p.title(), p, "Project")))
    amount = rows["amount"].map(lambda v: Decimal(v).quantize(_SCALE))
    known = rows["quantity"].notna() & (rows["unit"].astype(str) != "")
    project = _none_if_blank(rows["project_id"])
    key = _none_if_blank(rows["api_key_id"])
    out = pd.DataFrame({
        "BilledCost": amount,
        "BillingAccountId": rows["provider"] + ":" + org,
        "BillingAccountName": org,
        "BillingCurrency": rows["currency"].str.upper(),
        "BillingPeriodEnd": rows["day"].map(lambda d: _utc(periods[d].end + timedelta(days=1))),
        "BillingPeriodStart": rows["day"].map(lambda d: _utc(periods[d].start)),
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeDescription": provider.str[1] + " usage: " + rows["line_item"],
        "ChargePeriodEnd": rows["day"].map(lambda d: _utc(days[d] + timedelta(days=1))),
        "ChargePeriodStart": rows["day"].map(lambda d: _utc(days[d])),
        "ContractedCost": amount,
        "EffectiveCost": amount,
        "InvoiceIssuerName": provider.str[0],
        "ListCost": amount,
        "PricingQuantity": [Decimal(q) if k else a
                            for q, k, a in zip(rows["quantity"], known, amount, strict=True)],
        "PricingUnit": rows["unit"].where(known, "Dollars").str.capitalize(),
        "ProviderName": provider.str[0],
        "PublisherName": provider.str[0],
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": provider.str[1],
        "ChargeFrequency": "Usage-Based",
        "ServiceSubcategory": "Generative AI",
        "SubAccountId": project,
        "SubAccountName": [n or p if p else None
                           for n, p in zip(rows["project_name"], project, strict=True)],
        "SubAccountType": provider.str[2].where(project.notna(), None),
        "ResourceId": key,
        "ResourceName": [n or k if k else None for n, k in zip(rows["key_name"], key,
                                                               strict=True)],
        "ResourceType": pd.Series("API key", index=rows.index).where(key.notna(), None),
        "SkuId": (rows["model"] + "/" + rows["token_type"]).where(
            rows["model"].astype(str) != "", rows["line_item"]),
        "Tags": rows["environment"].map(
            lambda e: json.dumps({"environment": e}) if e else "{}"),
    })
    return out[list(COLUMNS)]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def focus_csv(frame: pd.DataFrame) -> str:
    """The FOCUS rows as CSV: times as ``2026-09-01T00:00:00Z``, money written in full,
    empty cells for nulls, text made safe to open in a spreadsheet."""
    text = frame.copy()
    for column, kind in COLUMNS.items():
        if kind == "DateTime":
            text[column] = text[column].map(lambda t: t.strftime(_DATETIME) if t else None)
    return to_csv(text)


def focus_parquet(frame: pd.DataFrame) -> bytes:
    """The FOCUS rows as Parquet with typed columns: decimal128(38, 12) money,
    UTC timestamps, strings (Tags as JSON text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = {"Decimal": pa.decimal128(38, 12), "DateTime": pa.timestamp("us", tz="UTC"),
             "String": pa.string(), "JSON": pa.string()}
    schema = pa.schema([pa.field(c, kinds[k]) for c, k in COLUMNS.items()])
    table = pa.Table.from_pydict(
        {c: [None if v is None or (isinstance(v, float) and pd.isna(v)) else v
             for v in frame[c]] for c in COLUMNS}, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


__all__ = ["FOCUS_VERSION", "MANDATORY", "OPTIONAL", "COLUMNS", "focus_frame", "focus_csv",
           "focus_parquet"]
