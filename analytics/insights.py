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

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Engine, Integer, and_, func, select

from analytics import anomaly
from analytics.access import Principal
from analytics.exports import records
from analytics.keys import key_inventory, project_labels
from analytics.memo import per_data_version, replayed
from analytics.models import capability_class, cheaper_alternative
from analytics.price_store import current_book
from analytics.pricing import MigrationScenario, PriceBook, estimate_cost, reprice
from analytics.queries import (
    PRICING_KEYS,
    TOKEN_COLUMNS,
    data_range,
    rows_frame,
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


def _usage_sums(engine: Engine, principal: Principal, start: date, end: date,
               keys: Sequence[Any], where: Sequence[ColumnElement[bool]] = ()) -> pd.DataFrame:
    """Tokens and requests the principal may see from ``start`` to ``end``, summed in SQL by
    ``keys`` (labelled usage columns, ``day`` and ``batch`` among them) over the rows that
    ``where`` keeps. The one read behind the daily, intraday and empty-output frames, so
    scoping and types are settled once: ``batch`` bool, counts int64, ``bucket_start`` (when
    grouped by) datetime64."""
    usage = Usage.__table__
    conds = [usage.c.day >= start, usage.c.day <= end, *where]
    scope = visible_projects(engine, principal, None)
    if scope is not None:
        conds.append(usage.c.project_id.in_(scope))
    query = (select(*keys, *(func.sum(usage.c[c]).label(c) for c in TOKEN_COLUMNS))
             .where(and_(*conds)).group_by(*keys))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = rows_frame(rows, [*(k.name for k in keys), *TOKEN_COLUMNS])
    if "bucket_start" in frame:
        frame["bucket_start"] = pd.to_datetime(frame["bucket_start"])
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


def _of_pairs(frame: pd.DataFrame, pairs: pd.Index) -> pd.DataFrame:
    """The rows of ``frame`` whose (project_id, model) is one of ``pairs``, in their order."""
    keys = pd.MultiIndex.from_arrays([frame["project_id"], frame["model"]])
    return frame[keys.isin(pairs)]


def _cost_after(ctx: _Context, rows: pd.DataFrame, changed: pd.DataFrame,
                column: str) -> pd.DataFrame:
    """``rows`` plus ``column``: the list price of ``changed``, the same rows after a change
    (cached prompts, the Batch API), priced in one call for every candidate at once."""
    after = estimate_cost(changed[_RAW], ctx.book)
    return rows.assign(**{column: after["estimated_cost_usd"].to_numpy()})


@dataclass(frozen=True)
class _Saving:
    """What one (project, model) saves in the window, with its evidence and daily chart."""

    project_id: str
    model: str
    window_usd: float
    api_keys: str
    evidence: pd.DataFrame
    chart: pd.DataFrame


def _savings(ctx: _Context, frame: pd.DataFrame, now: str, then: str, then_label: str,
             chart_label: str) -> list[_Saving]:
    """The (project, model) pairs of ``frame`` whose dollars ``now`` minus ``then`` are worth
    a finding. Sums, evidence (per day, key and model) and charts (now against ``then`` per
    day) come from three group-bys over every pair at once: a loop per pair rescans the
    frame, and at a million rows there are hundreds of pairs."""
    pair = ["project_id", "model"]
    totals = frame.groupby(pair)[[now, then]].sum()
    saving = totals[now] - totals[then]
    saving = saving[saving.map(ctx.worth_it)]  # one test per pair
    if saving.empty:
        return []
    rows = _of_pairs(frame, saving.index)
    evidence = (rows.groupby([*pair, "day", "api_key_id"], as_index=False)
                .agg(requests=("requests", "sum"), input_tokens=("input_tokens", "sum"),
                     cached_input_tokens=("cached_input_tokens", "sum"),
                     output_tokens=("output_tokens", "sum"), now_usd=(now, "sum"),
                     after_usd=(then, "sum"))
                .rename(columns={"after_usd": then_label}))
    daily = rows.groupby([*pair, "day"], as_index=False)[[now, then]].sum()
    charts = dict(iter(daily.groupby(pair)))
    found = []
    for (project_id, model), part in evidence.groupby(pair):
        day = charts[(project_id, model)]
        found.append(_Saving(
            project_id, model, float(saving[(project_id, model)]), _joined(part["api_key_id"]),
            part[["day", "api_key_id", "model", "requests", "input_tokens",
                  "cached_input_tokens", "output_tokens", "now_usd", then_label]]
            .reset_index(drop=True),
            _two_lines(day["day"], "Now", day[now], chart_label, day[then])))
    return found


def _two_lines(x: Any, first: str, first_y: Any, second: str, second_y: Any) -> pd.DataFrame:
    """Chart rows (x, series, y) of two series over the same x (arrays or Series), built
    from plain arrays: thousands of findings may each need one, and frames built from
    Series pay for index alignment every time."""
    x = np.asarray(x)
    return pd.DataFrame({"x": np.concatenate([x, x]),
                         "series": np.repeat(np.array([first, second], dtype=object), len(x)),
                         "y": np.concatenate([np.asarray(first_y), np.asarray(second_y)])})


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
        for s in _savings(ctx, priced, "baseline_usd", "scenario_usd", f"{target}_usd",
                          f"On {target}"):
            title, action = describe(s.project_id, s.model, family, target)
            found.append(Finding(
                kind=kind, title=title, action=action, monthly_usd=ctx.monthly(s.window_usd),
                window_usd=s.window_usd, project_id=s.project_id,
                project=ctx.name(s.project_id), api_key=s.api_keys, model=s.model,
                window=_window_text(ctx.start, ctx.end), caveat=_MODEL_CAVEAT,
                evidence=s.evidence, chart=s.chart,
                chart_title=f"Daily cost of {s.model} in {ctx.name(s.project_id)}: now and on "
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
    families = usage["family"].unique()
    current_flagship = {f: capability_class(f) == "flagship" and cheaper_alternative(f) is None
                        for f in families}  # per family, not per row
    rows = usage[~usage["fine_tuned"] & usage["family"].map(current_flagship).astype(bool)]
    shape = rows.groupby(["project_id", "model"], as_index=False)[
        ["requests", "input_tokens", "output_tokens"]].sum()
    shape = shape[(shape["requests"] >= MIN_PATTERN_REQUESTS)
                  & (shape["input_tokens"] <= SHORT_PROMPT_TOKENS * shape["requests"])
                  & (shape["output_tokens"] <= SHORT_OUTPUT_TOKENS * shape["requests"])]
    averages = shape.set_index(["project_id", "model"])
    rows = _of_pairs(rows, averages.index)
    targets = {}
    for family, provider in rows[["family", "provider"]].drop_duplicates().itertuples(
            index=False):
        target = _smaller_sibling(family, provider, ctx.book, ctx.end)
        if target:
            targets[family] = target

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
    shape = rows.groupby(["project_id", "model"]).agg(
        requests=("requests", "sum"), input_tokens=("input_tokens", "sum"),
        cached=("cached_input_tokens", "sum"), active_days=("day", "nunique"))
    shape = shape[(shape["input_tokens"] >= CACHE_MIN_PROMPT_TOKENS * shape["requests"])
                  & (shape["cached"] < CACHE_LOW_SHARE * shape["input_tokens"])
                  & (shape["requests"] >= CACHE_MIN_REQUESTS_PER_DAY * shape["active_days"])]
    rows = _of_pairs(rows, shape.index)
    if rows.empty:
        return []
    cached = np.maximum(rows["cached_input_tokens"],
                        np.floor(rows["input_tokens"] * CACHE_TARGET_SHARE))
    rows = _cost_after(ctx, rows, rows.assign(cached_input_tokens=cached), "with_cache_usd")
    found: list[Finding] = []
    for s in _savings(ctx, rows, "estimated_cost_usd", "with_cache_usd", "with_cache_usd",
                      "With caching"):
        item = shape.loc[(s.project_id, s.model)]
        project = ctx.name(s.project_id)
        share = item["cached"] / item["input_tokens"]
        found.append(Finding(
            kind="prompt_caching",
            title=f"{s.model} prompts in {project} are long but {share:.0%} cached",
            action=(f"Prompts average {item['input_tokens'] / item['requests']:,.0f} tokens "
                    f"and repeat ~{item['requests'] / item['active_days']:,.0f} times a day. "
                    "Put the stable part (system prompt, tools, examples) first and the "
                    "variable part last, and keep that prefix byte-identical between requests."),
            monthly_usd=ctx.monthly(s.window_usd), window_usd=s.window_usd,
            project_id=s.project_id, project=project, api_key=s.api_keys, model=s.model,
            window=_window_text(ctx.start, ctx.end),
            caveat=(f"Assumes {CACHE_TARGET_SHARE:.0%} of each prompt is a stable prefix the "
                    "cache can serve; caching starts at 1,024-token prompts."),
            evidence=s.evidence, chart=s.chart,
            chart_title=f"Daily cost of {s.model} in {project}: now and with prompt "
                        "caching (USD, list price)"))
    return found


def nightly_workloads(intraday: pd.DataFrame) -> pd.DataFrame:
    """(project_id, model, hours) of non-batch work that runs in a few hours of the day on
    several days, from hourly or minute buckets."""
    rows = intraday[~intraday["batch"]]
    if rows.empty:
        return pd.DataFrame(columns=["project_id", "model", "hours"])
    pair = ["project_id", "model"]
    rows = rows.assign(hour=rows["bucket_start"].dt.hour)
    by_hour = rows.groupby([*pair, "hour"], as_index=False)["requests"].sum()
    # The busiest hours of each pair; of hours with equal requests the earlier, as
    # nlargest keeps them.
    by_hour = by_hour.sort_values([*pair, "requests"], ascending=[True, True, False],
                                  kind="stable")
    top = by_hour[by_hour.groupby(pair).cumcount() < NIGHTLY_HOURS]
    shape = pd.DataFrame({"days": rows.groupby(pair)["day"].nunique(),
                          "total": by_hour.groupby(pair)["requests"].sum(),
                          "top": top.groupby(pair)["requests"].sum()})
    shape = shape[(shape["days"] >= NIGHTLY_MIN_DAYS) & (shape["total"] > 0)
                  & (shape["top"] >= NIGHTLY_SHARE * shape["total"])]
    top = _of_pairs(top, shape.index).sort_values([*pair, "hour"])
    hours = top.groupby(pair)["hour"].agg(lambda h: ", ".join(f"{x:02d}:00" for x in h))
    return hours.rename("hours").reset_index()


def batch_api(ctx: _Context, usage: pd.DataFrame, intraday: pd.DataFrame) -> list[Finding]:
    """Steady work nobody waits for, sent at full price: the Batch API halves it."""
    rows = usage[~usage["fine_tuned"] & usage["priced"] & ~usage["batch"]
                 & (usage["service_tier"] == "default")]
    nightly = nightly_workloads(intraday).set_index(["project_id", "model"])["hours"]
    active = rows.groupby(["project_id", "model"])["day"].nunique()
    why = {}
    for (project_id, model), days in active.items():  # one step per pair, not per row
        if (project_id, model) in nightly.index:
            reason = (f"It runs as a nightly job: most requests arrive in "
                      f"{nightly[(project_id, model)]} UTC.")
        elif ctx.environments.get(project_id) == BATCH_ENVIRONMENT:
            reason = (f"The project is labelled {BATCH_ENVIRONMENT}: offline work nobody "
                      "waits for.")
        else:
            continue
        if days >= BATCH_MIN_ACTIVE_SHARE * ctx.days:
            why[(project_id, model)] = reason
    if not why:
        return []
    rows = _of_pairs(rows, pd.MultiIndex.from_tuples(list(why)))
    rows = _cost_after(ctx, rows, rows.assign(batch=True), "batch_usd")
    found: list[Finding] = []
    for s in _savings(ctx, rows, "estimated_cost_usd", "batch_usd", "batch_usd",
                      "On the Batch API"):
        project = ctx.name(s.project_id)
        found.append(Finding(
            kind="batch_api",
            title=f"{s.model} work in {project} could run on the Batch API",
            action=(f"{why[(s.project_id, s.model)]} Submit it through the Batch API (half "
                    "the list price, results within 24 hours)."),
            monthly_usd=ctx.monthly(s.window_usd), window_usd=s.window_usd,
            project_id=s.project_id, project=project, api_key=s.api_keys, model=s.model,
            window=_window_text(ctx.start, ctx.end),
            caveat="Only for work whose results can wait up to 24 hours.",
            evidence=s.evidence, chart=s.chart,
            chart_title=f"Daily cost of {s.model} in {project}: now and on the Batch API "
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
    times: np.ndarray  # the buckets around the spike, for its chart
    spend: np.ndarray  # their dollars
    usual: np.ndarray  # and the usual level of their dollars


def _covered(series: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The buckets of ``series`` (a categorical ``complete_grid``) on days the intraday
    export covered for their project: a grid filled across a day without minute rows would
    read that day as zeros. Projects are matched as integer codes, split from the series
    names once per series rather than once per grid row."""
    per_series = pd.Index(series["unique_id"].cat.categories).str.split("|").str[0]
    codes, projects = pd.factorize(per_series)
    days = pd.MultiIndex.from_arrays([codes[series["unique_id"].cat.codes],
                                      series["ds"].dt.normalize()])
    seen = pd.MultiIndex.from_arrays([projects.get_indexer(rows["project_id"]),
                                      pd.to_datetime(rows["day"])])
    return series[days.isin(seen)].reset_index(drop=True)


def spikes(rows: pd.DataFrame, time_col: str, width: int) -> list[_Spike]:
    """Runs of buckets where requests or dollars of a key (or a whole project) burst far
    above their usual level, with the extra requests and dollars over that level."""
    if rows.empty:
        return []
    settings = anomaly.settings_for(width)
    series = anomaly.complete_grid(_series(rows, time_col), f"{width}s", ["requests", "usd"])
    if width < 86_400:
        series = _covered(series, rows)
    by_requests = anomaly.score(series.assign(y=series["requests"]), settings)
    by_usd = anomaly.score(series.assign(y=series["usd"]), settings)
    series = series.assign(base_requests=by_requests["baseline"], base_usd=by_usd["baseline"],
                           anomalous=by_requests["anomalous"] | by_usd["anomalous"])
    runs = anomaly.episodes(series.assign(
        extra_requests=series["requests"] - series["base_requests"].fillna(0),
        extra_usd=series["usd"] - series["base_usd"].fillna(0)),
        sums=["extra_requests", "extra_usd"])
    runs = runs[(runs["extra_usd"] >= RUNAWAY_MIN_EXTRA_USD)
                | (runs["extra_requests"] >= RUNAWAY_MIN_EXTRA_REQUESTS)]
    if runs.empty:
        return []
    step = pd.Timedelta(seconds=width)
    context = step * (4 * (settings.season or 15))
    times, spend, usual = (series[c].to_numpy() for c in ("ds", "usd", "base_usd"))
    bounds = {uid: (rows[0], rows[-1] + 1)
              for uid, rows in series.groupby("unique_id").indices.items()}
    found = []
    for run in runs.itertuples(index=False):
        # A series' rows are consecutive and in time order: its chart is a slice of them.
        begin, end = bounds[run.unique_id]
        mine = times[begin:end]
        end = begin + np.searchsorted(mine, (run.last + context).to_datetime64(), "right")
        begin += np.searchsorted(mine, (run.first - context).to_datetime64(), "left")
        project_id, key = run.unique_id.split("|", 1)
        found.append(_Spike(project_id, key, run.first, run.last + step, width,
                            float(run.extra_requests), float(run.extra_usd),
                            times[begin:end], spend[begin:end], usual[begin:end]))
    return found


def _keep_precise(found: list[_Spike]) -> list[_Spike]:
    """One finding per incident: the finest buckets, a key before its whole project.

    Kept spikes of a project never overlap, so in order of start they also end in order: a
    new spike need only be checked against the last kept one that starts before it ends
    (a bisection), not against every kept spike; minute exports can hold thousands."""
    ordered = sorted(found, key=lambda s: (s.width, s.api_key_id == "", -s.extra_usd))
    kept: list[_Spike] = []
    by_project: dict[str, list[_Spike]] = {}  # kept spikes of each project, by start
    for spike in ordered:
        mine = by_project.setdefault(spike.project_id, [])
        before = bisect.bisect_left(mine, spike.stop, key=lambda k: k.first)
        if before == 0 or mine[before - 1].stop <= spike.first:
            mine.insert(before, spike)
            kept.append(spike)
    return kept


def _spike_window(spike: _Spike) -> str:
    if spike.width >= 86_400:
        last = (spike.stop - pd.Timedelta(days=1)).date()
        return _window_text(spike.first.date(), last)
    return f"{spike.first:%Y-%m-%d %H:%M}–{spike.stop:%H:%M} UTC"


_EVIDENCE = ["bucket_start", "api_key_id", "model", "requests", "input_tokens",
             "output_tokens", "usd"]


def _burst_rows(daily: pd.DataFrame, intraday: pd.DataFrame,
                kept: list[_Spike]) -> Iterator[pd.DataFrame]:
    """For each bucket width, the usage rows inside the kept spikes of that width (their
    project, key and buckets), each with ``spike``, its position in ``kept``.

    Kept spikes of a project never overlap, so a row can only be in the last spike of its
    project and width that starts at or before it: one as-of join labels every row."""
    table = pd.DataFrame({"spike": np.arange(len(kept)), "width": [s.width for s in kept],
                          "project_id": [s.project_id for s in kept],
                          "spike_key": [s.api_key_id for s in kept],
                          "first": [s.first for s in kept], "stop": [s.stop for s in kept]})
    for width, spikes_ in table.groupby("width"):
        rows = (daily.assign(bucket_start=pd.to_datetime(daily["day"])) if width >= 86_400
                else intraday[intraday["width"] == width])
        rows = rows.assign(_row=np.arange(len(rows))).sort_values("bucket_start", kind="stable")
        unit = rows["bucket_start"].dtype
        spikes_ = spikes_.astype({"first": unit, "stop": unit}).sort_values("first")
        rows = pd.merge_asof(rows, spikes_.drop(columns="width"), left_on="bucket_start",
                             right_on="first", by="project_id", direction="backward")
        inside = (rows["bucket_start"] < rows["stop"]) & (
            (rows["spike_key"] == "") | (rows["spike_key"] == rows["api_key_id"]))
        yield rows[inside].sort_values("_row").astype({"spike": "int64"})


def _burst_details(daily: pd.DataFrame, intraday: pd.DataFrame,
                   kept: list[_Spike]) -> dict[int, tuple[str, int, pd.DataFrame]]:
    """For each kept spike (by position): the model that spent most in it, how many models
    it used, and its evidence rows; summed for all spikes of a width at once."""
    details = {}
    for rows in _burst_rows(daily, intraday, kept):
        spend = (rows.groupby(["spike", "model"], as_index=False)["estimated_cost_usd"].sum()
                 .sort_values(["spike", "estimated_cost_usd"], ascending=[True, False],
                              kind="stable"))
        top = spend.groupby("spike").agg(model=("model", "first"), count=("model", "size"))
        evidence = (rows.groupby(["spike", *_EVIDENCE[:3]], as_index=False)
                    [["requests", "input_tokens", "output_tokens", "estimated_cost_usd"]]
                    .sum().rename(columns={"estimated_cost_usd": "usd"}))
        at = evidence.groupby("spike").indices
        evidence = evidence[_EVIDENCE]
        for i, model, count in zip(top.index, top["model"], top["count"], strict=True):
            details[i] = (model, count, evidence.iloc[at[i]].reset_index(drop=True))
    return details


def runaways(ctx: _Context, daily: pd.DataFrame, intraday: pd.DataFrame) -> list[Finding]:
    """Bursts of requests or spend per key and project, at the finest grain the exports
    have (day, hour, minute), within the window (earlier days serve as the baseline)."""
    found = spikes(daily.assign(ds=pd.to_datetime(daily["day"])), "ds", 86_400)
    for width, rows in intraday.groupby("width"):
        found += spikes(rows, "bucket_start", int(width))
    window_start = pd.Timestamp(ctx.start)
    kept = _keep_precise([s for s in found if s.stop > window_start])
    details = _burst_details(daily, intraday, kept)
    no_rows = ("", 0, pd.DataFrame(columns=_EVIDENCE))
    findings = []
    for i, spike in enumerate(kept):
        model, count, evidence = details.get(i, no_rows)
        model_text = model + (f" and {count - 1} more" if count > 1 else "")
        project = ctx.name(spike.project_id)
        who = f"{project} / {spike.api_key_id}" if spike.api_key_id else project
        window = _spike_window(spike)
        monthly = ctx.monthly(max(spike.extra_usd, 0.0))
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
            evidence=evidence,
            chart=_two_lines(spike.times, "Spend", spike.spend, "Usual level", spike.usual),
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
    usage_table = Usage.__table__
    by_key = [*(usage_table.c[k] for k in PRICING_KEYS), usage_table.c.api_key_id]
    width = _width_seconds(usage_table, engine.dialect.name).label("width")
    daily = _estimated(_usage_sums(engine, principal, history_start, end, by_key), book)
    intraday = _estimated(_usage_sums(engine, principal, history_start, end,
                                     [width, usage_table.c.bucket_start, *by_key],
                                     [width < 86_400]), book)
    empty = _usage_sums(engine, principal, start, end, by_key,
                       [usage_table.c.kind == "completions", usage_table.c.output_tokens == 0,
                        usage_table.c.requests > 0])
    usage = daily[pd.to_datetime(daily["day"]) >= pd.Timestamp(start)].reset_index(drop=True)
    in_window = intraday[pd.to_datetime(intraday["day"]) >= pd.Timestamp(start)]
    findings = [
        *legacy_models(ctx, usage), *oversized_models(ctx, usage),
        *prompt_caching(ctx, usage), *batch_api(ctx, usage, in_window),
        *runaways(ctx, daily, intraday), *empty_outputs(ctx, empty),
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


@replayed
def insights_report(engine: Engine, principal: Principal, start: date | None = None,
                    end: date | None = None) -> tuple[InsightReport, pd.DataFrame] | None:
    """The report and its table of findings (``findings_frame``) for the Insights page; None
    when there is no data.

    Kept per data version and price book (``memo``): a large store takes seconds to analyse
    and the page is drawn again on every click. Leave ``start`` and ``end`` out for the
    default window (the last 90 days of data), so that the report a refresh prepares after
    an import is the new default one rather than the window the old data ended on. The
    report is shared, not copied: nothing changes a report once made.
    """
    return _insights_report(engine, principal, start, end, current_book(engine))


@per_data_version
def _insights_report(engine: Engine, principal: Principal, start: date | None,
                     end: date | None, book: PriceBook
                     ) -> tuple[InsightReport, pd.DataFrame] | None:
    report = find_insights(engine, principal, start, end, book)
    return None if report is None else (report, findings_frame(report))


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

