"""API key inventory, notes (Members+, audited, scoped) and the rotation checklist."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest

from analytics import audit
from analytics.access import SYSTEM, AccessDenied, Principal
from analytics.cli import main
from analytics.keys import KeyNoteError, add_note, key_inventory, note_history, rotation_checklist
from tests.test_insights import END, STALE_LAST, Bucket, _at, _days, load

MEMBER = Principal("mark", "member", None)
READER = Principal("rita", "reader", None)
SCOPED = Principal("sam", "member", frozenset({"proj_b"}))
FIRST = END - timedelta(days=59)


@pytest.fixture
def store(engine, tmp_path):
    """Key A (proj_a) used every day; key OLD (proj_a) stopped 45 days before the end;
    key B (proj_b) used every day. gpt-4.1: 2 / 8 per 1M tokens."""
    rows = []
    for day in _days(FIRST, END):
        rows.append(Bucket(_at(day), 86_400, "proj_a", "key_a", "gpt-4.1-2025-04-14", 10,
                           1000, 0, 100))
        rows.append(Bucket(_at(day), 86_400, "proj_b", "key_b", "gpt-4.1-2025-04-14", 1, 1000,
                           0, 100))
        if day <= STALE_LAST:
            rows.append(Bucket(_at(day), 86_400, "proj_a", "key_old", "gpt-4.1-2025-04-14", 1,
                               1000, 0, 100))
    load(engine, tmp_path, [rows])
    return engine


def test_inventory_lists_every_key_with_recent_spend(store):
    inv = key_inventory(store, SYSTEM).set_index("api_key_id")
    assert set(inv.index) == {"key_a", "key_b", "key_old"}
    a = inv.loc["key_a"]
    # 30 days x 10 requests x (1,000 x 2 + 100 x 8) / 1M = 30 x 0.028 = 0.84
    assert a["spend_30d_usd"] == pytest.approx(0.84)
    assert a["requests_30d"] == 300
    assert (a["first_seen"], a["last_seen"], a["project"]) == (FIRST, END, "proj_a")
    old = inv.loc["key_old"]
    assert (old["last_seen"], old["days_idle"], old["requests_30d"]) == (STALE_LAST, 45, 0)
    assert bool(old["stale"]) and not bool(a["stale"])


def test_inventory_is_scoped(store):
    assert key_inventory(store, SCOPED)["api_key_id"].tolist() == ["key_b"]


def test_notes_are_written_by_members_and_audited(store):
    add_note(store, MEMBER, "key_a", owner="Ana", service="billing-api", note="prod")
    add_note(store, MEMBER, "key_a", owner="Ben", service="")
    row = key_inventory(store, SYSTEM).set_index("api_key_id").loc["key_a"]
    assert (row["owner"], row["service"], row["noted_by"]) == ("Ben", "", "mark")
    history = note_history(store, SYSTEM, "key_a")
    assert history["owner"].tolist() == ["Ben", "Ana"]
    entries = audit.entries(store, action="key.note")
    assert len(entries) == 2 and entries["username"].tolist() == ["mark", "mark"]
    assert json.loads(entries.iloc[0]["before"])["owner"] == "Ana"
    assert json.loads(entries.iloc[0]["after"])["owner"] == "Ben"
    assert pd.isna(entries.iloc[1]["before"])


def test_readers_cannot_write_notes(store):
    with pytest.raises(AccessDenied):
        add_note(store, READER, "key_a", owner="x")
    assert audit.entries(store, action="key.note").empty


def test_keys_outside_scope_look_unknown(store):
    with pytest.raises(KeyNoteError) as outside:
        add_note(store, SCOPED, "key_a", owner="x")
    with pytest.raises(KeyNoteError) as unknown:
        add_note(store, SCOPED, "key_nope", owner="x")
    assert str(outside.value).replace("key_a", "K") == str(unknown.value).replace("key_nope", "K")
    with pytest.raises(KeyNoteError):
        note_history(store, SCOPED, "key_a")


def test_an_empty_note_is_refused(store):
    with pytest.raises(KeyNoteError, match="needs an owner"):
        add_note(store, MEMBER, "key_a", owner="  ", service="", note="")


def test_rotation_checklist_names_every_service_ever_noted(store):
    add_note(store, MEMBER, "key_a", owner="Ana", service="billing-api")
    add_note(store, MEMBER, "key_a", owner="Ana", service="nightly-export")
    steps = rotation_checklist(store, SYSTEM, "key_a")
    actions = steps["action"].tolist()
    assert actions[0] == "Create the new key"
    assert "Update billing-api to the new key" in actions
    assert "Update nightly-export to the new key" in actions
    assert "Check requests from user-test" in actions
    assert actions[-1] == "Delete the old key in the provider's console"
    assert steps["step"].tolist() == list(range(1, len(steps) + 1))


def test_checklist_asks_to_find_services_when_none_noted(store):
    actions = rotation_checklist(store, SYSTEM, "key_old")["action"].tolist()
    assert "Find out which services use this key" in actions
    assert not any(a.startswith("Check requests from") for a in actions)  # idle 45 days


def test_cli_note_list_and_checklist(store, capsys):
    url = str(store.url)
    assert main(["keys", "note", "key_b", "--owner", "Cho", "--service", "etl", "--db", url,
                 "--user", "ops"]) == 0
    assert main(["keys", "list", "--stale", "--format", "json", "--db", url]) == 0
    out = capsys.readouterr().out
    assert [k["api_key_id"] for k in json.loads(out[out.index("["):])] == ["key_old"]
    assert main(["keys", "list", "--format", "csv", "--db", url]) == 0
    csv_out = capsys.readouterr().out
    assert "key_b" in csv_out and "Cho" in csv_out
    assert note_history(store, SYSTEM, "key_b")["written_by"].tolist() == ["ops"]
    assert main(["keys", "checklist", "key_b", "--db", url]) == 0
    assert "Update etl to the new key" in capsys.readouterr().out
    assert main(["keys", "note", "key_zz", "--owner", "x", "--db", url]) == 1
    assert "No API key 'key_zz'" in capsys.readouterr().err


def test_stale_is_judged_against_the_newest_data(store):
    inv = key_inventory(store, SYSTEM, as_of=END + timedelta(days=40)).set_index("api_key_id")
    assert inv.loc["key_a", "days_idle"] == 40 and bool(inv.loc["key_a", "stale"])
    early = key_inventory(store, SYSTEM, as_of=STALE_LAST + timedelta(days=10))
    old = early.set_index("api_key_id").loc["key_old"]
    assert (old["days_idle"], bool(old["stale"])) == (10, False)


def test_inventory_sees_each_import_at_once(store, tmp_path):
    """The all-time first and last days are kept between visits until the data changes."""
    assert "key_new" not in set(key_inventory(store, SYSTEM)["api_key_id"])
    with pytest.raises(KeyNoteError):
        add_note(store, MEMBER, "key_new", owner="Nia")
    (tmp_path / "more").mkdir()
    load(store, tmp_path / "more", [[Bucket(_at(END), 86_400, "proj_c", "key_new",
                                           "gpt-4.1-2025-04-14", 5, 1000, 0, 100)]])
    inv = key_inventory(store, SYSTEM).set_index("api_key_id")
    new = inv.loc["key_new"]
    # 5 requests x (1,000 x 2 + 100 x 8) / 1M = 0.014
    assert (new["first_seen"], new["last_seen"], new["requests_30d"]) == (END, END, 5)
    assert new["spend_30d_usd"] == pytest.approx(0.014)
    assert inv.loc["key_a", "requests_30d"] == 300  # the others are read afresh, unchanged
    add_note(store, MEMBER, "key_new", owner="Nia")  # now a known key
    assert note_history(store, SYSTEM, "key_new")["owner"].tolist() == ["Nia"]
