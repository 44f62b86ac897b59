"""Budget alerts: stored once per key, scoped, delivered to a webhook and by SMTP to local
servers started here, failures reported without retries, settings Owner-only and checked."""

from __future__ import annotations

import base64
import json
import socketserver
import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from analytics.access import SYSTEM, AccessDenied, Principal
from analytics.alerts import (
    DeliveryError,
    DeliverySettings,
    check,
    checks_frame,
    delivery_settings,
    recent_alerts,
    run_check,
    save_delivery_settings,
)
from analytics.budget_store import save_budget
from analytics.budgets import Budget
from analytics.store import AlertRow, Setting
from tests.forecast_fixtures import DEV, PROD, flat_org, load

LAST = date(2026, 11, 14)


@pytest.fixture
def store(engine):
    """$10/day on Dev, $30/day on Prod to 14 Nov; Dev's $245 budget has crossed 50% and is
    forecast past 75%, 90% and 100% (see test_budget_store); Prod's $10,000 is far off."""
    load(engine, flat_org(date(2026, 8, 1), LAST, {DEV: Decimal("10"), PROD: Decimal("30")}))
    save_budget(engine, SYSTEM, Budget("Dev", Decimal("245"), scope=f"project:{DEV}"))
    save_budget(engine, SYSTEM, Budget("Prod", Decimal("10000"), scope=f"project:{PROD}"))
    return engine


# --- local servers ------------------------------------------------------------------------


class _Webhook(BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    server.received = []
    server.status = 200
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


class _SMTP(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO (with AUTH PLAIN), AUTH, MAIL, RCPT, DATA, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 test smtp")
        mail: dict[str, object] = {"rcpt": []}
        while line := self.rfile.readline().decode().rstrip("\r\n"):
            verb = line.split(" ")[0].upper()
            if verb == "EHLO":
                self.reply("250-test")
                self.reply("250 AUTH PLAIN")
            elif verb == "AUTH":
                self.server.logins.append(base64.b64decode(line.split(" ")[2]).split(b"\0"))
                self.reply("235 ok")
            elif verb == "MAIL":
                mail["from"] = line
                self.reply("250 ok")
            elif verb == "RCPT":
                mail["rcpt"].append(line)
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                lines = []
                while (data := self.rfile.readline().decode()) != ".\r\n":
                    lines.append(data)
                mail["data"] = "".join(lines)
                self.server.mails.append(mail)
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not here")


@pytest.fixture
def smtp():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTP)
    server.daemon_threads = True
    server.mails, server.logins = [], []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _configure(engine, webhook_url="", smtp_port=0) -> None:
    save_delivery_settings(engine, SYSTEM, DeliverySettings(
        webhook_url=webhook_url, smtp_host="127.0.0.1" if smtp_port else "",
        smtp_port=smtp_port or 587, email_from="burnrate@example.com",
        email_to=("finance@example.com", "oncall@example.com") if smtp_port else (),
        starttls=False))


def _stored(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(AlertRow.key, AlertRow.level, AlertRow.delivered)
                            .order_by(AlertRow.id)).all()


# --- tests ---------------------------------------------------------------------------------


def test_actual_and_forecast_alerts_are_stored_once(store):
    first = run_check(store, SYSTEM, send=False)
    assert first.firing
    assert [k for k, _, _ in _stored(store)] == [
        f"budget:Dev:2026-11-01:245:{basis}:{pct}"
        for basis, pct in (("actual", 50), ("forecast", 75), ("forecast", 90),
                           ("forecast", 100))]
    assert [lvl for _, lvl, _ in _stored(store)] == ["critical", "warning", "warning",
                                                     "warning"]
    again = run_check(store, SYSTEM, send=False)
    assert again.firing and again.new_alerts == [], "cron may run hourly: no repeats"
    assert len(_stored(store)) == 4


def test_a_raised_budget_gives_new_alerts(store):
    run_check(store, SYSTEM, send=False)
    save_budget(store, SYSTEM, Budget("Dev", Decimal("270"), scope=f"project:{DEV}"),
                replace=True)
    run = run_check(store, SYSTEM, send=False)
    # $270: 50% = $135 crossed ($140 spent); 75% $202.50, 90% $243, 100% forecast ($300).
    assert sorted(a.key.split(":", 4)[4] for a in run.new_alerts) == [
        "actual:50", "forecast:100", "forecast:75", "forecast:90"]


def test_no_budget_over_any_threshold_fires_nothing(store):
    save_budget(store, SYSTEM, Budget("Dev", Decimal("100000"), scope=f"project:{DEV}"),
                replace=True)
    run = run_check(store, SYSTEM)
    assert not run.firing and run.new_alerts == [] and run.delivery == []
    frame = checks_frame(run.checks)
    assert list(frame["budget"]) == ["Dev", "Prod"]
    assert list(frame["actual_usd"]) == [140.0, 420.0]
    assert list(frame["crossed_actual"]) == ["", ""]


def test_delivery_to_webhook_and_email(store, webhook, smtp, monkeypatch):
    monkeypatch.setenv("BURNRATE_SMTP_PASSWORD", "s3cret-from-env")
    _configure(store, f"http://127.0.0.1:{webhook.server_port}/hook", smtp.server_address[1])
    run = run_check(store, SYSTEM)
    assert run.delivery == ["webhook: sent", "email: sent"]

    assert len(webhook.received) == 1, "one message per run, not one per alert"
    content_type, payload = webhook.received[0]
    assert content_type == "application/json" and list(payload) == ["text"]
    assert payload["text"].count("\n[") == 4 and "Dev: spend so far is $140.00" in payload["text"]

    assert len(smtp.mails) == 1
    mail = smtp.mails[0]
    assert "finance@example.com" in mail["rcpt"][0] and "oncall@example.com" in mail["rcpt"][1]
    assert "Subject: Burnrate: 4 budget alerts" in mail["data"]
    assert "Dev: spend so far is $140.00" in mail["data"]
    assert smtp.logins == [[b"", b"burnrate@example.com", b"s3cret-from-env"]]

    assert {d for _, _, d in _stored(store)} == {"app, webhook, email"}
    with store.connect() as conn:
        values = conn.execute(select(Setting.value)).scalars().all()
    assert not any("s3cret" in v for v in values), "the password never reaches the store"

    assert run_check(store, SYSTEM).delivery == [], "nothing new, nothing sent"
    assert len(webhook.received) == 1 and len(smtp.mails) == 1


def test_failed_delivery_is_reported_once_not_retried(store, webhook, smtp):
    webhook.status = 500
    save_delivery_settings(store, SYSTEM, DeliverySettings(
        webhook_url=f"http://127.0.0.1:{webhook.server_port}/hook", smtp_host="127.0.0.1",
        smtp_port=smtp.server_address[1], email_from="b@example.com",
        email_to=("f@example.com",), starttls=True))  # the test server has no STARTTLS
    run = run_check(store, SYSTEM)
    assert run.delivery[0] == "webhook: failed, the webhook answered HTTP 500"
    assert run.delivery[1].startswith("email: failed")
    assert len(webhook.received) == 1 and smtp.mails == []
    assert {d for _, _, d in _stored(store)} == {"app, webhook failed, email failed"}


def test_unreachable_webhook_does_not_raise(store):
    _configure(store, "http://127.0.0.1:9/nothing-listens-here")
    run = run_check(store, SYSTEM)
    assert len(run.new_alerts) == 4
    assert run.delivery[0].startswith("webhook: failed, the webhook could not be reached")


@pytest.mark.parametrize("settings, message", [
    (DeliverySettings(webhook_url="ftp://example.com/x"), "http"),
    (DeliverySettings(smtp_host="mail.example.com"), "at least one address"),
    (DeliverySettings(email_to=("a@example.com",)), "SMTP server"),
    (DeliverySettings(smtp_host="m", email_to=("nobody",), email_from="a@b.c"), "'nobody'"),
    (DeliverySettings(smtp_host="m", email_to=("a@b.c",)), "come from"),
    (DeliverySettings(smtp_port=70000), "65535"),
])
def test_delivery_settings_are_checked(store, settings, message):
    with pytest.raises(DeliveryError, match=message):
        save_delivery_settings(store, SYSTEM, settings)
    assert delivery_settings(store) == DeliverySettings()


def test_delivery_settings_and_checks_are_owner_only(store):
    member = Principal("mark", "member")
    with pytest.raises(AccessDenied):
        save_delivery_settings(store, member, DeliverySettings(webhook_url="https://x.y/z"))
    with pytest.raises(AccessDenied):
        run_check(store, member)
    saved = DeliverySettings(webhook_url="https://hooks.example.com/T1", smtp_host="mail",
                             smtp_port=2525, email_from="a@b.c", email_to=("x@y.z", "q@r.s"),
                             starttls=False)
    save_delivery_settings(store, SYSTEM, saved)
    assert delivery_settings(store) == saved


def test_alert_list_is_scoped_to_visible_budgets(store):
    save_budget(store, SYSTEM, Budget("Prod", Decimal("500"), scope=f"project:{PROD}"),
                replace=True)  # Prod: $420 spent, 50% and 75% crossed
    run_check(store, SYSTEM, send=False)
    everyone = recent_alerts(store, SYSTEM)
    assert everyone["message"].str.startswith("Prod").any()
    prod_only = recent_alerts(store, Principal("pat", "reader", frozenset({PROD})))
    assert len(prod_only) and prod_only["message"].str.startswith("Prod").all()
    nobody = recent_alerts(store, Principal("x", "reader", frozenset({"proj_other"})))
    assert nobody.empty


def test_the_audit_log_never_shows_the_webhooks_token(engine):
    """A Slack webhook URL is its own password: the audit log keeps its host only."""
    from analytics import audit

    secret = "https://hooks.slack.com/services/T0001/B0002/TOKENabc123"
    save_delivery_settings(engine, SYSTEM, DeliverySettings(webhook_url=secret))
    save_delivery_settings(engine, SYSTEM, DeliverySettings(webhook_url=secret + "x"))
    logged = audit.entries(engine, action="setting")
    webhook = logged[logged["target"] == "alert_webhook_url"]
    assert len(webhook) == 2
    raw = [v for v in [*webhook["before"], *webhook["after"]] if isinstance(v, str)]
    assert len(raw) == 3 and not any("TOKEN" in v for v in raw)
    assert {json.loads(v) for v in raw} == {"https://hooks.slack.com/…"}
    with engine.connect() as conn:  # the setting itself is kept whole, to post to
        stored = conn.execute(select(Setting.value).where(
            Setting.key == "alert_webhook_url")).scalar_one()
    assert stored == secret + "x"


def test_budgets_forecast_together_are_judged_as_each_alone(store):
    """Budgets are forecast in groups (same period kind and billing day); each still gets its
    own scope's and calendar's forecast, including a second budget on the same scope with
    another billing day."""
    from analytics.forecasting import forecast_scope

    save_budget(store, SYSTEM, Budget("Dev from the 15th", Decimal("245"),
                                      scope=f"project:{DEV}", anchor_day=15))
    checks = {c.budget.name: c for c in check(store, SYSTEM)}
    assert set(checks) == {"Dev", "Prod", "Dev from the 15th"}
    for name, c in checks.items():
        alone = forecast_scope(store, SYSTEM, c.budget.scope, None, c.budget.kind,
                               c.budget.anchor_day)
        assert c.status is not None and c.status.forecast_usd == pytest.approx(
            alone.forecast), name
    assert (checks["Dev"].status.forecast_usd
            != checks["Dev from the 15th"].status.forecast_usd), "its own billing period"
