"""What-if scenarios on stored usage: run one over a period, save it by name, and see what it
would do to the current period's forecast.

The pricing maths is in ``pricing.py`` (pure); this module feeds it the store's usage and
keeps named scenarios in ``documents`` (``kind='scenario'``, body = the scenario's JSON).
Saving and deleting take a Member or an Owner and are audited; everyone may run and load.

Forecast effect (stated on the What-if page too): the period-end forecast is made from daily
spend as usual; the part still to come (forecast - spent so far) is scaled by the ratio of
scenario to baseline cost over the last 28 days of usage. Spend already made is not undone.

Example:
    >>> s = parse_migration(engine, owner, "gpt-4o:gpt-5-mini:70%:Production")  # doctest: +SKIP
    >>> run_scenario(engine, owner, s, date(2026, 9, 1), date(2026, 9, 30)).difference_usd
    ... # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, delete, select

from analytics import audit
from analytics.access import AccessDenied, Principal
from analytics.budgets import Period, period_containing
from analytics.forecast import ForecastResult, forecast_period_end
from analytics.models import model_family
from analytics.price_store import current_book
from analytics.pricing import (
    PRICE_COLUMNS,
    MigrationScenario,
    PriceBook,
    PriceListScenario,
    Scenario,
    ScenarioError,
    monthly_difference,
    reprice,
    reprice_summary,
    scenario_from_json,
    scenario_to_json,
)
from analytics.queries import projects, spend, usage_for_pricing
from analytics.spend_estimates import spend_with_estimates
from analytics.store import NamedDocument, write_transaction

KIND = "scenario"
MAX_NAME = 128
RATIO_DAYS = 28


# --- saved scenarios ---------------------------------------------------------------------


def save_scenario(engine: Engine, principal: Principal, scenario: Scenario, name: str,
                  replace: bool = False) -> None:
    """Store ``scenario`` under ``name``; an existing name needs ``replace=True``."""
    principal.require("save what-if scenarios")
    name = _checked_name(name)
    if isinstance(scenario, MigrationScenario) and scenario.project_ids is not None:
        for project_id in scenario.project_ids:
            if not principal.sees(project_id):
                raise AccessDenied(f"No project '{project_id}' is visible to "
                                   f"{principal.username}.")
    body = scenario_to_json(dataclasses.replace(scenario, name=name))
    table = NamedDocument.__table__
    where = (table.c.kind == KIND, table.c.name == name)
    with write_transaction(engine) as conn:
        before = conn.execute(select(table.c.body).where(*where)).scalar()
        if before is not None and not replace:
            raise ScenarioError(f"A scenario named '{name}' exists already; choose another "
                                "name or replace it.")
        conn.execute(delete(table).where(*where))
        conn.execute(table.insert().values(
            kind=KIND, name=name, status="", period="", body=body,
            updated_by=principal.username, updated_at=datetime.now(UTC).replace(tzinfo=None)))
        audit.record(conn, principal.username, "scenario.save", name,
                     None if before is None else json.loads(before), json.loads(body))


def load_scenario(engine: Engine, name: str) -> PriceListScenario | MigrationScenario:
    """The scenario saved as ``name``; ``ScenarioError`` when there is none."""
    table = NamedDocument.__table__
    with engine.connect() as conn:
        body = conn.execute(select(table.c.body).where(
            table.c.kind == KIND, table.c.name == name)).scalar()
    if body is None:
        raise ScenarioError(f"There is no saved scenario named '{name}'.")
    return scenario_from_json(body)


def list_scenarios(engine: Engine) -> pd.DataFrame:
    """Saved scenarios: name, description, updated_by, updated_at (newest first)."""
    table = NamedDocument.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.name, table.c.body, table.c.updated_by,
                                   table.c.updated_at).where(table.c.kind == KIND)
                            .order_by(table.c.updated_at.desc(), table.c.name)).all()
    return pd.DataFrame(
        [(r.name, describe(scenario_from_json(r.body)), r.updated_by, r.updated_at)
         for r in rows], columns=["name", "description", "updated_by", "updated_at"])


def delete_scenario(engine: Engine, principal: Principal, name: str) -> None:
    principal.require("delete what-if scenarios")
    table = NamedDocument.__table__
    where = (table.c.kind == KIND, table.c.name == name)
    with write_transaction(engine) as conn:
        before = conn.execute(select(table.c.body).where(*where)).scalar()
        if before is None:
            raise ScenarioError(f"There is no saved scenario named '{name}'.")
        conn.execute(delete(table).where(*where))
        audit.record(conn, principal.username, "scenario.delete", name, json.loads(before))


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ScenarioError("Give the scenario a name.")
    if len(name) > MAX_NAME:
        raise ScenarioError(f"A scenario name has at most {MAX_NAME} characters.")
    return name


def describe(scenario: Scenario, names: dict[str, str] | None = None) -> str:
    """One line for lists: "Move 70% of gpt-4o to gpt-5-mini (Production)"."""
    if isinstance(scenario, MigrationScenario):
        where = ("all projects" if scenario.project_ids is None else ", ".join(
            (names or {}).get(p, p) for p in scenario.project_ids))
        return (f"Move {scenario.share:.0%} of {scenario.from_family} to "
                f"{scenario.to_family} ({where})")
    if isinstance(scenario, PriceListScenario):
        families = sorted(set(scenario.book.to_frame()["family"]))
        return f"Price list for {', '.join(families)}"
    return scenario.name


# --- building scenarios from what a person typed -----------------------------------------


def resolve_projects(engine: Engine, principal: Principal, wanted: Sequence[str]
                     ) -> tuple[str, ...]:
    """Project ids for ids or display names, as the principal may see them."""
    visible = projects(engine, principal)
    by_name = {str(n).lower(): pid for pid, n in zip(visible["project_id"], visible["name"],
                                                     strict=True) if n}
    ids = set(visible["project_id"])
    out = []
    for item in (w.strip() for w in wanted if w.strip()):
        project_id = item if item in ids else by_name.get(item.lower())
        if project_id is None:
            raise ScenarioError(f"No project '{item}' is visible to {principal.username}.")
        out.append(project_id)
    return tuple(out)


def families_in_use(engine: Engine, principal: Principal, start: date, end: date
                    ) -> list[str]:
    """Model families with usage in the period, for choosing what to migrate from."""
    models = spend(engine, principal, "model", start, end)
    used = models[(models["input_tokens"] + models["output_tokens"]) > 0]
    return sorted({model_family(m) for m in used["model"] if m})


def parse_migration(engine: Engine, principal: Principal, text: str) -> MigrationScenario:
    """``FROM:TO:SHARE[:PROJECT,...]``, share as 0.7 or 70%, projects by id or name."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise ScenarioError(f"'{text}' is not FROM:TO:SHARE[:PROJECT,...], e.g. "
                            "gpt-4o:gpt-5-mini:70%:Production.")
    share_text = parts[2].strip()
    try:
        share = (float(share_text[:-1]) / 100 if share_text.endswith("%")
                 else float(share_text))
    except ValueError:
        raise ScenarioError(f"The share '{share_text}' is not a number like 0.7 or 70%.") from None
    project_ids = (resolve_projects(engine, principal, parts[3].split(","))
                   if len(parts) == 4 else None)
    return MigrationScenario(parts[0], parts[1], share, project_ids=project_ids)


def edited_price_list(original: pd.DataFrame, edited: pd.DataFrame, effective_from: date,
                      name: str = "") -> PriceListScenario:
    """A price-list scenario from the rows a person changed in a table of prices.

    ``original`` and ``edited`` are text frames in the price file's columns (as
    ``pricing.price_table`` gives them), row for row. Only changed rows count, and they
    apply from ``effective_from`` (the period's first day), so "what if gpt-5 cost this"
    means the whole period, not only the days after the list price's own date.
    """
    rates = ["input_per_1m", "cached_input_per_1m", "cache_write_per_1m", "output_per_1m",
             "batch_discount"]
    before = original[rates].fillna("").astype(str).reset_index(drop=True)
    after = edited[rates].fillna("").astype(str).reset_index(drop=True)
    changed = (before.map(str.strip) != after.map(str.strip)).any(axis=1)
    if not changed.any():
        raise ScenarioError("Change at least one price in the table.")
    rows = original.reset_index(drop=True).loc[changed, list(PRICE_COLUMNS)].copy()
    rows[rates] = after.loc[changed, rates]
    rows["effective_from"] = effective_from.isoformat()
    return PriceListScenario(PriceBook.from_frame(rows, "the edited prices"), name)


# --- running a scenario ------------------------------------------------------------------


@dataclass(frozen=True)
class WhatIf:
    """A scenario run over stored usage. Sums leave out usage unpriced on either side;
    ``unpriced`` lists it (model, reason, rows) and must be shown next to the sums."""

    rows: pd.DataFrame  # pricing.reprice's frame
    by_project_model: pd.DataFrame  # project_id, project, model, baseline/scenario/difference
    monthly: pd.DataFrame  # month, baseline_usd, scenario_usd, difference_usd, unpriced_rows
    unpriced: pd.DataFrame  # model, reason, rows

    @property
    def baseline_usd(self) -> float:
        return float(self.monthly["baseline_usd"].sum())

    @property
    def scenario_usd(self) -> float:
        return float(self.monthly["scenario_usd"].sum())

    @property
    def difference_usd(self) -> float:
        return float(self.monthly["difference_usd"].sum())


def run_scenario(engine: Engine, principal: Principal, scenario: Scenario, start: date,
                 end: date, project: str | Sequence[str] | None = None,
                 book: PriceBook | None = None) -> WhatIf:
    """Re-cost the usage of ``start``..``end`` under ``scenario`` against the current book."""
    if end < start:
        raise ScenarioError("The period ends before it starts.")
    usage = usage_for_pricing(engine, principal, start, end, project)
    rows = reprice(usage, book or current_book(engine), scenario)
    names = projects(engine, principal)
    name_of = dict(zip(names["project_id"], names["name"].fillna(names["project_id"]),
                       strict=True))
    by = reprice_summary(rows, by=["project_id", "model"])
    by.insert(1, "project", [name_of.get(p) or p or "(no project)" for p in by["project_id"]])
    unpriced = (rows[~rows["priced"]].groupby(["model", "unpriced_reason"], as_index=False)
                .size().rename(columns={"unpriced_reason": "reason", "size": "rows"}))
    return WhatIf(rows, by, monthly_difference(rows), unpriced)


@dataclass(frozen=True)
class ForecastEffect:
    """The current period's forecast as it stands and under the scenario."""

    baseline: ForecastResult
    ratio: float  # scenario / baseline cost over the last RATIO_DAYS days of usage
    forecast: float
    low: float
    high: float

    @property
    def difference_usd(self) -> float:
        return self.forecast - self.baseline.forecast


def forecast_effect(engine: Engine, principal: Principal, scenario: Scenario, as_of: date,
                    anchor_day: int = 1, book: PriceBook | None = None,
                    method: str = "shipped") -> ForecastEffect:
    """Period-end forecast for the month holding ``as_of``, baseline and under ``scenario``
    (remaining-days part scaled by the last 28 days' scenario/baseline ratio)."""
    book = book or current_book(engine)
    period: Period = period_containing(as_of, "month", anchor_day)
    daily = spend_with_estimates(engine, principal, "day", end=as_of, book=book)
    series = pd.Series([float(v) if v is not None else 0.0 for v in daily["cost_usd"]],
                       index=pd.to_datetime(daily["day"]))
    baseline = forecast_period_end(series, period, as_of, method)
    return effect_on(baseline, engine, principal, scenario, book=book)


def effect_on(baseline: ForecastResult, engine: Engine, principal: Principal,
              scenario: Scenario, project: list[str] | None = None,
              book: PriceBook | None = None) -> ForecastEffect:
    """``baseline`` re-costed under ``scenario``: the spend still to come (forecast minus
    spent, and the band's ends likewise) times the scenario/baseline list-price cost of the
    last 28 days of usage to ``baseline.as_of``. Spend already made is not changed."""
    recent = run_scenario(engine, principal, scenario,
                          baseline.as_of - timedelta(days=RATIO_DAYS - 1), baseline.as_of,
                          project=project, book=book)
    ratio = recent.scenario_usd / recent.baseline_usd if recent.baseline_usd > 0 else 1.0
    spent = baseline.actual_to_date

    def scaled(total: float) -> float:
        return round(spent + (total - spent) * ratio, 2)

    return ForecastEffect(baseline, ratio, scaled(baseline.forecast), scaled(baseline.low),
                          scaled(baseline.high))
