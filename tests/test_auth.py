"""Users, passwords, lockout, setup token and the users CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from analytics import audit, auth
from tests.conftest import ROOT


def test_password_roundtrip_and_long_passwords():
    hashed = auth.hash_password("correct-horse-battery")
    assert auth.verify_password("correct-horse-battery", hashed)
    assert not auth.verify_password("correct-horse-batterz", hashed)
    long_a = "x" * 80 + "a"
    long_b = "x" * 80 + "b"  # same first 72 bytes: plain bcrypt would accept either
    h = auth.hash_password(long_a)
    assert auth.verify_password(long_a, h)
    assert not auth.verify_password(long_b, h)
    with pytest.raises(auth.UserError):
        auth.hash_password("short")


def test_five_failures_lock_for_fifteen_minutes(engine):
    auth.add_user(engine, "rita", "Rita", "r@x.org", "reader-pass-1", "reader")
    t0 = datetime(2026, 11, 1, 9, 0)
    for i in range(4):
        r = auth.authenticate(engine, "rita", "wrong", now=t0 + timedelta(seconds=i))
        assert not r.ok and r.message == auth.GENERIC_FAILURE
    locked = auth.authenticate(engine, "rita", "wrong", now=t0 + timedelta(seconds=5))
    assert "Too many failed attempts" in locked.message
    during = auth.authenticate(engine, "rita", "reader-pass-1", now=t0 + timedelta(minutes=10))
    assert not during.ok and "Too many" in during.message
    after = auth.authenticate(engine, "rita", "reader-pass-1", now=t0 + timedelta(minutes=16))
    assert after.ok and after.user.role == "reader"


def test_unknown_user_gets_the_same_words(engine):
    auth.add_user(engine, "olivia", "O", "o@x.org", "owner-pass-1", "owner")
    assert auth.authenticate(engine, "nobody", "whatever1").message == \
        auth.authenticate(engine, "olivia", "whatever1").message


def test_last_owner_cannot_be_demoted_or_removed(engine):
    auth.add_user(engine, "olivia", "O", "o@x.org", "owner-pass-1", "owner")
    with pytest.raises(auth.UserError, match="last Owner"):
        auth.set_role(engine, "olivia", "reader")
    with pytest.raises(auth.UserError, match="last Owner"):
        auth.remove_user(engine, "olivia")
    auth.add_user(engine, "oscar", "O2", "o2@x.org", "owner-pass-2", "owner")
    auth.set_role(engine, "olivia", "member", actor="oscar")
    assert auth.get_user(engine, "olivia").role == "member"
    log = audit.entries(engine)
    change = log[log["action"] == "user.role"].iloc[0]
    assert change["username"] == "oscar" and '"owner"' in change["before"]


def test_setup_token_is_single_use_and_required(engine):
    token = auth.issue_setup_token(engine)
    assert token
    with pytest.raises(auth.UserError):
        auth.create_first_owner(engine, "guess", "boss", "Boss", "b@x.org", "long-password")
    assert auth.count_users(engine) == 0
    auth.create_first_owner(engine, token, "boss", "Boss", "b@x.org", "long-password")
    assert auth.get_user(engine, "boss").role == "owner"
    assert auth.issue_setup_token(engine) is None
    with pytest.raises(auth.UserError):
        auth.create_first_owner(engine, token, "boss2", "B", "b@x.org", "long-password")


def test_cookie_key_is_generated_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv("BURNRATE_COOKIE_KEY", raising=False)
    path = tmp_path / "k"
    key = auth.cookie_key(path)
    assert len(key) >= 40 and auth.cookie_key(path) == key
    assert (path.stat().st_mode & 0o777) == 0o600
    assert auth.cookie_key(tmp_path / "other") != key


def _cli(db_url, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "analytics", *args, "--db", db_url],
                          cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60)


def test_users_cli(engine, db_url):
    add = _cli(db_url, "users", "add", "alice", "--role", "member", "--name", "Alice",
               "--password-stdin", stdin="alice-password\n")
    assert add.returncode == 0, add.stderr
    assert auth.authenticate(engine, "alice", "alice-password").ok
    listed = _cli(db_url, "users", "list")
    assert "alice\tmember\tAlice" in listed.stdout
    assert _cli(db_url, "users", "set-role", "alice", "reader").returncode == 0
    assert auth.get_user(engine, "alice").role == "reader"
    assert _cli(db_url, "users", "set-projects", "alice", "p1,p2").returncode == 0
    assert auth.get_user(engine, "alice").projects == ("p1", "p2")
    bad = _cli(db_url, "users", "add", "bob", "--role", "member", "--password-stdin",
               stdin="short\n")
    assert bad.returncode == 1 and "at least 8 characters" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert _cli(db_url, "users", "remove", "alice").returncode == 0
    assert auth.get_user(engine, "alice") is None
