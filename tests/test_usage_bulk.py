"""The bulk usage path: the fast columnar reader stores exactly what the row reader would,
declines (and lets the row reader decide) whenever it is unsure, and a re-import keeps the
rows it would only rewrite. (Issues: store and importers; scale.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from analytics.access import SYSTEM
from analytics.importers import parse_sources
from analytics.importers.base import FastPathDeclined
from analytics.ingest import import_parsed, import_sources
from analytics.queries import spend
from tests.test_import_errors import DAY, USAGE_HEADER, csv_text, empty_bucket_row, usage_row

_STORED = ("provider, kind, day, bucket_start, bucket_end, project_id, user_id, api_key_id, "
           "model, batch, service_tier, input_tokens, cached_input_tokens, output_tokens, "
           "requests, key_hash")


def _rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(tuple(map(str, row)) for row in
                      conn.execute(text(f"SELECT {_STORED} FROM usage")).all())


def _export(eol: str = "\n", bom: bool = False) -> bytes:
    """Days of usage with the quirks a real export has: empty buckets, every batch spelling,
    counts with and without '.0', a quoted model, users that are blank."""
    rows = []
    for n in range(6):
        day = DAY + timedelta(days=n)
        rows.append(empty_bucket_row(day - timedelta(days=10)))
        for k, batch in enumerate(("True", "False", "TRUE", "FALSE", "")):
            rows.append(usage_row(day, project=f"proj_{k % 2}", key=f"key_{k}",
                                  user="" if k == 3 else f"user_{k}", batch=batch,
                                  model="gpt-4o, \"mini\"" if k == 4 else "gpt-5-2025-08-07",
                                  input_tokens=f"{1000 + n * 10 + k}" + (".0" if k % 2 else ""),
                                  requests=str(k + 1)))
    body = csv_text(USAGE_HEADER, rows, eol)
    return (b"\xef\xbb\xbf" if bom else b"") + body.encode()


@pytest.mark.parametrize(("eol", "bom"), [("\n", False), ("\r\n", True)])
def test_the_fast_reader_stores_what_the_row_reader_stores(engine: Engine, eol: str,
                                                           bom: bool) -> None:
    content = _export(eol, bom)
    [fast] = parse_sources([("usage.csv", content)])
    assert sum(batch.num_rows for batch, _ in fast.columnar()) == 30, "not declined"
    [first] = import_sources(engine, [("usage.csv", content)])
    assert (first.ok, first.rows, first.new, first.first_day) == (True, 30, 30, "2026-08-22")
    stored = _rows(engine)

    [slow] = parse_sources([("usage.csv", content)])
    slow.columnar = None
    again = import_parsed(engine, slow, "another hash: not a re-run", "tester")
    # The row reader found every row stored already, identical: same key hash, same counts.
    assert (again.rows, again.new, again.replaced) == (30, 0, 30)
    assert _rows(engine) == stored
    assert again.first_day == first.first_day and again.last_day == first.last_day


@pytest.mark.parametrize("second", [
    csv_text(usage_row(key="key_b", input_tokens=" 1000.0"), []),  # padded: stripped
    csv_text(usage_row(key="key_b", input_tokens="1_000"), []),  # Python reads it, Arrow not
    "   \n" + csv_text(usage_row(key="key_b"), []),  # a line of spaces: skipped
])
def test_on_an_odd_but_valid_spelling_the_fast_reader_declines_and_the_import_succeeds(
        engine: Engine, second: str) -> None:
    content = (csv_text(USAGE_HEADER, [usage_row()]) + second).encode()
    [parsed] = parse_sources([("odd.csv", content)])
    with pytest.raises(FastPathDeclined):
        list(parsed.columnar())
    [result] = import_sources(engine, [("odd.csv", content)])
    assert (result.ok, result.rows, result.new) == (True, 2, 2)
    assert spend(engine, SYSTEM, "day")["input_tokens"].tolist() == [2000]


def test_a_repeat_across_fast_batches_is_refused_with_both_lines(engine: Engine) -> None:
    rows = [usage_row(DAY + timedelta(days=n % 3), key=f"key_{n}") for n in range(50)]
    rows.append(usage_row(DAY + timedelta(days=1), key="key_7"))  # line 52 repeats line 9
    content = csv_text(USAGE_HEADER, rows).encode()
    [result] = import_sources(engine, [("twice.csv", content)])
    assert not result.ok
    assert result.error.startswith("twice.csv, line 52: repeats the row of line 9")
    assert _rows(engine) == []


def test_a_changed_reimport_keeps_identical_rows_and_replaces_the_rest(engine: Engine) -> None:
    rows = [usage_row(DAY + timedelta(days=n // 4), key=f"key_{n % 4}") for n in range(12)]
    original = csv_text(USAGE_HEADER, rows).encode()
    rows[5] = usage_row(DAY + timedelta(days=1), key="key_1", input_tokens="7777.0")
    rows.append(usage_row(DAY + timedelta(days=2), key="key_new"))
    changed = csv_text(USAGE_HEADER, rows).encode()
    other = csv_text(USAGE_HEADER, [usage_row(DAY + timedelta(days=40))]).encode()

    import_sources(engine, [("a.csv", original), ("b.csv", other)])
    with engine.connect() as conn:
        ids_before = dict(conn.execute(text(
            "SELECT api_key_id || day, id FROM usage WHERE day < '2026-10-01'")).all())
    [result] = import_sources(engine, [("a2.csv", changed)])
    assert (result.rows, result.new, result.replaced) == (13, 1, 12)
    with engine.connect() as conn:
        after = dict(conn.execute(text(
            "SELECT api_key_id || day, id FROM usage WHERE day < '2026-10-01'")).all())
        owners = conn.execute(text("SELECT DISTINCT import_id FROM usage "
                                   "WHERE day < '2026-10-01'")).scalars().all()
    assert owners == [result.import_id], "kept rows belong to the newest import"
    unchanged = [k for k in ids_before if k != "key_1" + str(DAY + timedelta(days=1))]
    assert all(after[k] == ids_before[k] for k in unchanged), "identical rows were kept"
    total = spend(engine, SYSTEM, "day")["input_tokens"].sum()
    assert total == 11 * 1000 + 7777 + 1000 + 1000  # the other file's day is untouched



def test_a_batch_written_in_several_statements_stores_every_row_once(engine: Engine) -> None:
    """Rows go in many to a statement, in (day, project) order: none lost at a statement's
    edge or in the short last statement, none doubled, each still with its own counts."""
    count = 2 * 256 + 37
    rows = [usage_row(DAY + timedelta(days=n % 5), project=f"proj_{n % 3}", key=f"key_{n}",
                      input_tokens=f"{n}.0") for n in range(count)]
    [result] = import_sources(engine, [("many.csv", csv_text(USAGE_HEADER, rows).encode())])
    assert (result.ok, result.rows, result.new) == (True, count, count)
    with engine.connect() as conn:
        stored = {(key, str(day), project, tokens) for key, day, project, tokens in
                  conn.execute(text("SELECT api_key_id, day, project_id, input_tokens "
                                    "FROM usage")).all()}
    assert stored == {(f"key_{n}", str(DAY + timedelta(days=n % 5)), f"proj_{n % 3}", n)
                      for n in range(count)}
