"""Users, passwords, login throttling, the login cookie and the first-run setup token.

Users live in the store so that the app, the CLI and every server of a team see the same
people and roles. Passwords are bcrypt hashes; a password longer than bcrypt's 72-byte limit
is first reduced with SHA-256, so two long passwords that share a prefix stay different.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import jwt
from sqlalchemy import Connection, Engine, Row, and_, delete, func, or_, select, update

from analytics import audit
from analytics.access import ROLES, Principal, Role
from analytics.store import AuditEntry, Setting, User, write_transaction

MAX_FAILURES = 5  # in a row, for one username
MAX_CLIENT_FAILURES = 20  # from one client, whatever the usernames
LOCKOUT = timedelta(minutes=15)  # the window failures are counted in
SETUP_TOKEN_KEY = "setup_token_sha256"
@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the username is unknown, so every login costs one bcrypt
    check; made on first use rather than at import (it takes a quarter of a second)."""
    return bcrypt.hashpw(b"burnrate-timing-equaliser", bcrypt.gensalt()).decode()


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
    with write_transaction(engine) as conn:
        if conn.execute(select(User.username).where(User.username == username)).first():
            raise UserError(f"A user named '{username}' exists already.")
        conn.execute(User.__table__.insert().values(
            username=username, name=name.strip() or username, email=email.strip(),
            password_hash=hashed, role=role,
            projects=",".join(projects) if projects is not None else None,
            created_at=_now()))
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
    with write_transaction(engine) as conn:
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
    with write_transaction(engine) as conn:
        before = conn.execute(select(User.projects).where(User.username == username)).first()
        if before is None:
            raise UserError(f"No user named '{username}'.")
        conn.execute(update(User).where(User.username == username).values(
            projects=",".join(projects) if projects is not None else None))
        audit.record(conn, actor, "user.projects", username, {"projects": before[0]},
                     {"projects": projects})


def remove_user(engine: Engine, username: str, actor: str = "system") -> None:
    with write_transaction(engine) as conn:
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
LOCAL_CLIENT = "local"


def _printable(text: str, limit: int) -> str:
    """Typed text as it may be recorded: control characters replaced, length bounded (a
    failed login's username is attacker's text that the audit log and terminal will show)."""
    return "".join(c if c.isprintable() else "?" for c in text.strip()[:limit])


def client_of(ip_address: str | None, forwarded_for: str | None = None,
              behind_proxy: bool = False) -> str:
    """Who a login comes from, for per-client throttling.

    The connection's address; behind a reverse proxy (``behind_proxy``) that address is the
    proxy's, so the last hop of ``X-Forwarded-For`` (the one the proxy itself appended) is
    used instead. Without a proxy the header is the client's own words and is ignored.

    >>> client_of(None), client_of("10.0.0.2", "6.6.6.6", False)
    ('local', '10.0.0.2')
    >>> client_of("10.0.0.1", "6.6.6.6, 203.0.113.9", True)
    '203.0.113.9'
    """
    if behind_proxy and forwarded_for:
        hop = forwarded_for.split(",")[-1].strip()
        if hop:
            return _printable(hop, 64)
    return _printable(ip_address, 64) if ip_address else LOCAL_CLIENT


@dataclass(frozen=True)
class _Attempts:
    """Recent failed logins (times, oldest first): by this client, and for this username
    since its last successful login or password reset, with the clients they came from."""

    by_client: list[datetime]
    for_user: list[tuple[datetime, str]]

    def binding(self, client: str, owner: bool) -> list[datetime]:
        """The failures that lock this username for this client. An Owner's are only those
        from this client, so that nobody else's guessing can lock an Owner out."""
        return [at for at, c in self.for_user if not owner or c == client]


def _attempts(conn: Connection, username: str, client: str, now: datetime) -> _Attempts:
    log = AuditEntry.__table__
    since = now - LOCKOUT
    reset = conn.execute(select(func.max(log.c.at)).where(
        log.c.at <= now, or_(and_(log.c.action == "login", log.c.username == username),
                             and_(log.c.action == "user.password", log.c.target == username)))
    ).scalar()
    failed = (log.c.action == "login.failed", log.c.at > since, log.c.at <= now)
    by_client = conn.execute(select(log.c.at).where(*failed, log.c.target == client)
                             .order_by(log.c.at)).scalars().all()
    for_user = conn.execute(select(log.c.at, log.c.target).where(
        *failed, log.c.username == username, log.c.at > (reset or since))
        .order_by(log.c.at)).all()
    return _Attempts(list(by_client), [(at, c) for at, c in for_user])


def _wait(failures: list[datetime], limit: int, now: datetime) -> int:
    """Minutes until the oldest of the last ``limit`` failures leaves the window."""
    lifted = failures[-limit] + LOCKOUT
    return max(1, int((lifted - now).total_seconds() // 60) + 1)


def _locked_message(minutes: int) -> str:
    return (f"Too many failed attempts for this username. Try again in {minutes} minutes, "
            "or ask an Owner to reset the password.")


def authenticate(engine: Engine, username: str, password: str, client: str = LOCAL_CLIENT,
                 now: datetime | None = None) -> LoginResult:
    """Check a login, with throttling that expires on its own and never reveals a username.

    Every attempt is in the audit log (shared by every server of a team). A client with 20
    failures in 15 minutes is refused until they age out; a username with 5 failures in a row
    (within 15 minutes) likewise, whether or not it exists, with the same words; an Owner is
    refused only at the client that failed, so an attacker cannot lock the Owner out.
    Every path costs one bcrypt check, so timing tells nothing either.
    """
    now = now or _now()
    name, client = _printable(username, 64), _printable(client, 64) or LOCAL_CLIENT
    with engine.connect() as conn:
        user = conn.execute(select(User).where(User.username == name)).first()
    # The bcrypt check (a quarter of a second) is made before the write lock is taken, so
    # that a run of logins does not hold up imports and other writers.
    ok = verify_password(password, user.password_hash if user else _dummy_hash())
    with write_transaction(engine) as conn:
        owner = user is not None and user.role == "owner"
        seen = _attempts(conn, name, client, now)
        binding = seen.binding(client, owner)
        refusal = None
        if len(seen.by_client) >= MAX_CLIENT_FAILURES:
            refusal = ("Too many failed attempts from this address. Try again in "
                       f"{_wait(seen.by_client, MAX_CLIENT_FAILURES, now)} minutes.")
        elif len(binding) >= MAX_FAILURES:
            refusal = _locked_message(_wait(binding, MAX_FAILURES, now))
        if refusal:
            audit.record(conn, name, "login.refused", client, at=now)
            return LoginResult(False, refusal)
        if ok and user is not None:
            audit.record(conn, name, "login", client, at=now)
            return LoginResult(True, "", _info(user))
        audit.record(conn, name, "login.failed", client, at=now)
    binding.append(now)
    if len(binding) >= MAX_FAILURES:
        return LoginResult(False, _locked_message(_wait(binding, MAX_FAILURES, now)))
    return LoginResult(False, GENERIC_FAILURE)


def reset_password(engine: Engine, username: str, password: str,
                   actor: str = "system") -> None:
    hashed = hash_password(password)
    with write_transaction(engine) as conn:
        done = conn.execute(update(User).where(User.username == username).values(
            password_hash=hashed)).rowcount
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
    with write_transaction(engine) as conn:
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
    with write_transaction(engine) as conn:
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


COOKIE_NAME = "burnrate_auth"
COOKIE_DAYS = 7
_MAX_COOKIE = 4096


def cookie_user(engine: Engine, token: str | None, key: str,
                now: float | None = None) -> UserInfo | None:
    """The user a login cookie vouches for, or None.

    Only an HS256 signature made with ``key`` is accepted (so a cookie signed with any other
    key, or with ``alg: none``, is not); its ``exp_date`` must be a number still in the
    future, and the user must still exist. Anything else, garbage included, is None: the
    person simply sees the login form.
    """
    if not token or len(token) > _MAX_COOKIE:
        return None
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    username, expires = claims.get("username"), claims.get("exp_date")
    if not isinstance(username, str) or isinstance(expires, bool) or not isinstance(
            expires, int | float):
        return None
    if not expires > (now if now is not None else time.time()):
        return None
    return get_user(engine, username)
