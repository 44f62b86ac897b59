"""Small hand-written exports for the pricing tests, and the openai-small sample import.

Token counts are chosen so that every dollar figure can be worked out by hand from the
list prices (per 1M tokens): gpt-4o 2.50 in / 1.25 cached / 10 out; gpt-5-mini 0.25 / 0.025
/ 2; batch at half price.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from analytics.demo import SimOrg, SimProject, write_cost_csv, write_usage_csv
from analytics.ingest import import_sources
from tests.conftest import shared_samples

PROD, RESEARCH, BATCH = "proj_prod", "proj_research", "proj_batch"
PROJECTS = tuple(SimProject(pid, name, name, ("key_" + name.lower(),), ("user-x",), ())
                 for pid, name in ((PROD, "Production"), (RESEARCH, "Research"),
                                   (BATCH, "Batch")))
GPT4O = "gpt-4o-2024-08-06"
MINI = "gpt-5-mini-2025-08-07"
D1, D2 = date(2026, 9, 1), date(2026, 9, 2)


def usage(day: date, project: str, model: str, inp: int, cached: int, out: int,
          batch: bool = False) -> dict:
    """One usage bucket as the demo writer takes it (input includes cached)."""
    return {"day": day, "project_id": project, "user_id": "user-x",
            "api_key_id": "key_" + project, "model": model, "batch": batch, "requests": 10,
            "input": inp, "cached": cached, "output": out}


def import_exports(engine: Engine, folder: Path, usage_rows: list[dict],
                   cost_rows: list[tuple[date, str, str, str]]) -> None:
    """Write and import a usage export and/or a cost export; cost rows are (day, project,
    line item, dollars)."""
    days = [u["day"] for u in usage_rows] + [c[0] for c in cost_rows]
    org = SimOrg(min(days), max(days), usage=usage_rows, projects=PROJECTS)
    for day, project, line_item, dollars in cost_rows:
        org.cost[(day, project, line_item, line_item.split(", ")[-1])] = (Decimal(dollars), 0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if usage_rows:
        paths.append(write_usage_csv(org, folder / "completions_usage.csv", org.start, org.end))
    if cost_rows:
        paths.append(write_cost_csv(org, folder / "cost.csv", org.start, org.end))
    results = import_sources(engine, [(p.name, p) for p in paths], user="test")
    assert all(r.ok for r in results), [r.error for r in results]


def import_sample(engine: Engine, *patterns: str) -> Path:
    """Import the openai-small files matching ``patterns`` (skips when the sample is absent)."""
    folder = shared_samples("openai-small")
    paths = sorted(p for pattern in patterns for p in folder.glob(pattern))
    results = import_sources(engine, [(p.name, p) for p in paths], user="test")
    assert paths and all(r.ok for r in results), [r.error for r in results]
    return folder
