"""Stores for the forecast, budget and alert tests, with dollars known by construction.

``flat_org`` bills a fixed amount per project per day, so spend to date and the period-end
outcome are worked out by hand (a constant series has nothing to forecast but its level).
``load`` imports a simulated org through the real importers, optionally only up to a day,
which is how "forecast as of an earlier day" is checked against a store that never saw the
later data.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from analytics.access import SYSTEM
from analytics.demo import SimOrg, SimProject, write_exports
from analytics.ingest import import_sources
from analytics.org import label_project

DEV, PROD = "proj_flatDev", "proj_flatProd"
PROJECTS = (
    SimProject(DEV, "Dev app", "Development", ("key_dev",), ("user-dev",), ()),
    SimProject(PROD, "Prod app", "Production", ("key_prod",), ("user-prod",), ()),
)
LINE = "gpt-4o-2024-08-06, input"


def flat_org(start: date, end: date, per_day: dict[str, Decimal]) -> SimOrg:
    """Billed cost only: `per_day[project]` dollars on every day from start to end."""
    org = SimOrg(start, end, projects=PROJECTS)
    day = start
    while day <= end:
        for project, amount in per_day.items():
            org.cost[(day, project, LINE, "input")] = (amount, 1000)
        day += timedelta(days=1)
    return org


def load(engine: Engine, org: SimOrg, upto: date | None = None) -> None:
    """Import `org`'s exports (only the days up to `upto`, when given) and label each
    project's environment as an Owner would."""
    if upto is not None:
        org = replace(org, end=upto,
                      usage=[u for u in org.usage if u["day"] <= upto],
                      cost={k: v for k, v in org.cost.items() if k[0] <= upto})
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_exports(org, Path(tmp))
        results = import_sources(engine, [(p.name, p) for p in paths], user="test")
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    billed = {project for (_, project, _, _) in org.cost}
    for p in org.projects:
        if p.project_id in billed:
            label_project(engine, SYSTEM, "openai", p.project_id, p.name, p.environment)
