"""Where each provider endpoint's sync stands (``sync_state``) and the alerts a failure raises.

The state is what makes a sync incremental: the next run starts a few days before the last day
it stored, because providers fill in recent days late. Only the day is kept: never the key.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import Connection, Engine, select

from analytics.store import AlertRow, SyncState, write_transaction

ALERT_SOURCE = "sync"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def last_days(engine: Engine, provider: str) -> dict[str, date | None]:
    """The last day stored per endpoint of ``provider`` (endpoints never synced are absent)."""
    table = SyncState.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.endpoint, table.c.last_day)
                            .where(table.c.provider == provider)).all()
    return {endpoint: _as_date(day) for endpoint, day in rows}


def _as_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value  # type: ignore[return-value]
    return date.fromisoformat(str(value)[:10])


def _upsert(conn: Connection, provider: str, endpoint: str, **values: object) -> None:
    table = SyncState.__table__
    where = (table.c.provider == provider) & (table.c.endpoint == endpoint)
    if conn.execute(select(table.c.provider).where(where)).first() is None:
        conn.execute(table.insert().values(
            {"last_day": None, **values, "provider": provider, "endpoint": endpoint}))
    else:
        conn.execute(table.update().where(where).values(**values))


def record_success(engine: Engine, provider: str, endpoint: str, last_day: date | None,
                   message: str) -> None:
    """Store a finished endpoint: the newest day it now holds, and what it did."""
    values: dict[str, object] = {"last_run_at": _now(), "status": "ok", "message": message}
    if last_day is not None:
        values["last_day"] = last_day
    with write_transaction(engine) as conn:
        _upsert(conn, provider, endpoint, **values)


def record_failure(engine: Engine, provider: str, endpoints: list[str], message: str) -> None:
    """Mark endpoints failed (their last day is kept, so the next run retries the same days)
    and raise one alert for the provider, refreshed rather than repeated while undelivered."""
    now = _now()
    alerts = AlertRow.__table__
    key = f"{ALERT_SOURCE}:{provider}"
    with write_transaction(engine) as conn:
        for endpoint in endpoints:
            _upsert(conn, provider, endpoint, last_run_at=now, status="failed", message=message)
        pending = conn.execute(select(alerts.c.id).where(
            alerts.c.key == key, alerts.c.message == message, alerts.c.delivered == "")
            .order_by(alerts.c.id.desc())).first()
        if pending is not None:
            conn.execute(alerts.update().where(alerts.c.id == pending.id).values(at=now))
        else:
            conn.execute(alerts.insert().values(at=now, source=ALERT_SOURCE, level="critical",
                                                key=key, message=message, delivered=""))


def sync_status(engine: Engine) -> pd.DataFrame:
    """Every endpoint's last sync: provider, endpoint, last_day, last_run_at, status, message."""
    table = SyncState.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.provider, table.c.endpoint)).all()
    return pd.DataFrame(rows, columns=[c.name for c in table.columns])


def latest_by_provider(engine: Engine) -> pd.DataFrame:
    """One row per provider ever synced: its newest run time, ``ok`` or ``failed`` (failed
    when any endpoint's last run failed) and the failure message, for the overview."""
    status = sync_status(engine)
    if status.empty:
        return pd.DataFrame(columns=["provider", "last_run_at", "status", "message"])
    failed = status[status["status"] == "failed"]
    out = status.groupby("provider", as_index=False)["last_run_at"].max()
    out["status"] = out["provider"].map(lambda p: "failed" if p in set(failed["provider"])
                                        else "ok")
    messages = failed.groupby("provider")["message"].first()
    out["message"] = out["provider"].map(lambda p: messages.get(p, ""))
    return out


def sync_alerts(engine: Engine, limit: int = 20) -> pd.DataFrame:
    """The newest sync-failure alerts: at, level, message."""
    alerts = AlertRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(alerts.c.at, alerts.c.level, alerts.c.message)
                            .where(alerts.c.source == ALERT_SOURCE)
                            .order_by(alerts.c.at.desc()).limit(limit)).all()
    return pd.DataFrame(rows, columns=["at", "level", "message"])


__all__ = ["last_days", "record_success", "record_failure", "sync_status", "sync_alerts",
           "latest_by_provider"]
