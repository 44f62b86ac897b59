"""API key inventory: every key seen in usage, how much it spent lately, who owns it, and
what to update before it is deleted.

Providers' exports name keys by id only; who owns a key and which service runs on it lives
in people's heads. Members note it here (``key_notes``, newest note wins, every note audited),
so a rotation becomes a checklist instead of an outage.

"Stale" is judged against the newest day of data, not the calendar: exports arrive late, and
a store last imported a month ago would otherwise call every key unused.

The first and last day of every key cover all of time: no index of ``usage`` serves that
grouping (an index would cost every import), so it is read in one pass and kept until the
data changes (``memo``), as is the last 30 days' list-price spend.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, func, select

from analytics import audit
from analytics.access import Principal
from analytics.grouping import group_sum
from analytics.memo import per_data_version, replayed
from analytics.price_store import current_book
from analytics.pricing import PriceBook, estimate_cost
from analytics.queries import data_range, projects, rows_frame, usage_for_pricing, visible_projects
from analytics.store import ApiKey, KeyNote, Usage, write_transaction

STALE_AFTER_DAYS = 30
RECENT_DAYS = 30
_TEXT_LIMIT = 256

INVENTORY_COLUMNS = [
    "provider", "api_key_id", "name", "project_id", "project", "first_seen", "last_seen",
    "days_idle", "requests_30d", "spend_30d_usd", "owner", "service", "note", "noted_by",
    "noted_at", "stale",
]


class KeyNoteError(ValueError):
    """A key note that cannot be saved (unknown key, nothing to say, too long)."""


@per_data_version
def _key_usage(engine: Engine, principal: Principal) -> pd.DataFrame:
    """First and last day each (provider, key, project) appears in usage, within scope."""
    usage = Usage.__table__
    projects_seen = visible_projects(engine, principal, None)
    query = (select(usage.c.provider, usage.c.api_key_id, usage.c.project_id,
                    func.min(usage.c.day).label("first_seen"),
                    func.max(usage.c.day).label("last_seen"))
             .where(usage.c.api_key_id != "")
             .group_by(usage.c.provider, usage.c.api_key_id, usage.c.project_id))
    if projects_seen is not None:
        query = query.where(usage.c.project_id.in_(projects_seen))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = rows_frame(rows, ["provider", "api_key_id", "project_id", "first_seen",
                                        "last_seen"])
    for column in ("first_seen", "last_seen"):
        frame[column] = frame[column].map(_as_date)
    return frame


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def latest_notes(engine: Engine) -> pd.DataFrame:
    """The newest note of every key (callers keep only the keys they may see)."""
    notes = KeyNote.__table__
    newest = (select(func.max(notes.c.id).label("id"))
              .group_by(notes.c.provider, notes.c.api_key_id).subquery())
    query = select(notes.c.provider, notes.c.api_key_id, notes.c.owner, notes.c.service,
                   notes.c.note, notes.c.written_by.label("noted_by"),
                   notes.c.written_at.label("noted_at")).where(notes.c.id.in_(select(newest.c.id)))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return rows_frame(rows, ["provider", "api_key_id", "owner", "service", "note",
                                       "noted_by", "noted_at"])


@per_data_version
def recent_key_spend(engine: Engine, principal: Principal, start: date, end: date,
                     book: PriceBook) -> pd.DataFrame:
    """Requests and list-price dollars per (provider, key, project) between start and end
    (unpriced usage adds nothing).

    Estimated: OpenAI's cost export has no key breakdown, so tokens x price book it is.
    """
    usage = usage_for_pricing(engine, principal, start, end, extra=["api_key_id"])
    if usage.empty:
        return pd.DataFrame(columns=["provider", "api_key_id", "project_id", "requests_30d",
                                     "spend_30d_usd"])
    priced = estimate_cost(usage, book)
    keys = ["provider", "api_key_id", "project_id"]
    requests = priced.groupby(keys)["requests"].sum().rename("requests_30d")
    spent = group_sum(priced, keys, "estimated_cost_usd").rename("spend_30d_usd").fillna(0.0)
    return pd.concat([requests, spent], axis=1).reset_index()


@replayed
def key_inventory(engine: Engine, principal: Principal, as_of: date | None = None,
                  book: PriceBook | None = None) -> pd.DataFrame:
    """Every key the principal may see, newest activity first, with its latest note.

    ``as_of`` (default: the newest day of data) anchors "last 30 days" and ``stale`` (no
    request for ``STALE_AFTER_DAYS`` days or more). The parts are kept per data version; the
    notes are read on every call. A user's call is remembered (``memo.replayed``), so after
    an import the refresh prepares the new 30 days, not the window the old data ended on.
    """
    seen = _key_usage(engine, principal)
    if seen.empty:
        return pd.DataFrame(columns=INVENTORY_COLUMNS)
    as_of = as_of or data_range(engine, principal)[1] or seen["last_seen"].max()
    recent = recent_key_spend(engine, principal, as_of - timedelta(days=RECENT_DAYS - 1), as_of,
                              book or current_book(engine))
    frame = (seen.merge(recent, on=["provider", "api_key_id", "project_id"], how="left")
             .merge(latest_notes(engine), on=["provider", "api_key_id"], how="left"))
    frame["requests_30d"] = frame["requests_30d"].fillna(0).astype("int64")
    frame["spend_30d_usd"] = frame["spend_30d_usd"].fillna(0.0).astype(float)
    for column in ("owner", "service", "note", "noted_by"):
        frame[column] = frame[column].fillna("").astype(str)
    frame["days_idle"] = [(as_of - d).days for d in frame["last_seen"]]
    frame["stale"] = frame["days_idle"] >= STALE_AFTER_DAYS
    key_names = _key_names(engine)
    frame["name"] = [key_names.get(k, "") for k in frame["api_key_id"]]
    names = project_labels(engine, principal, "name")
    frame["project"] = [names.get(p, p) for p in frame["project_id"]]
    frame = frame.sort_values(["last_seen", "spend_30d_usd"], ascending=[False, False])
    return frame[INVENTORY_COLUMNS].reset_index(drop=True)


def project_labels(engine: Engine, principal: Principal, column: str) -> dict[str, str]:
    """project_id -> its ``name`` or ``environment``, for the projects that have one."""
    frame = projects(engine, principal)
    return {pid: value for pid, value in zip(frame["project_id"], frame[column], strict=True)
            if isinstance(value, str) and value}


def _key_names(engine: Engine) -> dict[str, str]:
    table = ApiKey.__table__
    with engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(select(table.c.api_key_id, table.c.name))
                if r[1]}


def _require_visible_key(engine: Engine, principal: Principal, provider: str,
                         api_key_id: str) -> None:
    """Refuse a key outside the principal's projects with the words used for an unknown one,
    so key ids cannot be probed. (Looked up in the kept key list: ``usage`` has no index
    on keys, and a key first seen lately sits at the end of a full scan.)"""
    seen = _key_usage(engine, principal)
    found = ((seen["provider"] == provider) & (seen["api_key_id"] == api_key_id)).any()
    if not api_key_id or not found:
        raise KeyNoteError(f"No API key '{api_key_id}' of {provider} is visible to "
                           f"{principal.username}.")


def add_note(engine: Engine, principal: Principal, api_key_id: str, owner: str = "",
             service: str = "", note: str = "", provider: str = "openai") -> None:
    """Record who owns a key and which service runs on it (Members and Owners; audited).

    Notes are appended, never edited, so the history of who said what stays readable.
    """
    principal.require("write notes on API keys")
    api_key_id, provider = api_key_id.strip(), provider.strip().lower()
    after = {"owner": owner.strip(), "service": service.strip(), "note": note.strip()}
    if not any(after.values()):
        raise KeyNoteError("A key note needs an owner, a service or some text.")
    for field in ("owner", "service"):
        if len(after[field]) > _TEXT_LIMIT:
            raise KeyNoteError(f"The {field} is {len(after[field])} characters long; at most "
                               f"{_TEXT_LIMIT} fit.")
    _require_visible_key(engine, principal, provider, api_key_id)
    table = KeyNote.__table__
    with write_transaction(engine) as conn:
        previous = conn.execute(
            select(table.c.owner, table.c.service, table.c.note)
            .where(table.c.provider == provider, table.c.api_key_id == api_key_id)
            .order_by(table.c.id.desc()).limit(1)).first()
        conn.execute(table.insert().values(
            provider=provider, api_key_id=api_key_id, written_by=principal.username,
            written_at=datetime.now(UTC).replace(tzinfo=None), **after))
        audit.record(conn, principal.username, "key.note", f"{provider}:{api_key_id}",
                     dict(previous._mapping) if previous else None, after)


def note_history(engine: Engine, principal: Principal, api_key_id: str,
                 provider: str = "openai") -> pd.DataFrame:
    """Every note on a key, newest first."""
    _require_visible_key(engine, principal, provider, api_key_id)
    table = KeyNote.__table__
    query = (select(table.c.owner, table.c.service, table.c.note, table.c.written_by,
                    table.c.written_at)
             .where(table.c.provider == provider, table.c.api_key_id == api_key_id)
             .order_by(table.c.id.desc()))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return rows_frame(rows, ["owner", "service", "note", "written_by", "written_at"])


def _recent_users(engine: Engine, principal: Principal, provider: str, api_key_id: str,
                  start: date) -> pd.DataFrame:
    usage = Usage.__table__
    query = (select(usage.c.user_id, func.max(usage.c.day).label("last_day"),
                    func.sum(usage.c.requests).label("requests"))
             .where(usage.c.provider == provider, usage.c.api_key_id == api_key_id,
                    usage.c.day >= start, usage.c.user_id != "")
             .group_by(usage.c.user_id).order_by(usage.c.user_id))
    scope = visible_projects(engine, principal, None)
    if scope is not None:
        query = query.where(usage.c.project_id.in_(scope))
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=["user_id", "last_day", "requests"])


def rotation_checklist(engine: Engine, principal: Principal, api_key_id: str,
                       provider: str = "openai", as_of: date | None = None) -> pd.DataFrame:
    """The steps to rotate a key without breaking a service: step, action, detail.

    Every service ever noted against the key is listed (an older note may name a service the
    newest one forgot), then the users seen on it lately, then the watch-and-delete steps.
    """
    history = note_history(engine, principal, api_key_id, provider)
    inventory = key_inventory(engine, principal, as_of)
    mine = inventory[(inventory["api_key_id"] == api_key_id)
                     & (inventory["provider"] == provider)]
    last_seen = max(mine["last_seen"])
    as_of = as_of or data_range(engine, principal)[1] or last_seen
    steps: list[tuple[str, str]] = [("Create the new key",
                                     f"In the same project ({', '.join(mine['project'])}).")]
    services = history[history["service"] != ""].drop_duplicates(["service", "owner"])
    if services.empty:
        steps.append(("Find out which services use this key",
                      "No service is noted against it: ask around, then add a note here."))
    for row in services.itertuples():
        owner = f"owner {row.owner}" if row.owner else "no owner noted"
        steps.append((f"Update {row.service} to the new key",
                      f"{owner}; noted by {row.written_by} on {row.written_at:%Y-%m-%d}"))
    users = _recent_users(engine, principal, provider, api_key_id,
                          as_of - timedelta(days=RECENT_DAYS - 1))
    for row in users.itertuples():
        steps.append((f"Check requests from {row.user_id}",
                      f"{int(row.requests):,} requests in the last {RECENT_DAYS} days, the last "
                      f"on {_as_date(row.last_day):%Y-%m-%d}"))
    steps.append(("Watch the old key go quiet",
                  f"Last seen {last_seen:%Y-%m-%d}; after the switch its requests should fall "
                  "to zero in the next import."))
    steps.append(("Delete the old key in the provider's console",
                  "Only once it has shown no requests for a few days."))
    return pd.DataFrame([(i, a, d) for i, (a, d) in enumerate(steps, 1)],
                        columns=["step", "action", "detail"])
