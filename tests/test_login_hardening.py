"""Login hardening (issue 8, item 7): only cookies signed with our key log anyone in;
throttling per username and per client that never reveals a username and never locks an
Owner out; long passwords; the committed config; no raw HTML anywhere in the UI.

AppTest cannot send cookies, so the cookie check is tested here as the function app.py calls
(``auth.cookie_user``) and end to end in tests/e2e/test_login_hardening.py."""

from __future__ import annotations

import re
import time
import tomllib
from datetime import datetime, timedelta

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from analytics import auth
from tests.conftest import ROOT

KEY = "the-generated-key-" + "k" * 40
T0 = datetime(2026, 11, 2, 9, 0)


def _token(claims: dict, key: str = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _future() -> float:
    return time.time() + 3600


@pytest.fixture
def people(engine: Engine) -> Engine:
    auth.add_user(engine, "olivia", "Olivia", "o@x.org", "owner-pass-1", "owner")
    auth.add_user(engine, "rita", "Rita", "r@x.org", "reader-pass-1", "reader")
    return engine


def test_a_cookie_signed_with_our_key_logs_in(people: Engine) -> None:
    user = auth.cookie_user(people, _token({"username": "rita", "exp_date": _future()}), KEY)
    assert user is not None and (user.username, user.role) == ("rita", "reader")


def _alg_none(claims: dict) -> str:
    """An unsigned token (``alg: none``), built by hand as an attacker would."""
    import base64
    import json

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_COOKIES = {
    "other-key": lambda: _token({"username": "olivia", "exp_date": _future()}, "guessed-key"),
    "alg-none": lambda: _alg_none({"username": "olivia", "exp_date": _future()}),
    "alg-none-with-our-signature-stripped": lambda: ".".join(
        _token({"username": "olivia", "exp_date": _future()}).split(".")[:2]) + ".",
    "hs512-with-our-key": lambda: _token({"username": "olivia", "exp_date": _future()},
                                         algorithm="HS512"),
    "expired": lambda: _token({"username": "olivia", "exp_date": time.time() - 1}),
    "expired-jwt-exp": lambda: _token({"username": "olivia", "exp_date": _future(),
                                       "exp": int(time.time()) - 10}),
    "exp-date-as-text": lambda: _token({"username": "olivia", "exp_date": "9999999999"}),
    "exp-date-true": lambda: _token({"username": "olivia", "exp_date": True}),
    "no-exp-date": lambda: _token({"username": "olivia"}),
    "username-not-text": lambda: _token({"username": ["olivia"], "exp_date": _future()}),
    "removed-user": lambda: _token({"username": "ghost", "exp_date": _future()}),
    "garbage": lambda: "not-a-jwt-at-all",
    "garbage-three-parts": lambda: "a.b.c",
    "empty": lambda: "",
    "huge": lambda: "x" * 100_000,
    "payload-tampered": lambda: re.sub(r"\.[^.]+\.", "." + _token(
        {"username": "olivia", "exp_date": _future()}).split(".")[1] + ".",
        _token({"username": "rita", "exp_date": _future()}), count=1),
}


@pytest.mark.parametrize("make", BAD_COOKIES.values(), ids=BAD_COOKIES.keys())
def test_a_bad_cookie_logs_nobody_in(people: Engine, make) -> None:  # noqa: ANN001
    assert auth.cookie_user(people, make(), KEY) is None


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_cookie_text_is_refused_without_an_exception(people: Engine, token: str) -> None:
    assert auth.cookie_user(people, token, KEY) is None


def test_a_cookie_of_a_removed_user_stops_working(people: Engine) -> None:
    token = _token({"username": "rita", "exp_date": _future()})
    assert auth.cookie_user(people, token, KEY) is not None
    auth.remove_user(people, "rita")
    assert auth.cookie_user(people, token, KEY) is None


# --- throttling ---------------------------------------------------------------------------------


def _fail(engine: Engine, username: str, client: str, at: datetime) -> auth.LoginResult:
    return auth.authenticate(engine, username, "wrong-password", client, now=at)


def test_an_unknown_username_locks_like_a_real_one(people: Engine) -> None:
    """Otherwise 'Too many failed attempts' would tell an attacker which usernames exist."""
    real = [_fail(people, "rita", "10.0.0.1", T0 + timedelta(seconds=i)).message
            for i in range(6)]
    ghost = [_fail(people, "nobody", "10.0.0.2", T0 + timedelta(seconds=i)).message
             for i in range(6)]
    assert real == ghost
    assert real[:4] == [auth.GENERIC_FAILURE] * 4 and "Too many" in real[4]


def test_every_path_costs_exactly_one_bcrypt_check(people: Engine,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = auth.bcrypt.checkpw
    monkeypatch.setattr(auth.bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))
    cases = [("rita", "reader-pass-1"), ("rita", "wrong"), ("nobody", "wrong")]
    for username, password in cases:
        calls.clear()
        auth.authenticate(people, username, password, "10.0.0.1", now=T0)
        assert len(calls) == 1, username
    for i in range(1, 6):  # after the successful login at T0
        _fail(people, "rita", "10.0.0.3", T0 + timedelta(seconds=i))
    calls.clear()
    locked = auth.authenticate(people, "rita", "reader-pass-1", "10.0.0.3",
                               now=T0 + timedelta(minutes=1))
    assert not locked.ok and len(calls) == 1


def test_a_client_that_fails_twenty_times_is_throttled(people: Engine) -> None:
    for i in range(auth.MAX_CLIENT_FAILURES):  # 20 usernames, 1 guess each: no username lock
        _fail(people, f"user{i}", "198.51.100.9", T0 + timedelta(seconds=i))
    later = T0 + timedelta(minutes=5)
    refused = auth.authenticate(people, "rita", "reader-pass-1", "198.51.100.9", now=later)
    assert not refused.ok and "from this address" in refused.message
    assert "11 minutes" in refused.message  # the first failure leaves the window at T0+15min
    assert auth.authenticate(people, "rita", "reader-pass-1", "192.0.2.1", now=later).ok
    after = T0 + timedelta(minutes=16)
    assert auth.authenticate(people, "rita", "reader-pass-1", "198.51.100.9", now=after).ok


def test_nobody_can_lock_an_owner_out(people: Engine) -> None:
    for i in range(auth.MAX_FAILURES):
        _fail(people, "olivia", "203.0.113.66", T0 + timedelta(seconds=i))
    soon = T0 + timedelta(minutes=1)
    attacker = auth.authenticate(people, "olivia", "owner-pass-1", "203.0.113.66", now=soon)
    assert not attacker.ok and "Too many" in attacker.message
    assert auth.authenticate(people, "olivia", "owner-pass-1", "192.0.2.10", now=soon).ok
    # a Reader's lock, by contrast, binds every client until it expires
    for i in range(auth.MAX_FAILURES):
        _fail(people, "rita", "203.0.113.66", T0 + timedelta(seconds=i))
    assert not auth.authenticate(people, "rita", "reader-pass-1", "192.0.2.10", now=soon).ok
    assert auth.authenticate(people, "rita", "reader-pass-1", "192.0.2.10",
                             now=T0 + timedelta(minutes=16)).ok


def test_a_success_or_a_password_reset_clears_the_count(people: Engine) -> None:
    for i in range(4):
        _fail(people, "rita", "10.0.0.1", T0 + timedelta(seconds=i))
    assert auth.authenticate(people, "rita", "reader-pass-1", "10.0.0.1",
                             now=T0 + timedelta(seconds=10)).ok
    for i in range(4):
        assert _fail(people, "rita", "10.0.0.1",
                     T0 + timedelta(seconds=20 + i)).message == auth.GENERIC_FAILURE


@pytest.mark.parametrize(("ip", "forwarded", "proxy", "client"), [
    (None, None, False, "local"),
    ("192.0.2.5", "6.6.6.6", False, "192.0.2.5"),
    ("10.0.0.1", "6.6.6.6, 192.0.2.77", True, "192.0.2.77"),
    ("10.0.0.1", None, True, "10.0.0.1"),
    ("10.0.0.1\x1b[31m", None, False, "10.0.0.1?[31m"),
])
def test_client_identity(ip: str | None, forwarded: str | None, proxy: bool,
                         client: str) -> None:
    assert auth.client_of(ip, forwarded, proxy) == client


# --- passwords ----------------------------------------------------------------------------------


def test_passwords_over_72_bytes_count_in_full() -> None:
    base = "é" * 36  # 72 bytes in UTF-8: bcrypt alone would ignore everything after it
    hashed = auth.hash_password(base + "tail-one")
    assert auth.verify_password(base + "tail-one", hashed)
    assert not auth.verify_password(base + "tail-two", hashed)
    assert not auth.verify_password(base, hashed)
    huge = "p" * 1_000_000
    assert auth.verify_password(huge, auth.hash_password(huge))


# --- configuration and markup -------------------------------------------------------------------


def test_config_keeps_xsrf_on_and_error_details_off() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"].get("enableCORS", True) is True


def test_no_raw_html_anywhere_in_the_ui() -> None:
    files = [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")]
    assert len(files) > 5
    for path in files:
        source = path.read_text()
        assert "unsafe_allow_html" not in source, path
        assert "st.html(" not in source and "components.html(" not in source, path
