"""Users, passwords, login throttling and the first-run setup token.

Users live in the store so that the app, the CLI and every server of a team see the same
people and roles. Passwords are bcrypt hashes; a password longer than bcrypt's 72-byte limit
is first reduced with SHA-256, so two long passwords that share a prefix stay different.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
from sqlalchemy import Engine, Row, delete, func, select, update

from analytics import audit
from analytics.access import ROLES, Principal, Role
from analytics.store import Setting, User

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SETUP_TOKEN_KEY = "setup_token_sha256"
_DUMMY_HASH = bcrypt.hashpw(b"burnrate-timing-equaliser", bcrypt.gensalt()).decode()


class UserError(ValueError):
    """A user-management request that cannot be done, in plain words."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _prepare(password: str) -> bytes:
    raw = password.encode("utf-8")
    if len(raw) > 72:
        raw = base64.b64encode(hashlib.sha256(raw).digest())
    return raw


def hash_password(password: str) -> str:
    """A bcrypt hash for storing; refuses passwords too short to be worth protecting."""
    if len(password) < 8:
        raise UserError("A password needs at least 8 characters.")
    return bcrypt.hashpw(_prepare(password), bcrypt.gensalt()).decode()


def verify_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prepare(password), hashed.encode())
    except ValueError:
        return False


@dataclass(frozen=True)
class UserInfo:
    username: str
    name: str
    email: str
    role: Role
    projects: tuple[str, ...] | None

    def principal(self) -> Principal:
        scope = frozenset(self.projects) if self.projects is not None else None
        return Principal(self.username, self.role, scope)


def _info(row: Row[Any]) -> UserInfo:
    projects = tuple(p for p in row.projects.split(",") if p) if row.projects is not None else None
    return UserInfo(row.username, row.name, row.email, row.role, projects)  # type: ignore[arg-type]


def _check_role(role: str) -> Role:
    role = role.lower().strip()
    if role not in ROLES:
        raise UserError(f"Unknown role '{role}'. Choose owner, member or reader.")
    return role  # type: ignore[return-value]


def add_user(engine: Engine, username: str, name: str, email: str, password: str, role: str,
             projects: list[str] | None = None, actor: str = "system") -> UserInfo:
    """Create a user; ``projects`` limits what they see (None: every project)."""
    username = username.strip()
    if not username or len(username) > 64 or not username.replace("_", "").replace(
            ".", "").replace("-", "").replace("@", "").isalnum():
        raise UserError("A username is 1-64 letters, digits, '.', '-', '_' or '@'.")
    role = _check_role(role)
    hashed = hash_password(password)
    with engine.begin() as conn:
        if conn.execute(select(User.username).where(User.username == username)).first():
            raise UserError(f"A user named '{username}' exists already.")
        conn.execute(User.__table__.insert().values(
            username=username, name=name.strip() or username, email=email.strip(),
            password_hash=hashed, role=role,
            projects=",".join(projects) if projects is not None else None,
            failed_logins=0, locked_until=None, created_at=_now()))
        audit.record(conn, actor, "user.add", username, None,
                     {"role": role, "email": email.strip(), "projects": projects})
    return UserInfo(username, name.strip() or username, email.strip(), role,
                    tuple(projects) if projects is not None else None)


def get_user(engine: Engine, username: str) -> UserInfo | None:
    with engine.connect() as conn:
        row = conn.execute(select(User).where(User.username == username)).first()
    return _info(row) if row else None


def list_users(engine: Engine) -> list[UserInfo]:
    with engine.connect() as conn:
        rows = conn.execute(select(User).order_by(User.username)).all()
    return [_info(r) for r in rows]


def count_users(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(User)).scalar_one()


def _owners(conn, excluding: str) -> int:  # noqa: ANN001 - a Connection
    return conn.execute(select(func.count()).select_from(User).where(
        User.role == "owner", User.username != excluding)).scalar_one()


def set_role(engine: Engine, username: str, role: str, actor: str = "system") -> None:
    """Change a role; the last Owner cannot be demoted (nobody could manage users then)."""
    role = _check_role(role)
    with engine.begin() as conn:
        current = conn.execute(select(User.role).where(User.username == username)).scalar()
        if current is None:
            raise UserError(f"No user named '{username}'.")
        if current == "owner" and role != "owner" and _owners(conn, username) == 0:
            raise UserError(f"'{username}' is the last Owner; make someone else Owner first.")
        conn.execute(update(User).where(User.username == username).values(role=role))
        audit.record(conn, actor, "user.role", username, {"role": current}, {"role": role})


def set_projects(engine: Engine, username: str, projects: list[str] | None,
                 actor: str = "system") -> None:
    """Limit a user to some projects (None: all of them)."""
    with engine.begin() as conn:
        before = conn.execute(select(User.projects).where(User.username == username)).first()
        if before is None:
            raise UserError(f"No user named '{username}'.")
        conn.execute(update(User).where(User.username == username).values(
            projects=",".join(projects) if projects is not None else None))
        audit.record(conn, actor, "user.projects", username, {"projects": before[0]},
                     {"projects": projects})


def remove_user(engine: Engine, username: str, actor: str = "system") -> None:
    with engine.begin() as conn:
        current = conn.execute(select(User.role).where(User.username == username)).scalar()
        if current is None:
            raise UserError(f"No user named '{username}'.")
        if current == "owner" and _owners(conn, username) == 0:
            raise UserError(f"'{username}' is the last Owner and cannot be removed.")
        conn.execute(delete(User).where(User.username == username))
        audit.record(conn, actor, "user.remove", username, {"role": current}, None)


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    message: str
    user: UserInfo | None = None


GENERIC_FAILURE = "Wrong username or password."


def authenticate(engine: Engine, username: str, password: str,
                 now: datetime | None = None) -> LoginResult:
    """Check a login, counting failures: five in a row lock the username for 15 minutes.

    An unknown username costs the same bcrypt work and gets the same words as a wrong
    password, so neither timing nor messages reveal which usernames exist.
    """
    now = now or _now()
    with engine.begin() as conn:
        row = conn.execute(select(User).where(User.username == username.strip())).first()
        user = row
        if user is None:
            verify_password(password, _DUMMY_HASH)
            audit.record(conn, username.strip()[:64], "login.failed", "unknown username")
            return LoginResult(False, GENERIC_FAILURE)
        if user.locked_until is not None and user.locked_until > now:
            verify_password(password, _DUMMY_HASH)
            minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
            audit.record(conn, user.username, "login.failed", "locked")
            return LoginResult(False, f"Too many failed attempts for this username. Try again "
                               f"in {minutes} minutes, or ask an Owner to reset the password.")
        if verify_password(password, user.password_hash):
            conn.execute(update(User).where(User.username == user.username).values(
                failed_logins=0, locked_until=None))
            audit.record(conn, user.username, "login", "ok")
            return LoginResult(True, "", _info(user))
        failures = (user.failed_logins or 0) + 1
        locked = now + LOCKOUT if failures >= MAX_FAILURES else None
        conn.execute(update(User).where(User.username == user.username).values(
            failed_logins=0 if locked else failures, locked_until=locked))
        audit.record(conn, user.username, "login.failed",
                     "locked for 15 minutes" if locked else f"failure {failures}")
    if locked:
        return LoginResult(False, "Too many failed attempts for this username. Try again in "
                           "15 minutes, or ask an Owner to reset the password.")
    return LoginResult(False, GENERIC_FAILURE)


def reset_password(engine: Engine, username: str, password: str,
                   actor: str = "system") -> None:
    hashed = hash_password(password)
    with engine.begin() as conn:
        done = conn.execute(update(User).where(User.username == username).values(
            password_hash=hashed, failed_logins=0, locked_until=None)).rowcount
        if not done:
            raise UserError(f"No user named '{username}'.")
        audit.record(conn, actor, "user.password", username)


def credentials(engine: Engine) -> dict:
    """The user table in streamlit-authenticator's shape (hashes only, ``auto_hash=False``)."""
    return {"usernames": {
        u.username: {"name": u.name, "email": u.email, "roles": [u.role],
                     "password": h} for u, h in _with_hashes(engine)}}


def _with_hashes(engine: Engine) -> list[tuple[UserInfo, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(User).order_by(User.username)).all()
    return [(_info(r), r.password_hash) for r in rows]


def issue_setup_token(engine: Engine) -> str | None:
    """A one-time token for creating the first Owner, or None once any user exists.

    Only its hash is stored; the caller prints the token where the server was started, the
    way Jupyter does, so a stranger who reaches a fresh server cannot claim it.
    """
    if count_users(engine):
        return None
    token = secrets.token_urlsafe(24)
    digest = hashlib.sha256(token.encode()).hexdigest()
    with engine.begin() as conn:
        conn.execute(delete(Setting).where(Setting.key == SETUP_TOKEN_KEY))
        conn.execute(Setting.__table__.insert().values(key=SETUP_TOKEN_KEY, value=digest))
    return token


def create_first_owner(engine: Engine, token: str, username: str, name: str, email: str,
                       password: str) -> UserInfo:
    """Create the first Owner if ``token`` is the one printed at start-up; then burn it."""
    with engine.connect() as conn:
        stored = conn.execute(select(Setting.value).where(
            Setting.key == SETUP_TOKEN_KEY)).scalar()
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    if count_users(engine) or stored is None or not hmac.compare_digest(stored, digest):
        raise UserError("That setup token is not valid. Use the token printed in the console "
                        "where the app was started.")
    user = add_user(engine, username, name, email, password, "owner", actor="setup")
    with engine.begin() as conn:
        conn.execute(delete(Setting).where(Setting.key == SETUP_TOKEN_KEY))
    return user


def cookie_key(path: str | os.PathLike[str] | None = None) -> str:
    """The login cookie's signing key: ``BURNRATE_COOKIE_KEY``, else a key generated on first
    run into a file only this user can read (``data/cookie_key`` by default; gitignored).

    Never a default: a key known from the source code would let anyone forge a login cookie.
    """
    env = os.environ.get("BURNRATE_COOKIE_KEY")
    if env:
        return env
    target = Path(path or os.environ.get("BURNRATE_COOKIE_KEY_FILE", "data/cookie_key"))
    if target.exists():
        return target.read_text().strip()
    target.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
