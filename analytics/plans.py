"""Named allocation plans kept in the store: drafts anyone who writes may save, and the one plan
per budget period an Owner has made active.

Plans live in ``documents`` (``kind='plan'``, body = `Plan.to_dict` as JSON, ``period`` = the
budget period's key, ``status`` = draft | active). The rules, and why:

- Members and Owners save drafts; Readers cannot write. Only an Owner activates a plan,
  because the active plan is what the organisation's limits are set from.
- One active plan per period: activating a plan turns the period's other active plan back into
  a draft in the same transaction, with the period's plan rows locked so two Owners activating
  at once cannot both win.
- Saving over the active plan is an Owner's edit of the live plan (it stays active); a Member
  cannot change it, only save a draft under another name.
- A draft may be unfinished, but a plan is activated only when it allocates without a blocking
  problem.
- Every save, activation and deletion is audited in its own transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, delete, select, update

from analytics import audit
from analytics.access import AccessDenied, Principal
from analytics.allocation import Plan, PlanError, allocate
from analytics.budgets import Period
from analytics.store import NamedDocument, write_transaction

KIND = "plan"
MAX_NAME = 128
Status = Literal["draft", "active"]
DRAFT: Status = "draft"
ACTIVE: Status = "active"

_TABLE = NamedDocument.__table__
_PERIOD = re.compile(r"\d{4}-\d{2}(-\d{2})?")


@dataclass(frozen=True)
class SavedPlan:
    """A plan as stored, with its period key, status and last editor."""

    plan: Plan
    period: str
    status: Status
    updated_by: str
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


def period_key(period: Period) -> str:
    """``2026-11`` for a calendar month; the start date (``2026-10-15``) for a period anchored
    on another day, so a change of billing day never makes two periods share a key.

    >>> from datetime import date
    >>> period_key(Period(date(2026, 11, 1), date(2026, 11, 30)))
    '2026-11'
    """
    start = period.start
    return f"{start:%Y-%m}" if start.day == 1 else start.isoformat()


def save_plan(engine: Engine, principal: Principal, plan: Plan, period: str,
              replace: bool = False, weights: Mapping[str, Decimal] | None = None) -> SavedPlan:
    """Store ``plan`` under its name for ``period`` as a draft (or, an Owner saving over the
    period's active plan, as the active plan, which must then allocate with ``weights``); an
    existing name needs ``replace=True``."""
    principal.require("save allocation plans")
    name = _checked_name(plan.name)
    period = _checked_period(period)
    body = {**plan.to_dict(), "name": name}
    with write_transaction(engine) as conn:
        before = _row(conn, name)
        if before is not None and not replace:
            raise PlanError(f"A plan named '{name}' exists already; choose another name or "
                            "replace it.")
        status = DRAFT
        if before is not None and before.status == ACTIVE:
            if not principal.is_owner:
                raise AccessDenied(f"Only an Owner can change the active plan '{name}'; save "
                                   "your version under another name as a draft.")
            status = ACTIVE if before.period == period else DRAFT
            if status == ACTIVE:
                allocate(Plan.from_dict(body), weights)  # the live plan must stay usable
        conn.execute(delete(_TABLE).where(_TABLE.c.kind == KIND, _TABLE.c.name == name))
        now = _now()
        conn.execute(_TABLE.insert().values(
            kind=KIND, name=name, status=status, period=period, body=json.dumps(body),
            updated_by=principal.username, updated_at=now))
        audit.record(conn, principal.username, "plan.save", name,
                     None if before is None else _audited(before),
                     {"status": status, "period": period, "plan": body})
    return SavedPlan(Plan.from_dict(body), period, status, principal.username, now)


def activate_plan(engine: Engine, principal: Principal, name: str,
                  weights: Mapping[str, Decimal] | None = None) -> None:
    """Make ``name`` the active plan of its period (Owners only); the period's previously
    active plan becomes a draft. ``weights`` are the proportional weights the plan will be
    allocated with: a plan that cannot be allocated is refused with what is wrong."""
    principal.require("activate allocation plans", owner_only=True)
    with write_transaction(engine) as conn:
        row = _row(conn, name)
        if row is None:
            raise PlanError(f"There is no saved plan named '{name}'.")
        allocate(_saved(row).plan, weights)
        same_period = (_TABLE.c.kind == KIND, _TABLE.c.period == row.period)
        locked = conn.execute(select(_TABLE.c.name, _TABLE.c.status).where(*same_period)
                              .with_for_update()).all()
        previous = [r.name for r in locked if r.status == ACTIVE and r.name != name]
        if row.status == ACTIVE and not previous:
            return
        conn.execute(update(_TABLE).where(*same_period, _TABLE.c.status == ACTIVE)
                     .values(status=DRAFT))
        conn.execute(update(_TABLE).where(_TABLE.c.kind == KIND, _TABLE.c.name == name)
                     .values(status=ACTIVE, updated_by=principal.username, updated_at=_now()))
        audit.record(conn, principal.username, "plan.activate", name,
                     {"period": row.period, "active": previous or None},
                     {"period": row.period, "active": name})


def delete_plan(engine: Engine, principal: Principal, name: str) -> None:
    """Delete a saved plan; Members may delete drafts, only an Owner the active plan."""
    principal.require("delete allocation plans")
    with write_transaction(engine) as conn:
        row = _row(conn, name)
        if row is None:
            raise PlanError(f"There is no saved plan named '{name}'.")
        if row.status == ACTIVE:
            principal.require(f"delete the active plan '{name}'", owner_only=True)
        conn.execute(delete(_TABLE).where(_TABLE.c.kind == KIND, _TABLE.c.name == name))
        audit.record(conn, principal.username, "plan.delete", name, _audited(row))


def load_plan(engine: Engine, name: str) -> SavedPlan:
    """The plan saved as ``name``; `PlanError` when there is none."""
    with engine.connect() as conn:
        row = _row(conn, name)
    if row is None:
        raise PlanError(f"There is no saved plan named '{name}'.")
    return _saved(row)


def list_plans(engine: Engine, period: str | None = None) -> list[SavedPlan]:
    """Saved plans, newest period first, the active plan first within a period."""
    query = select(_TABLE).where(_TABLE.c.kind == KIND)
    if period is not None:
        query = query.where(_TABLE.c.period == period)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    saved = [_saved(r) for r in rows]
    saved.sort(key=lambda s: s.plan.name.lower())
    saved.sort(key=lambda s: (s.period, s.active), reverse=True)
    return saved


def active_plan(engine: Engine, period: str) -> SavedPlan | None:
    """The period's active plan, if an Owner has activated one."""
    with engine.connect() as conn:
        row = conn.execute(select(_TABLE).where(
            _TABLE.c.kind == KIND, _TABLE.c.period == period,
            _TABLE.c.status == ACTIVE)).first()
    return None if row is None else _saved(row)


def _row(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(select(_TABLE).where(_TABLE.c.kind == KIND,
                                             _TABLE.c.name == name)).first()


def _saved(row: Row[Any]) -> SavedPlan:
    try:
        body = json.loads(row.body)
    except json.JSONDecodeError:
        raise PlanError(f"The saved plan '{row.name}' is damaged (not JSON).") from None
    status: Status = ACTIVE if row.status == ACTIVE else DRAFT
    return SavedPlan(Plan.from_dict(body), row.period, status, row.updated_by, row.updated_at)


def _audited(row: Row[Any]) -> dict[str, Any]:
    return {"status": row.status, "period": row.period, "plan": json.loads(row.body)}


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise PlanError("Give the plan a name.")
    if len(name) > MAX_NAME:
        raise PlanError(f"A plan name has at most {MAX_NAME} characters.")
    return name


def _checked_period(period: str) -> str:
    period = period.strip()
    if not _PERIOD.fullmatch(period):
        raise PlanError(f"'{period}' is not a budget period (e.g. 2026-11).")
    return period


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
