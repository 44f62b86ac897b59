"""Findings for engineers: where money can be saved, what to do, and what it is worth a month.

Each finder looks at the usage the principal may see in an analysed window and returns
``Finding`` objects: a kind, a title, the action, dollars per month, the project, key, model
and time window it is about, a chart and the evidence rows behind it.

How dollars are computed, and why:

- **Repricing, not guessing.** A saving is the list-price cost of the same tokens now minus
  their cost after the change (another model, cached prompts, the Batch API), through the
  price book (``analytics.pricing``). These are *estimates*: billed cost has no key or request
  breakdown, and quality or latency after a change is for the engineer to check.
- **Per month.** Dollars found in the window are scaled to 30 days of it
  (``window_usd x 30 / days``), so a 90-day and a 14-day analysis rank alike.
- **Overlap.** Two findings can touch the same tokens (a legacy model that is also
  batch-able); their savings are alternatives, not a sum.

Thresholds are named constants below, each with the reason for its value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Integer, and_, func, select

from analytics import anomaly
from analytics.access import Principal
from analytics.exports import records
from analytics.keys import key_inventory, project_labels
from analytics.models import capability_class, cheaper_alternative
from analytics.price_store import current_book
from analytics.pricing import MigrationScenario, PriceBook, estimate_cost, reprice
from analytics.queries import (
    PRICING_KEYS,
    TOKEN_COLUMNS,
    data_range,
    rows_frame,
    usage_for_pricing,
    visible_projects,
)
from analytics.store import Usage

DEFAULT_WINDOW_DAYS = 90
MIN_MONTHLY_USD = 1.0  # below a dollar a month a finding is noise on an engineer's list

# A classification or extraction call: a short prompt and a label-sized answer.
SHORT_PROMPT_TOKENS = 1_000
SHORT_OUTPUT_TOKENS = 100
MIN_PATTERN_REQUESTS = 1_000  # fewer requests in the window are not a pattern

# OpenAI caches prompt prefixes of 1,024 tokens or more. A share under 20% on long prompts
# means the stable part (system prompt, tools, examples) is not placed first or varies.
CACHE_MIN_PROMPT_TOKENS = 1_024
CACHE_LOW_SHARE = 0.20
CACHE_TARGET_SHARE = 0.50  # assumed: half of a long prompt is a stable, cacheable prefix
CACHE_MIN_REQUESTS_PER_DAY = 100  # a cache entry lives minutes: prompts must repeat often

# A nightly job: most of its requests fall in a few hours of the day, on several days.
NIGHTLY_HOURS = 4
NIGHTLY_SHARE = 0.80
NIGHTLY_MIN_DAYS = 3
BATCH_ENVIRONMENT = "Analytics"  # the environment label for offline work nobody waits for
BATCH_MIN_ACTIVE_SHARE = 0.5  # a steady workload runs on at least half the days

# A spike worth a finding: a dollar extra, or a burst of requests (cheap retries still burn
# the shared rate limit).
RUNAWAY_MIN_EXTRA_USD = 1.0
RUNAWAY_MIN_EXTRA_REQUESTS = 1_000

EMPTY_MIN_REQUESTS = 100
BUSIEST_BUCKETS = 10
RATE_LIMIT_SHARE = 0.5

_RAW = [*PRICING_KEYS, "api_key_id", *TOKEN_COLUMNS]  # usage columns before pricing
_SMALLER_SIBLING = {"claude-sonnet-4-5": "claude-haiku-4-5", "claude-opus-4-1": "claude-haiku-4-5"}

KINDS = {
    "legacy_model": "Model choice",
    "oversized_model": "Model choice",
    "prompt_caching": "Discount",
    "batch_api": "Discount",
    "runaway": "Runaway spend",
    "empty_output": "Errors and quota",
    "rate_limit": "Errors and quota",
    "stale_key": "API keys",
}

_MODEL_CAVEAT = ("Estimated at list price by repricing the same tokens. Check quality on a "
                 "sample of real requests before switching; output lengths may change.")
FINDING_COLUMNS = ["kind", "category", "title", "action", "monthly_usd", "window_usd",
                   "project_id", "project", "api_key", "model", "window", "caveat"]


@dataclass(frozen=True)
class Finding:
    """One thing an engineer can act on. ``chart`` holds x, series, y (``chart_money`` says
    whether y is dollars); ``evidence`` holds the rows behind the finding."""

    kind: str
    title: str
    action: str
    monthly_usd: float
    project_id: str
    project: str
    api_key: str
    model: str
    window: str
    window_usd: float = 0.0
    caveat: str = ""
    evidence: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False, repr=False)
    chart: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False, repr=False)
    chart_title: str = ""
    chart_money: bool = True

    @property
    def category(self) -> str:
        return KINDS[self.kind]


@dataclass(frozen=True)
class InsightReport:
    start: date
    end: date
    findings: list[Finding]
    notes: list[str]

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class _Context:
    start: date
    end: date
    book: PriceBook
    names: dict[str, str]
    environments: dict[str, str]
    min_monthly_usd: float

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def monthly(self, window_usd: float) -> float:
        return float(window_usd) * 30.0 / self.days

    def name(self, project_id: str) -> str:
        return self.names.get(project_id) or project_id or "(no project)"

    def worth_it(self, window_usd: float) -> bool:
        return self.monthly(window_usd) >= self.min_monthly_usd


# --- queries ----------------------------------------------------------------------------


def _whole_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Token and request sums as int64: PostgreSQL's SUM of a bigint is a numeric, which
    arrives as Decimal and does not mix with float arithmetic."""
    return frame.astype({c: "int64" for c in TOKEN_COLUMNS})


def _width_seconds(usage: Any, dialect: str) -> Any:
    """A bucket's width in whole seconds, in SQL."""
    if dialect == "sqlite":
        days = func.julianday(usage.c.bucket_end) - func.julianday(usage.c.bucket_start)
        return func.cast(func.round(days * 86_400), Integer)
    return func.cast(func.extract("epoch", usage.c.bucket_end - usage.c.bucket_start), Integer)


def intraday_usage(engine: Engine, principal: Principal, start: date, end: date) -> pd.DataFrame:
    """Usage in buckets shorter than a day (hourly or minute exports), summed in SQL by
    bucket and everything a price depends on, plus the key; ``width`` in seconds."""
    usage = Usage.__table__
    width = _width_seconds(usage, engine.dialect.name).label("width")
    keys = [width, usage.c.bucket_start, *(usage.c[k] for k in PRICING_KEYS), usage.c.api_key_id]
    scope = visible_projects(engine, principal, None)
    conds = [usage.c.day >= start, usage.c.day <= end, width < 86_400]
    if scope is not None:
        conds.append(usage.c.project_id.in_(scope))
    query = (select(*keys, *(func.sum(usage.c[c]).label(c) for c in TOKEN_COLUMNS))
             .where(and_(*conds)).group_by(*keys))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = rows_frame(rows, ["width", "bucket_start", *PRICING_KEYS, "api_key_id",
                                        *TOKEN_COLUMNS])
    frame["bucket_start"] = pd.to_datetime(frame["bucket_start"])
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    frame["batch"] = frame["batch"].astype(bool)
    return _whole_counts(frame)


def empty_output_usage(engine: Engine, principal: Principal, start: date,
                       end: date) -> pd.DataFrame:
    """Completions buckets with requests but not one output token, by day, price keys and
    key: requests that produced nothing while their input was billed."""
    usage = Usage.__table__
    keys = [*(usage.c[k] for k in PRICING_KEYS), usage.c.api_key_id]
    scope = visible_projects(engine, principal, None)
    conds = [usage.c.day >= start, usage.c.day <= end, usage.c.kind == "completions",
             usage.c.output_tokens == 0, usage.c.requests > 0]
    if scope is not None:
        conds.append(usage.c.project_id.in_(scope))
    query = (select(*keys, *(func.sum(usage.c[c]).label(c) for c in TOKEN_COLUMNS))
             .where(and_(*conds)).group_by(*keys))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = rows_frame(rows, [*PRICING_KEYS, "api_key_id", *TOKEN_COLUMNS])
    frame["batch"] = frame["batch"].astype(bool)
    return _whole_counts(frame)


# --- shared helpers ---------------------------------------------------------------------


def _estimated(usage: pd.DataFrame, book: PriceBook) -> pd.DataFrame:
    """List-price cost per row, with boolean flags that stay boolean on an empty frame (an
    empty object column used as a mask would select columns instead of rows)."""
    priced = estimate_cost(usage, book)
    return priced.astype({"fine_tuned": bool, "priced": bool, "batch": bool})


def _joined(values: pd.Series) -> str:
    names = sorted({str(v) for v in values if str(v)})
    return ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} (+{len(names) - 3})"


def _daily_pair(frame: pd.DataFrame, now: str, then: str, then_label: str) -> pd.DataFrame:
    """Chart rows (x, series, y): daily cost now against the cost after the change."""
    daily = frame.groupby("day", as_index=False)[[now, then]].sum()
    return pd.concat([
        pd.DataFrame({"x": daily["day"], "series": "Now", "y": daily[now]}),
        pd.DataFrame({"x": daily["day"], "series": then_label, "y": daily[then]}),
    ], ignore_index=True)


def _day_evidence(frame: pd.DataFrame, now: str, then: str, then_label: str) -> pd.DataFrame:
    evidence = (frame.groupby(["day", "api_key_id", "model"], as_index=False)
                .agg(requests=("requests", "sum"), input_tokens=("input_tokens", "sum"),
                     cached_input_tokens=("cached_input_tokens", "sum"),
                     output_tokens=("output_tokens", "sum"), now_usd=(now, "sum"),
                     after_usd=(then, "sum")))
    return evidence.rename(columns={"after_usd": then_label}).sort_values(
        ["day", "api_key_id", "model"], ignore_index=True)


def _window_text(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


# --- model choice -----------------------------------------------------------------------


def _migration_findings(ctx: _Context, usage: pd.DataFrame, targets: dict[str, str],
                        kind: str, describe: Callable[[str, str, str, str], tuple[str, str]]
                        ) -> list[Finding]:
    """Reprice each (project, model) of ``usage`` at its family's target; one finding each.

    ``describe(project_id, model, family, target)`` gives the title and the action.
    """
    found: list[Finding] = []
    for family, target in sorted(targets.items()):
        rows = usage.loc[usage["family"] == family, _RAW]
        if rows.empty:
            continue
        priced = reprice(rows, ctx.book, MigrationScenario(family, target, 1.0))
        priced = priced[priced["priced"]]
        for (project_id, model), group in priced.groupby(["project_id", "model"]):
            saving = float(group["baseline_usd"].sum() - group["scenario_usd"].sum())
            if not ctx.worth_it(saving):
                continue
            monthly = ctx.monthly(saving)
            title, action = describe(project_id, model, family, target)
            label = f"{target}_usd"
            found.append(Finding(
                kind=kind, title=title, action=action, monthly_usd=monthly,
                window_usd=saving, project_id=project_id, project=ctx.name(project_id),
                api_key=_joined(group["api_key_id"]), model=model,
                window=_window_text(ctx.start, ctx.end), caveat=_MODEL_CAVEAT,
                evidence=_day_evidence(group, "baseline_usd", "scenario_usd", label),
                chart=_daily_pair(group, "baseline_usd", "scenario_usd", f"On {target}"),
                chart_title=f"Daily cost of {model} in {ctx.name(project_id)}: now and on "
                            f"{target} (USD, list price)"))
    return found


def legacy_models(ctx: _Context, usage: pd.DataFrame) -> list[Finding]:
    """Usage on a legacy model (gpt-4, gpt-4-turbo, o1...) that a current, cheaper model of
    the same capability class replaces."""
    current = usage[~usage["fine_tuned"]]
    targets = {f: cheaper_alternative(f) for f in current["family"].unique()
               if cheaper_alternative(f)}

    def describe(project_id: str, model: str, family: str, target: str) -> tuple[str, str]:
        project = ctx.name(project_id)
        return (f"{project} still runs legacy {model}; {target} costs less",
                f"Move {project}'s {model} traffic to {target} ({family} is a legacy model; "
                f"{target} is its current, cheaper successor). Test on a sample first.")

    return _migration_findings(ctx, current, targets, "legacy_model", describe)


def _smaller_sibling(family: str, provider: str, book: PriceBook, day: date) -> str | None:
    """The mini model of a flagship's own generation, when the price book prices it."""
    for target in (f"{family}-mini", _SMALLER_SIBLING.get(family)):
        if target and book.price_for(provider, target, day) is not None:
            return target
    return None


def oversized_models(ctx: _Context, usage: pd.DataFrame) -> list[Finding]:
    """Short prompts with short answers on a flagship model: the classification and
    extraction pattern a mini model handles at a fraction of the price."""
    rows = usage[~usage["fine_tuned"]
                 & usage["family"].map(lambda f: capability_class(f) == "flagship")
                 & usage["family"].map(lambda f: cheaper_alternative(f) is None)]
    shape = rows.groupby(["project_id", "model"], as_index=False)[
        ["requests", "input_tokens", "output_tokens"]].sum()
    shape = shape[(shape["requests"] >= MIN_PATTERN_REQUESTS)
                  & (shape["input_tokens"] <= SHORT_PROMPT_TOKENS * shape["requests"])
                  & (shape["output_tokens"] <= SHORT_OUTPUT_TOKENS * shape["requests"])]
    rows = rows.merge(shape[["project_id", "model"]], on=["project_id", "model"])
    targets = {}
    for family, provider in rows[["family", "provider"]].drop_duplicates().itertuples(
            index=False):
        target = _smaller_sibling(family, provider, ctx.book, ctx.end)
        if target:
            targets[family] = target
    averages = shape.set_index(["project_id", "model"])

    def describe(project_id: str, model: str, family: str, target: str) -> tuple[str, str]:
        project = ctx.name(project_id)
        avg = averages.loc[(project_id, model)]
        per_in = avg["input_tokens"] / avg["requests"]
        per_out = avg["output_tokens"] / avg["requests"]
        return (f"{project} sends short requests to flagship {model}; {target} would do",
                f"Requests average {per_in:,.0f} prompt and {per_out:,.0f} output tokens: a "
                f"classification or extraction pattern. Try {target} on a labelled sample; "
                f"keep {family} only where it is measurably better.")

    return _migration_findings(ctx, rows, targets, "oversized_model", describe)


# --- discounts --------------------------------------------------------------------------


def prompt_caching(ctx: _Context, usage: pd.DataFrame) -> list[Finding]:
    """Long, frequent prompts with few cache hits: reorder prompts so the stable part comes
    first and the cache serves it at the cached-input price."""
    rows = usage[~usage["fine_tuned"] & usage["priced"]]
    shape = rows.groupby(["project_id", "model"], as_index=False).agg(
        requests=("requests", "sum"), input_tokens=("input_tokens", "sum"),
        cached=("cached_input_tokens", "sum"), active_days=("day", "nunique"))
    shape = shape[(shape["input_tokens"] >= CACHE_MIN_PROMPT_TOKENS * shape["requests"])
                  & (shape["cached"] < CACHE_LOW_SHARE * shape["input_tokens"])
                  & (shape["requests"] >= CACHE_MIN_REQUESTS_PER_DAY * shape["active_days"])]
    found: list[Finding] = []
    for item in shape.itertuples(index=False):
        group = rows[(rows["project_id"] == item.project_id) & (rows["model"] == item.model)]
        cached = np.maximum(group["cached_input_tokens"],
                            np.floor(group["input_tokens"] * CACHE_TARGET_SHARE))
        after = estimate_cost(group.assign(cached_input_tokens=cached)[_RAW], ctx.book)
        group = group.assign(with_cache_usd=after["estimated_cost_usd"].to_numpy())
        saving = float(group["estimated_cost_usd"].sum() - group["with_cache_usd"].sum())
        if not ctx.worth_it(saving):
            continue
        monthly = ctx.monthly(saving)
        project = ctx.name(item.project_id)
        share = item.cached / item.input_tokens
        found.append(Finding(
            kind="prompt_caching",
            title=f"{item.model} prompts in {project} are long but {share:.0%} cached",
            action=(f"Prompts average {item.input_tokens / item.requests:,.0f} tokens and "
                    f"repeat ~{item.requests / item.active_days:,.0f} times a day. Put the "
                    "stable part (system prompt, tools, examples) first and the variable part "
                    "last, and keep that prefix byte-identical between requests."),
            monthly_usd=monthly, window_usd=saving, project_id=item.project_id,
            project=project, api_key=_joined(group["api_key_id"]), model=item.model,
            window=_window_text(ctx.start, ctx.end),
            caveat=(f"Assumes {CACHE_TARGET_SHARE:.0%} of each prompt is a stable prefix the "
                    "cache can serve; caching starts at 1,024-token prompts."),
            evidence=_day_evidence(group, "estimated_cost_usd", "with_cache_usd",
                                   "with_cache_usd"),
            chart=_daily_pair(group, "estimated_cost_usd", "with_cache_usd", "With caching"),
            chart_title=f"Daily cost of {item.model} in {project}: now and with prompt "
                        "caching (USD, list price)"))
    return found


def nightly_workloads(intraday: pd.DataFrame) -> pd.DataFrame:
    """(project_id, model, hours) of non-batch work that runs in a few hours of the day on
    several days, from hourly or minute buckets."""
    rows = intraday[~intraday["batch"]]
    if rows.empty:
        return pd.DataFrame(columns=["project_id", "model", "hours"])
    rows = rows.assign(hour=rows["bucket_start"].dt.hour)
    by_hour = rows.groupby(["project_id", "model", "hour"], as_index=False)["requests"].sum()
    days = rows.groupby(["project_id", "model"])["day"].nunique()
    out = []
    for (project_id, model), group in by_hour.groupby(["project_id", "model"]):
        top = group.nlargest(NIGHTLY_HOURS, "requests")
        total = group["requests"].sum()
        if (days[(project_id, model)] >= NIGHTLY_MIN_DAYS and total > 0
                and top["requests"].sum() >= NIGHTLY_SHARE * total):
            hours = ", ".join(f"{h:02d}:00" for h in sorted(top["hour"]))
            out.append((project_id, model, hours))
    return pd.DataFrame(out, columns=["project_id", "model", "hours"])


def batch_api(ctx: _Context, usage: pd.DataFrame, intraday: pd.DataFrame) -> list[Finding]:
    """Steady work nobody waits for, sent at full price: the Batch API halves it."""
    rows = usage[~usage["fine_tuned"] & usage["priced"] & ~usage["batch"]
                 & (usage["service_tier"] == "default")]
    nightly = nightly_workloads(intraday).set_index(["project_id", "model"])["hours"]
    found: list[Finding] = []
    for (project_id, model), group in rows.groupby(["project_id", "model"]):
        if (project_id, model) in nightly.index:
            why = (f"It runs as a nightly job: most requests arrive in "
                   f"{nightly[(project_id, model)]} UTC.")
        elif ctx.environments.get(project_id) == BATCH_ENVIRONMENT:
            why = f"The project is labelled {BATCH_ENVIRONMENT}: offline work nobody waits for."
        else:
            continue
        if group["day"].nunique() < BATCH_MIN_ACTIVE_SHARE * ctx.days:
            continue
        after = estimate_cost(group.assign(batch=True)[_RAW], ctx.book)
        group = group.assign(batch_usd=after["estimated_cost_usd"].to_numpy())
        saving = float(group["estimated_cost_usd"].sum() - group["batch_usd"].sum())
        if not ctx.worth_it(saving):
            continue
        monthly = ctx.monthly(saving)
        project = ctx.name(project_id)
        found.append(Finding(
            kind="batch_api",
            title=f"{model} work in {project} could run on the Batch API",
            action=(f"{why} Submit it through the Batch API (half the list price, results "
                    "within 24 hours)."),
            monthly_usd=monthly, window_usd=saving, project_id=project_id, project=project,
            api_key=_joined(group["api_key_id"]), model=model,
            window=_window_text(ctx.start, ctx.end),
            caveat="Only for work whose results can wait up to 24 hours.",
            evidence=_day_evidence(group, "estimated_cost_usd", "batch_usd", "batch_usd"),
            chart=_daily_pair(group, "estimated_cost_usd", "batch_usd", "On the Batch API"),
            chart_title=f"Daily cost of {model} in {project}: now and on the Batch API "
                        "(USD, list price)"))
    return found


# --- runaway spend ----------------------------------------------------------------------


def _series(rows: pd.DataFrame, time_col: str) -> pd.DataFrame:
    """Requests and dollars per key and per project (key ''), keyed ``project|key``."""
    parts = []
    for keys in (["project_id", "api_key_id"], ["project_id"]):
        grouped = rows.groupby([*keys, time_col], as_index=False).agg(
            requests=("requests", "sum"), usd=("estimated_cost_usd", "sum"))
        key = grouped["api_key_id"] if "api_key_id" in grouped else ""
        grouped["unique_id"] = grouped["project_id"] + "|" + key
        parts.append(grouped.rename(columns={time_col: "ds"})[
            ["unique_id", "ds", "requests", "usd"]])
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class _Spike:
    project_id: str
    api_key_id: str
    first: pd.Timestamp
    stop: pd.Timestamp  # end of the last flagged bucket
    width: int
    extra_requests: float
    extra_usd: float
    scored: pd.DataFrame  # the series around the spike: ds, requests, usd and baselines


def spikes(rows: pd.DataFrame, time_col: str, width: int) -> list[_Spike]:
    """Runs of buckets where requests or dollars of a key (or a whole project) burst far
    above their usual level, with the extra requests and dollars over that level."""
    if rows.empty:
        return []
    settings = anomaly.settings_for(width)
    series = anomaly.complete_grid(_series(rows, time_col), f"{width}s", ["requests", "usd"])
    if width < 86_400:  # only days the intraday export covered for the project
        covered = rows[["project_id", "day"]].drop_duplicates().assign(_c=True)
        series["project_id"] = series["unique_id"].str.split("|").str[0]
        series["day"] = series["ds"].dt.date
        series = series.merge(covered, on=["project_id", "day"], how="inner").drop(
            columns=["project_id", "day", "_c"])
    by_requests = anomaly.score(series.assign(y=series["requests"]), settings)
    by_usd = anomaly.score(series.assign(y=series["usd"]), settings)
    series = series.assign(base_requests=by_requests["baseline"], base_usd=by_usd["baseline"],
                           anomalous=by_requests["anomalous"] | by_usd["anomalous"])
    step = pd.Timedelta(seconds=width)
    found = []
    for ep in anomaly.episodes(series).itertuples(index=False):
        mine = series[series["unique_id"] == ep.unique_id]
        hit = mine[(mine["ds"] >= ep.first) & (mine["ds"] <= ep.last)]
        extra_req = float((hit["requests"] - hit["base_requests"].fillna(0)).sum())
        extra_usd = float((hit["usd"] - hit["base_usd"].fillna(0)).sum())
        if extra_usd < RUNAWAY_MIN_EXTRA_USD and extra_req < RUNAWAY_MIN_EXTRA_REQUESTS:
            continue
        context = step * (4 * (settings.season or 15))
        around = mine[(mine["ds"] >= ep.first - context) & (mine["ds"] <= ep.last + context)]
        project_id, key = ep.unique_id.split("|", 1)
        found.append(_Spike(project_id, key, ep.first, ep.last + step, width, extra_req,
                            extra_usd, around.drop(columns=["unique_id", "anomalous"])))
    return found


def _keep_precise(found: list[_Spike]) -> list[_Spike]:
    """One finding per incident: the finest buckets, a key before its whole project."""
    ordered = sorted(found, key=lambda s: (s.width, s.api_key_id == "", -s.extra_usd))
    kept: list[_Spike] = []
    for spike in ordered:
        if not any(k.project_id == spike.project_id and spike.first < k.stop
                   and k.first < spike.stop for k in kept):
            kept.append(spike)
    return kept


def _spike_window(spike: _Spike) -> str:
    if spike.width >= 86_400:
        last = (spike.stop - pd.Timedelta(days=1)).date()
        return _window_text(spike.first.date(), last)
    return f"{spike.first:%Y-%m-%d %H:%M}–{spike.stop:%H:%M} UTC"


def runaways(ctx: _Context, daily: pd.DataFrame, intraday: pd.DataFrame) -> list[Finding]:
    """Bursts of requests or spend per key and project, at the finest grain the exports
    have (day, hour, minute), within the window (earlier days serve as the baseline)."""
    found = spikes(daily.assign(ds=pd.to_datetime(daily["day"])), "ds", 86_400)
    for width, rows in intraday.groupby("width"):
        found += spikes(rows, "bucket_start", int(width))
    window_start = pd.Timestamp(ctx.start)
    findings = []
    for spike in _keep_precise([s for s in found if s.stop > window_start]):
        source = intraday if spike.width < 86_400 else daily.assign(
            bucket_start=pd.to_datetime(daily["day"]))
        rows = source[(source["project_id"] == spike.project_id)
                      & (source["bucket_start"] >= spike.first)
                      & (source["bucket_start"] < spike.stop)]
        if spike.width < 86_400:
            rows = rows[rows["width"] == spike.width]
        if spike.api_key_id:
            rows = rows[rows["api_key_id"] == spike.api_key_id]
        by_model = rows.groupby("model")["estimated_cost_usd"].sum().sort_values(ascending=False)
        model = by_model.index[0] if len(by_model) else ""
        model_text = model + (f" and {len(by_model) - 1} more" if len(by_model) > 1 else "")
        project = ctx.name(spike.project_id)
        who = f"{project} / {spike.api_key_id}" if spike.api_key_id else project
        window = _spike_window(spike)
        monthly = ctx.monthly(max(spike.extra_usd, 0.0))
        chart = spike.scored
        findings.append(Finding(
            kind="runaway",
            title=(f"Runaway spend on {who} ({model_text}), {window}: "
                   f"+${spike.extra_usd:,.2f} and +{spike.extra_requests:,.0f} requests"),
            action=("Find what sent the burst (a retry loop, a stuck job, a leaked key): cap "
                    "retries with exponential backoff, add a budget alert for this key, and "
                    "rotate the key if it was not yours."),
            monthly_usd=monthly, window_usd=spike.extra_usd, project_id=spike.project_id,
            project=project, api_key=spike.api_key_id, model=model_text, window=window,
            caveat=("Extra dollars are list-price estimates over the usual level of the same "
                    "weekday (days), hour (hours) or preceding hour (minutes)."),
            evidence=(rows.groupby(["bucket_start", "api_key_id", "model"], as_index=False)
                      [["requests", "input_tokens", "output_tokens", "estimated_cost_usd"]]
                      .sum().rename(columns={"estimated_cost_usd": "usd"})),
            chart=pd.concat([
                pd.DataFrame({"x": chart["ds"], "series": "Spend", "y": chart["usd"]}),
                pd.DataFrame({"x": chart["ds"], "series": "Usual level",
                              "y": chart["base_usd"]})], ignore_index=True),
            chart_title=f"Spend of {who} around the burst (USD, list price)"))
    return findings


# --- errors and quota -------------------------------------------------------------------


def empty_outputs(ctx: _Context, empty: pd.DataFrame) -> list[Finding]:
    """Requests that returned no output token while their prompts were billed."""
    if empty.empty:
        return []
    priced = estimate_cost(empty, ctx.book)
    found = []
    for (project_id, model), group in priced.groupby(["project_id", "model"]):
        wasted = float(group["estimated_cost_usd"].sum())
        requests = int(group["requests"].sum())
        if requests < EMPTY_MIN_REQUESTS or not ctx.worth_it(wasted):
            continue
        monthly = ctx.monthly(wasted)
        project = ctx.name(project_id)
        found.append(Finding(
            kind="empty_output",
            title=f"{requests:,} {model} requests in {project} returned no output",
            action=("Check the client: cancelled streams, timeouts shorter than the model's "
                    "answer time, or max_tokens set too low. The prompt is billed either way."),
            monthly_usd=monthly, window_usd=wasted, project_id=project_id, project=project,
            api_key=_joined(group["api_key_id"]), model=model,
            window=_window_text(min(group["day"]), max(group["day"])),
            caveat="Counts only buckets in which no request produced output.",
            evidence=group[["day", "api_key_id", "model", "requests", "input_tokens",
                            "estimated_cost_usd"]].rename(
                columns={"estimated_cost_usd": "usd"}).reset_index(drop=True),
            chart=pd.DataFrame({"x": group["day"], "series": "Prompts with no output",
                                "y": group["estimated_cost_usd"]}),
            chart_title=f"Daily cost of {model} requests with no output in {project} (USD)"))
    return found


def rate_limit_pressure(ctx: _Context, intraday: pd.DataFrame) -> list[Finding]:
    """Which project fills the organisation's busiest minutes. Rate limits are shared by
    every project of an organisation, so a load test in Development throttles Production."""
    if intraday.empty:
        return []
    width = int(intraday["width"].min())
    rows = intraday[intraday["width"] == width]
    per = rows.groupby(["bucket_start", "project_id"], as_index=False)[
        ["requests", "input_tokens", "output_tokens"]].sum()
    totals = per.groupby("bucket_start")["requests"].sum()
    busiest = totals.nlargest(BUSIEST_BUCKETS).index
    top = per[per["bucket_start"].isin(busiest)]
    shares = top.groupby("project_id")["requests"].sum() / top["requests"].sum()
    leader = str(shares.idxmax())
    unit = "minutes" if width < 3_600 else "hours"
    if (shares[leader] < RATE_LIMIT_SHARE or len(shares) < 2
            or ctx.environments.get(leader) == "Production"):
        return []
    project = ctx.name(leader)
    others = ", ".join(ctx.name(p) for p in shares.index if p != leader)
    evidence = top.assign(project=top["project_id"].map(ctx.name),
                          share=top["requests"] / top["bucket_start"].map(totals))
    day = totals.idxmax().date()
    chart_rows = per[per["bucket_start"].dt.date == day]
    return [Finding(
        kind="rate_limit",
        title=(f"{project} sends {shares[leader]:.0%} of the requests in the organisation's "
               f"{len(busiest)} busiest {unit}"),
        action=(f"All projects share the organisation's rate limits, so {project}'s bursts "
                f"throttle {others}. Set a project rate limit on {project}, spread its load, "
                "or run load tests in a separate organisation."),
        monthly_usd=0.0, window_usd=0.0, project_id=leader, project=project, api_key="",
        model=_joined(rows[rows["project_id"] == leader]["model"]),
        window=_window_text(min(busiest).date(), max(busiest).date()),
        caveat="Shares of requests among the projects you can see, in the busiest buckets.",
        evidence=evidence[["bucket_start", "project", "requests", "input_tokens",
                           "output_tokens", "share"]].sort_values(
            ["bucket_start", "requests"], ascending=[True, False], ignore_index=True),
        chart=pd.DataFrame({"x": chart_rows["bucket_start"],
                            "series": chart_rows["project_id"].map(ctx.name),
                            "y": chart_rows["requests"]}),
        chart_title=f"Requests per {unit[:-1]} by project on {day:%Y-%m-%d}",
        chart_money=False)]


# --- keys -------------------------------------------------------------------------------


def stale_keys(ctx: _Context, inventory: pd.DataFrame) -> list[Finding]:
    """Keys with no request for 30 days or more: delete them (after the checklist)."""
    found = []
    for row in inventory[inventory["stale"]].itertuples(index=False):
        service = f" Services noted: {row.service}." if row.service else ""
        found.append(Finding(
            kind="stale_key",
            title=f"Key {row.name or row.api_key_id} ({row.project}) unused for "
                  f"{row.days_idle} days",
            action=("Delete it in the provider's console: an unused key is only a leak "
                    f"waiting to happen. Check its rotation checklist first.{service}"),
            monthly_usd=0.0, window_usd=0.0, project_id=row.project_id, project=row.project,
            api_key=row.api_key_id, model="", window=f"last seen {row.last_seen:%Y-%m-%d}",
            evidence=inventory[(inventory["api_key_id"] == row.api_key_id)
                               & (inventory["provider"] == row.provider)].reset_index(
                drop=True)))
    return found


# --- the report -------------------------------------------------------------------------


def analysis_window(engine: Engine, principal: Principal, start: date | None = None,
                    end: date | None = None) -> tuple[date, date] | None:
    """The days to analyse: as asked, clipped to the data; by default the last 90 days of
    data. None when the principal sees no data at all."""
    first, last = data_range(engine, principal)
    if first is None or last is None:
        return None
    end = min(end or last, last)
    start = max(start or end - timedelta(days=DEFAULT_WINDOW_DAYS - 1), first)
    if start > end:
        raise ValueError(f"There is no data between {start} and {end}; the data runs from "
                         f"{first} to {last}.")
    return start, end


def find_insights(engine: Engine, principal: Principal, start: date | None = None,
                  end: date | None = None, book: PriceBook | None = None,
                  min_monthly_usd: float = MIN_MONTHLY_USD) -> InsightReport | None:
    """Every finding for the principal's projects, largest dollars per month first.

    None when there is no data. Spikes are judged against up to five weeks before ``start``.
    """
    window = analysis_window(engine, principal, start, end)
    if window is None:
        return None
    start, end = window
    book = book or current_book(engine)
    ctx = _Context(start, end, book, project_labels(engine, principal, "name"),
                   project_labels(engine, principal, "environment"), min_monthly_usd)
    history_start = start - timedelta(days=anomaly.DAILY.season * (anomaly.DAILY.lookback + 1))
    daily = _estimated(_whole_counts(usage_for_pricing(engine, principal, history_start, end,
                                                       extra=["api_key_id"])), book)
    intraday = _estimated(intraday_usage(engine, principal, history_start, end), book)
    usage = daily[pd.to_datetime(daily["day"]) >= pd.Timestamp(start)].reset_index(drop=True)
    in_window = intraday[pd.to_datetime(intraday["day"]) >= pd.Timestamp(start)]
    findings = [
        *legacy_models(ctx, usage), *oversized_models(ctx, usage),
        *prompt_caching(ctx, usage), *batch_api(ctx, usage, in_window),
        *runaways(ctx, daily, intraday),
        *empty_outputs(ctx, empty_output_usage(engine, principal, start, end)),
        *rate_limit_pressure(ctx, in_window),
        *stale_keys(ctx, key_inventory(engine, principal, as_of=end, book=book)),
    ]
    findings.sort(key=lambda f: (-f.monthly_usd, f.kind, f.title))
    notes = []
    if in_window.empty:
        notes.append("No hourly or minute buckets in this window: spikes are judged by day, "
                     "and rate-limit pressure needs a minute-bucket usage export.")
    unpriced = sorted(set(usage.loc[~usage["priced"], "model"]))
    if unpriced:
        notes.append("Not priced, so left out of savings: " + ", ".join(unpriced) + ".")
    return InsightReport(start, end, findings, notes)


def findings_frame(report: InsightReport) -> pd.DataFrame:
    """One row per finding, ranked, for tables and CSV downloads."""
    rows = [{"kind": f.kind, "category": f.category, "title": f.title, "action": f.action,
             "monthly_usd": round(f.monthly_usd, 2), "window_usd": round(f.window_usd, 2),
             "project_id": f.project_id, "project": f.project, "api_key": f.api_key,
             "model": f.model, "window": f.window, "caveat": f.caveat}
            for f in report.findings]
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def report_dict(report: InsightReport) -> dict[str, Any]:
    """The report as JSON-ready data, with each finding's evidence rows."""
    table = findings_frame(report)
    items = records(table)
    for item, finding in zip(items, report.findings, strict=True):
        item["evidence"] = records(finding.evidence)
    return {"start": report.start.isoformat(), "end": report.end.isoformat(),
            "days": report.days, "notes": report.notes, "findings": items}

