"""Organisation settings (name, billing anchor day) and project labels an Owner edits.

Kept as key/value rows so a new setting needs no migration.
"""

from __future__ import annotations

from urllib.parse import urlparse

from sqlalchemy import Engine, delete, select, update

from analytics import audit
from analytics.access import Principal
from analytics.series import bump_data_version
from analytics.store import Project, Setting, write_transaction

ENVIRONMENTS = ("Development", "Staging", "Production", "Analytics")
DEFAULTS = {"org_name": "My organisation", "anchor_day": "1"}


def get_setting(engine: Engine, key: str) -> str:
    with engine.connect() as conn:
        value = conn.execute(select(Setting.value).where(Setting.key == key)).scalar()
    return value if value is not None else DEFAULTS.get(key, "")


def set_setting(engine: Engine, principal: Principal, key: str, value: str,
                secret: bool = False) -> None:
    """Store an organisation setting and audit the change. A ``secret`` one (a webhook URL
    carries its own access token) is audited as its scheme and host only: the audit log is
    read and exported by people who must not be able to post to the channel."""
    principal.require("change organisation settings", owner_only=True)
    with write_transaction(engine) as conn:
        before = conn.execute(select(Setting.value).where(Setting.key == key)).scalar()
        conn.execute(delete(Setting).where(Setting.key == key))
        conn.execute(Setting.__table__.insert().values(key=key, value=value))
        if before != value:
            shown = _masked if secret else (lambda v: v)
            audit.record(conn, principal.username, "setting", key, shown(before), shown(value))


def _masked(value: str | None) -> str | None:
    """A secret URL as ``scheme://host/…`` (empty and unset stay as they are)."""
    if not value:
        return value
    url = urlparse(value)
    return f"{url.scheme}://{url.hostname}/…" if url.scheme and url.hostname else "…"


def anchor_day(engine: Engine) -> int:
    """The day of the month billing periods start on (1 = calendar months)."""
    try:
        day = int(get_setting(engine, "anchor_day"))
    except ValueError:
        return 1
    return day if 1 <= day <= 31 else 1


def set_anchor_day(engine: Engine, principal: Principal, day: int) -> None:
    if not 1 <= day <= 31:
        raise ValueError(f"The billing day must be between 1 and 31, not {day}.")
    set_setting(engine, principal, "anchor_day", str(day))


def label_project(engine: Engine, principal: Principal, provider: str, project_id: str,
                  name: str | None, environment: str | None) -> None:
    """Set a project's display name and environment (Development, Production, or custom)."""
    principal.require("rename projects or change environments", owner_only=True)
    after = {"name": (name or "").strip() or None,
             "environment": (environment or "").strip() or None}
    with write_transaction(engine) as conn:
        row = conn.execute(select(Project.name, Project.environment).where(
            Project.provider == provider, Project.project_id == project_id)).first()
        if row is None:
            raise ValueError(f"No project '{project_id}' of {provider}.")
        before = {"name": row.name, "environment": row.environment}
        if before != after:
            conn.execute(update(Project).where(
                Project.provider == provider, Project.project_id == project_id).values(**after))
            audit.record(conn, principal.username, "project.label", f"{provider}:{project_id}",
                         before, after)
            # Environments group forecasts and budgets: results cached per data version
            # must not outlive a relabelling.
            bump_data_version(conn)
