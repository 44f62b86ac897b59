"""Budget alerts: judge every budget, keep what fired in the app, send it out once.

``check`` forecasts each budget's scope for its own period and applies
``budgets.budget_status``: alerts fire on actual spend (a threshold crossed) and on the
forecast (a threshold it will cross, the day it goes over). Each alert has a key (budget,
period, amount, basis, threshold), so one alert is stored and delivered once per period
however often cron runs the check; raising the budget gives new keys.

Delivery, configured by an Owner in settings: the app's alert list always; a
Slack-compatible webhook (one JSON ``{"text": ...}`` POST per run, one attempt, a timeout);
email over SMTP (one message per run, STARTTLS unless turned off). The SMTP password comes
from the environment (``BURNRATE_SMTP_PASSWORD``), never from the store. A failed delivery
is reported and noted on the alert, never retried in a loop.
"""

from __future__ import annotations

import json
import os
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from urllib.parse import urlparse

import pandas as pd
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from analytics.access import Principal
from analytics.budget_store import list_budgets
from analytics.budgets import (
    Alert,
    Budget,
    BudgetStatus,
    PeriodKind,
    Threshold,
    budget_status,
)
from analytics.forecast import ForecastError, ForecastResult
from analytics.forecasting import forecast_scopes
from analytics.org import get_setting, set_setting
from analytics.store import AlertRow, write_transaction

SOURCE = "budget"
TIMEOUT_SECONDS = 10
PASSWORD_ENV = "BURNRATE_SMTP_PASSWORD"
USER_ENV = "BURNRATE_SMTP_USER"
_KEYS = {"webhook_url": "alert_webhook_url", "smtp_host": "alert_smtp_host",
         "smtp_port": "alert_smtp_port", "email_from": "alert_email_from",
         "email_to": "alert_email_to", "starttls": "alert_smtp_starttls"}


class DeliveryError(ValueError):
    """Alert delivery settings that cannot work, or a send that failed."""


# --- judging budgets ---------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetCheck:
    """One budget judged; `status` is None (and `problem` says why) when no forecast could
    be made for its scope, e.g. a project with no billed spend yet."""

    budget: Budget
    status: BudgetStatus | None
    problem: str = ""

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return self.status.alerts if self.status else ()


def check(engine: Engine, principal: Principal, as_of: date | None = None
          ) -> list[BudgetCheck]:
    """Every budget the principal may see, judged against its scope's forecast.

    Budgets sharing a period kind and billing day are forecast together (``forecast_scopes``:
    in parallel, each scope once), so a check of dozens of budgets costs about one forecast.
    """
    budgets = list_budgets(engine, principal)
    groups: dict[tuple[PeriodKind, int], list[str]] = {}
    for budget in budgets:
        scopes = groups.setdefault((budget.kind, budget.anchor_day), [])
        if budget.scope not in scopes:
            scopes.append(budget.scope)
    forecasts: dict[tuple[str, PeriodKind, int], ForecastResult | ForecastError] = {}
    for (kind, anchor), scopes in groups.items():
        try:
            found = forecast_scopes(engine, principal, scopes, as_of, kind,
                                    dict.fromkeys(scopes, anchor))
        except ForecastError as exc:  # no billed cost at all: every budget says so
            found = dict.fromkeys(scopes, exc)
        forecasts.update({(scope, kind, anchor): result for scope, result in found.items()})
    checks = []
    for budget in budgets:
        forecast = forecasts[(budget.scope, budget.kind, budget.anchor_day)]
        if isinstance(forecast, ForecastError):
            checks.append(BudgetCheck(budget, None, str(forecast)))
        else:
            checks.append(BudgetCheck(budget, budget_status(budget, forecast)))
    return checks


def alert_key(status: BudgetStatus, alert: Alert) -> str:
    b = status.budget
    return (f"{SOURCE}:{b.name}:{status.period.start.isoformat()}:{b.amount}:"
            f"{alert.basis}:{alert.threshold_pct}")


# --- the app's alert list ----------------------------------------------------------------


@dataclass(frozen=True)
class RaisedAlert:
    key: str
    level: str
    message: str


def record(engine: Engine, checks: list[BudgetCheck]) -> list[RaisedAlert]:
    """Store the alerts not stored before (by key; the database skips the others); return
    those new ones."""
    firing = {alert_key(c.status, a): RaisedAlert(alert_key(c.status, a), a.level, a.message)
              for c in checks if c.status for a in c.alerts}
    if not firing:
        return []
    table = AlertRow.__table__
    now = datetime.now(UTC).replace(tzinfo=None)
    insert = (sqlite_insert if engine.dialect.name == "sqlite" else postgresql_insert)(table)
    # A key another check stored meanwhile (the app and cron at once) is skipped by the
    # database (unique index on budget alert keys), so it is raised and delivered once.
    once = insert.on_conflict_do_nothing(index_elements=[table.c.key],
                                         index_where=table.c.source == SOURCE
                                         ).returning(table.c.key)
    with write_transaction(engine) as conn:
        return [alert for key, alert in firing.items() if conn.execute(once.values(
            at=now, source=SOURCE, level=alert.level, key=key, message=alert.message,
            delivered="app")).first() is not None]


def recent_alerts(engine: Engine, principal: Principal, limit: int = 200) -> pd.DataFrame:
    """Stored alerts, newest first (at, level, message, delivered). A principal limited to
    some projects sees only the alerts of the budgets they may see."""
    table = AlertRow.__table__
    query = select(table.c.at, table.c.level, table.c.message, table.c.delivered).order_by(
        table.c.id.desc()).limit(limit)
    if principal.projects is not None:
        names = [b.name for b in list_budgets(engine, principal)]
        if not names:
            return pd.DataFrame(columns=["at", "level", "message", "delivered"])
        query = query.where(table.c.source == SOURCE, or_(*[
            table.c.key.startswith(f"{SOURCE}:{n}:", autoescape=True) for n in names]))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=["at", "level", "message", "delivered"])


# --- delivery settings -------------------------------------------------------------------


@dataclass(frozen=True)
class DeliverySettings:
    """Where alerts go besides the app; empty fields mean that channel is off."""

    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    email_from: str = ""
    email_to: tuple[str, ...] = field(default=())
    starttls: bool = True

    @property
    def email_on(self) -> bool:
        return bool(self.smtp_host and self.email_to)

    def validated(self) -> DeliverySettings:
        """Itself, or a `DeliveryError` naming the field a person got wrong."""
        if self.webhook_url:
            url = urlparse(self.webhook_url)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise DeliveryError("The webhook must be an http(s) URL, like "
                                    "https://hooks.slack.com/services/...")
        if not 1 <= self.smtp_port <= 65535:
            raise DeliveryError(f"The SMTP port must be 1 to 65535, not {self.smtp_port}.")
        if self.email_to and not self.smtp_host:
            raise DeliveryError("Give the SMTP server that sends the alert emails.")
        if self.smtp_host and not self.email_to:
            raise DeliveryError("Give at least one address to email the alerts to.")
        if self.email_on and "@" not in self.email_from:
            raise DeliveryError("Give the address the alert emails come from.")
        for address in self.email_to:
            if "@" not in address:
                raise DeliveryError(f"'{address}' is not an email address.")
        return self


def delivery_settings(engine: Engine) -> DeliverySettings:
    values = {name: get_setting(engine, key) for name, key in _KEYS.items()}
    try:
        port = int(values["smtp_port"] or 587)
    except ValueError:
        port = 587
    return DeliverySettings(
        webhook_url=values["webhook_url"], smtp_host=values["smtp_host"], smtp_port=port,
        email_from=values["email_from"],
        email_to=tuple(a.strip() for a in values["email_to"].split(",") if a.strip()),
        starttls=values["starttls"] != "0")


def save_delivery_settings(engine: Engine, principal: Principal,
                           settings: DeliverySettings) -> None:
    """Validate, then store each field as an Owner-only, audited setting."""
    principal.require("configure alert delivery", owner_only=True)
    s = settings.validated()
    for name, value in (("webhook_url", s.webhook_url), ("smtp_host", s.smtp_host),
                        ("smtp_port", str(s.smtp_port)), ("email_from", s.email_from),
                        ("email_to", ",".join(s.email_to)),
                        ("starttls", "1" if s.starttls else "0")):
        set_setting(engine, principal, _KEYS[name], value, secret=name == "webhook_url")


# --- sending -----------------------------------------------------------------------------


def send_webhook(url: str, text: str, timeout: float = TIMEOUT_SECONDS) -> None:
    """POST ``{"text": text}`` once (Slack, Mattermost, Teams workflows and the like)."""
    request = urllib.request.Request(
        url, data=json.dumps({"text": text}).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"the webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"the webhook could not be reached ({reason})") from None


def send_email(settings: DeliverySettings, subject: str, text: str,
               timeout: float = TIMEOUT_SECONDS) -> None:
    """One plain-text email to every recipient; logs in when a password is in the env."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.email_from
    message["To"] = ", ".join(settings.email_to)
    message.set_content(text)
    password = os.environ.get(PASSWORD_ENV)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.starttls:
                smtp.starttls()
            if password:
                smtp.login(os.environ.get(USER_ENV) or settings.email_from, password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"the email could not be sent ({exc})") from None


def _digest(alerts: list[RaisedAlert]) -> str:
    lines = [f"[{a.level.upper()}] {a.message}" for a in alerts]
    return "Burnrate budget alerts:\n" + "\n".join(lines)


def deliver(engine: Engine, alerts: list[RaisedAlert],
            settings: DeliverySettings | None = None) -> list[str]:
    """Send `alerts` to the configured channels, one message each; note the outcome on the
    stored alerts. Returns one line per channel tried ("webhook: sent", "email: failed ...")."""
    if not alerts:
        return []
    settings = settings or delivery_settings(engine)
    text = _digest(alerts)
    outcomes: list[str] = []
    channels: list[str] = ["app"]
    if settings.webhook_url:
        try:
            send_webhook(settings.webhook_url, text)
        except DeliveryError as exc:
            outcomes.append(f"webhook: failed, {exc}")
            channels.append("webhook failed")
        else:
            outcomes.append("webhook: sent")
            channels.append("webhook")
    if settings.email_on:
        subject = f"Burnrate: {len(alerts)} budget alert{'s' if len(alerts) > 1 else ''}"
        try:
            send_email(settings, subject, text)
        except DeliveryError as exc:
            outcomes.append(f"email: failed, {exc}")
            channels.append("email failed")
        else:
            outcomes.append("email: sent")
            channels.append("email")
    table = AlertRow.__table__
    with write_transaction(engine) as conn:
        conn.execute(update(table).where(table.c.key.in_([a.key for a in alerts]))
                     .values(delivered=", ".join(channels)[:128]))
    return outcomes


@dataclass(frozen=True)
class CheckRun:
    checks: list[BudgetCheck]
    new_alerts: list[RaisedAlert]
    delivery: list[str]

    @property
    def firing(self) -> bool:
        """Any alert fires now (new or already sent): what cron's exit code reports."""
        return any(c.alerts for c in self.checks)


def run_check(engine: Engine, principal: Principal, as_of: date | None = None,
              send: bool = True) -> CheckRun:
    """Judge every budget, store new alerts and (unless `send` is False) deliver them."""
    principal.require("run the budget check and send its alerts", owner_only=True)
    checks = check(engine, principal, as_of)
    new = record(engine, checks)
    return CheckRun(checks, new, deliver(engine, new) if send else [])


def _thresholds_text(thresholds: tuple[Threshold, ...]) -> str:
    return ", ".join(f"{t.pct}% {t.action}" for t in thresholds)


def checks_frame(checks: list[BudgetCheck]) -> pd.DataFrame:
    """One row per budget with its status: the Forecast page's table and `budgets check`."""
    rows = []
    for c in checks:
        b, s = c.budget, c.status
        rows.append({
            "budget": b.name, "scope": b.scope, "period": b.kind, "limit": b.limit,
            "amount_usd": b.amount,
            "period_start": s.period.start if s else None,
            "period_end": s.period.end if s else None,
            "actual_usd": s.actual_usd if s else None,
            "forecast_usd": s.forecast_usd if s else None,
            "headroom_usd": s.headroom_usd if s else None,
            "p_over_budget": round(s.p_over_budget, 3) if s else None,
            "breach_date": s.breach_date if s else None,
            "crossed_actual": _thresholds_text(s.crossed_actual) if s else "",
            "crossed_forecast": _thresholds_text(s.crossed_forecast) if s else "",
            "reserve_pct": b.reserve_pct,
            "note": c.problem or ("over budget" if s and s.over_budget else ""),
        })
    return pd.DataFrame(rows)
