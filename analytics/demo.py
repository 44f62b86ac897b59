"""A simulated organisation, written as real OpenAI exports and loaded through the importers.

Three uses: ``python -m analytics demo`` (a full dashboard in one command), the tests' fixture
generator (small orgs whose exact dollars are known, so tests stand alone without
``../shared``), and the benchmark's large exports. The simulation has weekly seasonality,
growth, noise, a batch-run Analytics project and one runaway spike; billed cost is tokens x
list price from the price book, as exact decimals.
"""

from __future__ import annotations

import csv
import math
import random
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from analytics.ingest import ImportResult, import_sources
from analytics.models import model_family
from analytics.pricing import Price, PriceBook, load_price_book

ORG_ID = "org-demoBurnrateAcme0001"
ORG_NAME = "Acme Demo"
MILLION = Decimal(1_000_000)

USAGE_HEADER = [
    "start_time", "end_time", "start_time_iso", "end_time_iso", "project_id",
    "num_model_requests", "user_id", "api_key_id", "model", "batch", "service_tier",
    "input_tokens", "output_tokens", "input_cached_tokens", "input_uncached_tokens",
    "input_text_tokens", "output_text_tokens", "input_cached_text_tokens", "input_audio_tokens",
    "input_cached_audio_tokens", "output_audio_tokens", "input_image_tokens",
    "input_cached_image_tokens", "output_image_tokens",
]
COST_HEADER_V2 = [
    "start_time", "end_time", "start_time_iso", "end_time_iso", "amount_value", "amount_currency",
    "line_item", "project_id", "project_name", "organization_id", "organization_name",
    "api_key_id", "api_key_name", "user_id", "user_email", "quantity", "quantity_unit",
]


@dataclass(frozen=True)
class Workload:
    """One model used by one project: requests a day at the start and tokens per request."""

    model: str
    requests_per_day: float
    input_per_request: int
    output_per_request: int
    cached_share: float
    batch: bool = False


@dataclass(frozen=True)
class SimProject:
    project_id: str
    name: str
    environment: str
    keys: tuple[str, ...]
    users: tuple[str, ...]
    workloads: tuple[Workload, ...]
    weekend_factor: float = 0.45
    retired_keys: tuple[str, ...] = ()  # keys that stopped 45 days before the end


DEMO_PROJECTS = (
    SimProject("proj_demoDevelopment00001", "Development", "Development",
               ("key_demoDevA0001", "key_demoDevB0002"), ("user-demo-ana", "user-demo-ben"),
               (Workload("gpt-5-2025-08-07", 260, 1800, 450, 0.25),
                Workload("gpt-4o-mini-2024-07-18", 900, 900, 200, 0.3)), 0.25),
    SimProject("proj_demoStaging000000002", "Staging", "Staging",
               ("key_demoStgA0003", "key_demoStgOld0009"), ("user-demo-cho",),
               (Workload("gpt-5-mini-2025-08-07", 700, 1600, 380, 0.35),
                Workload("gpt-4.1-mini-2025-04-14", 400, 1500, 0, 0.5)), 0.35,
               retired_keys=("key_demoStgOld0009",)),
    SimProject("proj_demoProduction000003", "Production", "Production",
               ("key_demoPrdA0004", "key_demoPrdB0005", "key_demoPrdC0006"),
               ("user-demo-svc",),
               (Workload("gpt-5-mini-2025-08-07", 5200, 1900, 420, 0.4),
                Workload("gpt-4o-2024-08-06", 900, 2200, 500, 0.3),
                Workload("gpt-4-0613", 35, 1500, 300, 0.0),
                Workload("gpt-4.1-2025-04-14", 1500, 350, 8, 0.0)), 0.8),
    SimProject("proj_demoAnalytics0000004", "Analytics", "Analytics",
               ("key_demoAnaA0007",), ("user-demo-etl",),
               (Workload("gpt-4.1-mini-2025-04-14", 4000, 1800, 450, 0.05, batch=True),
                Workload("gpt-4o-mini-2024-07-18", 2500, 1400, 120, 0.1)), 1.0),
    SimProject("proj_demoMarketing000005", "Marketing", "Production",
               ("key_demoMktA0008",), ("user-demo-dee",),
               (Workload("gpt-4o-2024-08-06", 120, 2500, 700, 0.1),), 0.3),
)


@dataclass
class SimOrg:
    """Simulated usage buckets and the exact billed dollars they cost."""

    start: date
    end: date
    usage: list[dict] = field(default_factory=list)
    cost: dict[tuple[date, str, str, str], tuple[Decimal, int]] = field(default_factory=dict)
    projects: tuple[SimProject, ...] = DEMO_PROJECTS
    spike_day: date | None = None  # the day of the planted runaway retry loop

    def truth_by_project(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = defaultdict(Decimal)
        for (_, project, _, _), (amount, _) in self.cost.items():
            out[project] += amount
        return dict(out)

    def truth_by_day(self) -> dict[date, Decimal]:
        out: dict[date, Decimal] = defaultdict(Decimal)
        for (day, _, _, _), (amount, _) in self.cost.items():
            out[day] += amount
        return dict(out)


def _line_items(price: Price, w: Workload, uncached: int, cached: int,
                output: int) -> Iterator[tuple[str, Decimal, int]]:
    """Billed (token type, dollars, tokens) for one usage bucket at list price."""
    factor = price.batch_discount if w.batch else Decimal(1)
    yield "input", Decimal(uncached) * price.input_per_1m * factor / MILLION, uncached
    if price.cached_input_per_1m is None:
        yield "input", Decimal(cached) * price.input_per_1m * factor / MILLION, cached
    else:
        yield "cached input", Decimal(cached) * price.cached_input_per_1m * factor / MILLION, cached
    yield "output", Decimal(output) * price.output_per_1m * factor / MILLION, output


def simulate(seed: int = 7, days: int = 365, end: date | None = None, scale: float = 1.0,
             projects: tuple[SimProject, ...] = DEMO_PROJECTS,
             book: PriceBook | None = None) -> SimOrg:
    """Daily usage per project, key and model with seasonality, growth and one runaway day.

    ``scale`` multiplies request volumes (tests use a small one for small dollars).
    """
    rng = random.Random(seed)
    book = book or load_price_book()
    end = end or (datetime.now(UTC).date() - timedelta(days=1))
    start = end - timedelta(days=days - 1)
    org = SimOrg(start, end, projects=projects)
    spike_day = end - timedelta(days=min(20, days // 3))
    org.spike_day = spike_day
    prices: dict[tuple[str, date], Price] = {}

    def price_of(model: str, day: date) -> Price:
        if (model, day) not in prices:
            found = book.price_for("openai", model_family(model), day)
            if found is None:
                raise ValueError(f"The demo uses {model}, which the price book does not price.")
            prices[(model, day)] = found
        return prices[(model, day)]

    for offset in range(days):
        day = start + timedelta(days=offset)
        growth = 1.0 + 0.9 * offset / max(days, 1)
        for proj in projects:
            weekday = 1.0 if day.weekday() < 5 else proj.weekend_factor
            for w in proj.workloads:
                for key_index, key in enumerate(proj.keys):
                    if key in proj.retired_keys and day > end - timedelta(days=45):
                        continue
                    noise = math.exp(rng.gauss(0, 0.18))
                    requests = w.requests_per_day * scale * growth * weekday * noise / len(
                        proj.keys)
                    burst = 0
                    if day == spike_day and proj.name == "Development" and key_index == 0:
                        burst = int(requests * 13)  # a retry loop left running overnight
                    requests = int(requests) + burst
                    if requests <= 0:
                        continue
                    inp = int(requests * w.input_per_request * math.exp(rng.gauss(0, 0.05)))
                    out = int(requests * w.output_per_request * math.exp(rng.gauss(0, 0.05)))
                    cached = int(inp * w.cached_share)
                    user = proj.users[key_index % len(proj.users)]
                    org.usage.append({
                        "day": day, "project_id": proj.project_id, "user_id": user,
                        "api_key_id": key, "model": w.model, "batch": w.batch,
                        "requests": requests, "input": inp, "cached": cached, "output": out,
                        "burst": burst})
                    for token_type, amount, qty in _line_items(price_of(w.model, day), w,
                                                               inp - cached, cached, out):
                        k = (day, proj.project_id, f"{w.model}, {token_type}", token_type)
                        prev_amount, prev_qty = org.cost.get(k, (Decimal(0), 0))
                        org.cost[k] = (prev_amount + amount, prev_qty + qty)
    return org


def _epoch(day: date) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp())


def _iso(day: date) -> str:
    return datetime.combine(day, time(), UTC).isoformat()


def write_usage_csv(org: SimOrg, path: Path, start: date, end: date) -> Path:
    """The usage dashboard export for [start, end], in OpenAI's format (float counts)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(USAGE_HEADER)
        for u in org.usage:
            if not start <= u["day"] <= end:
                continue
            nxt = u["day"] + timedelta(days=1)
            unc = u["input"] - u["cached"]
            out.writerow([
                _epoch(u["day"]), _epoch(nxt), _iso(u["day"]), _iso(nxt), u["project_id"],
                f"{u['requests']}.0", u["user_id"], u["api_key_id"], u["model"],
                "True" if u["batch"] else "False", "default", f"{u['input']}.0",
                f"{u['output']}.0", f"{u['cached']}.0", f"{unc}.0", f"{unc}.0",
                f"{u['output']}.0", f"{u['cached']}.0", "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"])
    return path


def write_minute_usage_csv(org: SimOrg, path: Path, day: date,
                           project_ids: tuple[str, ...]) -> Path:
    """One day of some projects in 1-minute buckets (the Admin API's bucket_width=1m): each
    daily row spread evenly over the day, a runaway's burst packed into ten minutes at 02:00."""
    midnight = datetime.combine(day, time(), UTC)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(USAGE_HEADER)
        for u in org.usage:
            if u["day"] != day or u["project_id"] not in project_ids:
                continue
            steady, burst = u["requests"] - u["burst"], u["burst"]
            for minute in range(1440):
                m_req = steady // 1440 + (steady % 1440 if minute == 0 else 0)
                if 120 <= minute < 130:
                    m_req += burst // 10 + (burst % 10 if minute == 120 else 0)
                if m_req:
                    r = m_req / u["requests"]
                    inp, cached, outp = (int(u[k] * r) for k in ("input", "cached", "output"))
                    t0 = midnight + timedelta(minutes=minute)
                    t1 = t0 + timedelta(minutes=1)
                    out.writerow([
                        int(t0.timestamp()), int(t1.timestamp()), t0.isoformat(), t1.isoformat(),
                        u["project_id"], f"{m_req}.0", u["user_id"], u["api_key_id"],
                        u["model"], "True" if u["batch"] else "False", "default", f"{inp}.0",
                        f"{outp}.0", f"{cached}.0", f"{inp - cached}.0", f"{inp - cached}.0",
                        f"{outp}.0", f"{cached}.0", "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"])
    return path


def write_cost_csv(org: SimOrg, path: Path, start: date, end: date) -> Path:
    """The newer (17-column) cost export for [start, end], grouped by project and line item."""
    names = {p.project_id: p.name for p in org.projects}
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(COST_HEADER_V2)
        for (day, project, line_item, _), (amount, qty) in sorted(org.cost.items()):
            if not start <= day <= end:
                continue
            nxt = day + timedelta(days=1)
            out.writerow([
                _epoch(day), _epoch(nxt), _iso(day), _iso(nxt), f"{amount:.16f}", "usd",
                line_item, project, names[project], ORG_ID, ORG_NAME, "", "", "", "", qty,
                "tokens"])
    return path


def write_exports(org: SimOrg, folder: Path, window_days: int = 31,
                  overlap_days: int = 5) -> list[Path]:
    """Overlapping monthly-style downloads of usage and cost, as people collect them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    first = org.start
    while first <= org.end:
        last = min(first + timedelta(days=window_days - 1), org.end)
        tag = f"{first.isoformat()}_{last.isoformat()}"
        paths.append(write_usage_csv(org, folder / f"completions_usage_{tag}.csv", first, last))
        paths.append(write_cost_csv(org, folder / f"cost_{tag}.csv", first, last))
        if last == org.end:
            break
        first = last + timedelta(days=1 - overlap_days)
    return paths


def load_demo(engine: Engine, seed: int = 7, days: int = 365,
              end: date | None = None) -> list[ImportResult]:
    """Simulate the demo org, write its exports and import them through the real importers."""
    org = simulate(seed=seed, days=days, end=end)
    with tempfile.TemporaryDirectory(prefix="burnrate-demo-") as tmp:
        paths = write_exports(org, Path(tmp))
        paths.append(write_minute_usage_csv(
            org, Path(tmp) / "completions_usage_minutes.csv", org.spike_day,
            ("proj_demoDevelopment00001", "proj_demoProduction000003")))
        results = import_sources(engine, [(p.name, p) for p in paths], user="demo")
    _label_environments(engine, org)
    return results


def _label_environments(engine: Engine, org: SimOrg) -> None:
    """The demo's projects come with environment labels, as an Owner would set them."""
    from analytics.store import Project, write_transaction

    table = Project.__table__
    with write_transaction(engine) as conn:
        for p in org.projects:
            conn.execute(table.update().where(
                table.c.provider == "openai", table.c.project_id == p.project_id,
                table.c.environment.is_(None)).values(environment=p.environment))
