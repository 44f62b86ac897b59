"""Budgets an Owner keeps in the store: save, list, delete, each change audited.

The rules of a budget (periods, thresholds, what a hard limit means) live in ``budgets.py``;
this module only moves ``Budget`` values in and out of the ``budgets`` table. Thresholds and
the reserve are kept in the row's JSON ``body`` so that adding an option needs no migration.

A principal limited to some projects sees only the budgets of those projects: an org or
environment budget judged against part of its spend would show a false headroom.

Example:
    >>> save_budget(engine, owner, Budget("Org monthly", Decimal("5000")))  # doctest: +SKIP
    >>> [b.name for b in list_budgets(engine, owner)]  # doctest: +SKIP
    ['Org monthly']
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, select

from analytics import audit
from analytics.access import Principal
from analytics.budgets import Budget, BudgetError, Threshold
from analytics.org import ENVIRONMENTS
from analytics.queries import projects
from analytics.store import BudgetRow, write_transaction

MAX_NAME = 128


def budget_to_dict(budget: Budget) -> dict[str, Any]:
    """A budget as plain JSON-able values (the audit log's before/after, the CLI's JSON)."""
    return {
        "name": budget.name,
        "scope": budget.scope,
        "amount": str(budget.amount),
        "kind": budget.kind,
        "anchor_day": budget.anchor_day,
        "limit": budget.limit,
        "thresholds": [{"pct": t.pct, "action": t.action} for t in budget.thresholds],
        "reserve_pct": str(budget.reserve_pct),
    }


def _body(budget: Budget) -> str:
    return json.dumps({
        "thresholds": [{"pct": t.pct, "action": t.action} for t in budget.thresholds],
        "reserve_pct": str(budget.reserve_pct),
    }, sort_keys=True)


def _plain(value: Decimal) -> Decimal:
    """1000.000000000 (the store's scale) -> 1000, 12.50 -> 12.5: as the Owner typed it."""
    value = Decimal(value)
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()


def _from_row(row: Any) -> Budget:
    body = json.loads(row.body or "{}")
    return Budget(
        name=row.name,
        amount=_plain(row.amount),
        kind=row.kind,
        anchor_day=row.anchor_day,
        scope=row.scope,
        limit=row.limit_type,
        thresholds=tuple(Threshold(int(t["pct"]), str(t["action"]))
                         for t in body.get("thresholds", [])),
        reserve_pct=Decimal(body.get("reserve_pct", "0")),
    )


def _visible_scopes(principal: Principal) -> list[str] | None:
    """Budget scopes a project-limited principal may see (None: all)."""
    if principal.projects is None:
        return None
    return [f"project:{p}" for p in sorted(principal.projects)]


def list_budgets(engine: Engine, principal: Principal) -> list[Budget]:
    """The budgets the principal may see, by name."""
    table = BudgetRow.__table__
    query = select(table).order_by(table.c.name)
    scopes = _visible_scopes(principal)
    if scopes is not None:
        query = query.where(table.c.scope.in_(scopes))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_from_row(r) for r in rows]


def get_budget(engine: Engine, principal: Principal, name: str) -> Budget:
    """One budget by name; ``BudgetError`` when there is none the principal may see."""
    for budget in list_budgets(engine, principal):
        if budget.name == name:
            return budget
    raise BudgetError(f"There is no budget named '{name}'.")


def _check_scope(engine: Engine, principal: Principal, scope: str) -> None:
    """Catch a typed project id or environment that matches nothing, before it is saved
    and silently judged against $0 of spend."""
    kind, _, value = scope.partition(":")
    table = projects(engine, principal)
    if kind == "project" and value not in set(table["project_id"]):
        raise BudgetError(f"No project '{value}' is in the store.")
    if kind == "env":
        known = set(ENVIRONMENTS) | set(table["environment"].dropna())
        if value not in known:
            raise BudgetError(f"No environment '{value}': use one of "
                              f"{', '.join(sorted(known))}.")


def save_budget(engine: Engine, principal: Principal, budget: Budget,
                replace: bool = False) -> None:
    """Store ``budget`` under its name; an existing name needs ``replace=True``."""
    principal.require("set budgets", owner_only=True)
    name = budget.name.strip()
    if not name:
        raise BudgetError("Give the budget a name.")
    if len(name) > MAX_NAME:
        raise BudgetError(f"A budget name has at most {MAX_NAME} characters.")
    if name != budget.name:
        raise BudgetError("A budget name cannot start or end with spaces.")
    _check_scope(engine, principal, budget.scope)
    table = BudgetRow.__table__
    with write_transaction(engine) as conn:
        old = conn.execute(select(table).where(table.c.name == name)).first()
        if old is not None and not replace:
            raise BudgetError(f"A budget named '{name}' exists already; choose another name "
                              "or replace it.")
        conn.execute(delete(table).where(table.c.name == name))
        conn.execute(table.insert().values(
            name=name, scope=budget.scope, amount=budget.amount, kind=budget.kind,
            anchor_day=budget.anchor_day, limit_type=budget.limit, body=_body(budget),
            updated_by=principal.username, updated_at=datetime.now(UTC).replace(tzinfo=None)))
        audit.record(conn, principal.username, "budget.save", name,
                     None if old is None else budget_to_dict(_from_row(old)),
                     budget_to_dict(budget))


def delete_budget(engine: Engine, principal: Principal, name: str) -> None:
    principal.require("delete budgets", owner_only=True)
    table = BudgetRow.__table__
    with write_transaction(engine) as conn:
        old = conn.execute(select(table).where(table.c.name == name)).first()
        if old is None:
            raise BudgetError(f"There is no budget named '{name}'.")
        conn.execute(delete(table).where(table.c.name == name))
        audit.record(conn, principal.username, "budget.delete", name,
                     budget_to_dict(_from_row(old)))


def budget_for(budgets: list[Budget], scope: str, kind: str = "month") -> Budget | None:
    """The budget charted and reported beside a scope's forecast of `kind` (first by name)."""
    return next((b for b in budgets if b.scope == scope and b.kind == kind), None)
