"""Every way an export file arrives broken is refused with a message that names the file, the
line and what to do, and leaves the store exactly as it was; every real quirk of the formats
is accepted. (Issue: store, importers and CLI.)

The small exports here are written by the builders below, which the other import tests share.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from analytics.access import SYSTEM
from analytics.demo import COST_HEADER_V2, USAGE_HEADER
from analytics.ingest import ImportResult, import_sources
from analytics.queries import import_history, spend, total_cost
from analytics.store import Cost, Usage
from tests.helpers import store_snapshot, write

# --- builders: small exports in the providers' formats ----------------------------------------

DAY = date(2026, 9, 1)
COST_HEADER_V1 = ["start_time", "end_time", "start_time_iso", "end_time_iso", "amount_value",
                  "amount_currency", "line_item", "project_id", "organization_id",
                  "organization_name"]


def epoch(day: date) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp())


def _times(day: date) -> list[str]:
    nxt = day + timedelta(days=1)
    return [str(epoch(day)), str(epoch(nxt)), datetime.combine(day, time(), UTC).isoformat(),
            datetime.combine(nxt, time(), UTC).isoformat()]


def usage_row(day: date = DAY, project: str = "proj_a", key: str = "key_a",
              user: str = "user_a", model: str = "gpt-5-2025-08-07", batch: str = "False",
              requests: str = "10.0", input_tokens: str = "1000.0", cached: str = "100.0",
              output: str = "50.0") -> list[str]:
    """One row of the usage dashboard export (USAGE_HEADER), counts written as floats."""
    return [*_times(day), project, requests, user, key, model, batch, "default", input_tokens,
            output, cached, "0.0", "0.0", output, cached, "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"]


def empty_bucket_row(day: date = DAY) -> list[str]:
    """A bucket without usage: only the four time columns are filled."""
    return [*_times(day), *[""] * (len(USAGE_HEADER) - 4)]


def cost_row(day: date = DAY, amount: str = "1.5000000000000000",
             line_item: str = "gpt-5-2025-08-07, input", project: str = "proj_a") -> list[str]:
    """One row of the 10-column cost export (grouped by project and line item)."""
    return [*_times(day), amount, "usd", line_item, project, "org-test", "Test Org"]


def cost_row_v2(day: date, amount: str, line_item: str, project: str, key: str, user: str,
                quantity: str = "1000") -> list[str]:
    """One row of the newer 17-column cost export (grouped by project, key and user)."""
    return [*_times(day), amount, "usd", line_item, project, project.upper(), "org-test",
            "Test Org", key, f"name of {key}", user, f"{user}@example.com", quantity, "tokens"]


def csv_line(row: list[str]) -> str:
    return csv_text(row, [])


def csv_text(header: list[str], rows: list[list[str]], eol: str = "\n") -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator=eol)
    out.writerow(header)
    out.writerows(rows)
    return buffer.getvalue()


def usage_csv(rows: list[list[str]], eol: str = "\n") -> bytes:
    return csv_text(USAGE_HEADER, rows, eol).encode()


def cost_csv(rows: list[list[str]], header: list[str] = COST_HEADER_V1) -> bytes:
    return csv_text(header, rows).encode()


def page(buckets: dict[date, list[dict]]) -> dict:
    """An Admin API page: one bucket per day, each holding its results."""
    return {"object": "page", "has_more": False, "next_page": None, "data": [
        {"object": "bucket", "start_time": epoch(d), "end_time": epoch(d + timedelta(days=1)),
         "results": results} for d, results in buckets.items()]}


def usage_result(input_tokens: object = 1000, project: str = "proj_a", key: str = "key_a",
                 user: str = "user_a", model: str = "gpt-5-2025-08-07", cached: object = 100,
                 output: object = 50, requests: object = 10, batch: object = False) -> dict:
    return {"object": "organization.usage.completions.result", "input_tokens": input_tokens,
            "input_cached_tokens": cached, "output_tokens": output,
            "num_model_requests": requests, "project_id": project, "user_id": user,
            "api_key_id": key, "model": model, "batch": batch, "service_tier": "default"}


def cost_result(value: object, line_item: str = "gpt-5-2025-08-07, input",
                project: str | None = "proj_a") -> dict:
    return {"object": "organization.costs.result", "amount": {"value": value, "currency": "usd"},
            "line_item": line_item, "project_id": project, "quantity": 1000,
            "quantity_unit": "tokens"}


def page_bytes(buckets: dict[date, list[dict]]) -> bytes:
    return json.dumps(page(buckets)).encode()


def import_one(engine: Engine, tmp: Path, name: str, content: bytes) -> ImportResult:
    [result] = import_sources(engine, [(name, write(tmp, name, content))])
    return result


def seed(engine: Engine, tmp: Path) -> None:
    """Some data already in the store, so 'unchanged' means more than 'still empty'."""
    results = import_sources(engine, [
        ("seed_usage.csv", write(tmp, "seed_usage.csv", usage_csv([
            usage_row(DAY), usage_row(DAY + timedelta(days=1), key="key_b")]))),
        ("seed_cost.csv", write(tmp, "seed_cost.csv", cost_csv([
            cost_row(DAY, "2.5000000000000000"),
            cost_row(DAY, "0.7500000000000000", "gpt-5-2025-08-07, output")]))),
    ])
    assert all(r.ok and r.new > 0 for r in results), results


# --- malformed inputs ---------------------------------------------------------------------------

_GOOD_USAGE = usage_csv([usage_row(DAY, key=f"key_{i}") for i in range(3)])
_GOOD_COST = cost_csv([cost_row(DAY, "1.25", f"gpt-5-2025-08-07, {t}")
                       for t in ("input", "output", "cached input")])
_LAST_USAGE_LINE = ",".join(usage_row(DAY, key="key_last"))
_SEP = "Download the export again from the provider"


def _xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def _usage_with(line3: list[str]) -> bytes:
    """A usage export whose third line (second data row) carries the fault."""
    return usage_csv([usage_row(DAY, key="key_ok"), line3, usage_row(DAY, key="key_after")])


_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
_NUL_LATE = (_GOOD_COST.decode() + "".join(
    csv_line(cost_row(DAY, "0.01", f"model-{i}, input")) for i in range(1200))
    + csv_line(cost_row(DAY, "0.01", "gpt-5, in\x00put"))).encode()
_MULTILINE_PAGE = b'{\n  "object": "page",\n  "data": [\n    {"start_time": 1788220800,,}\n  ]\n}\n'

MALFORMED = [
    pytest.param("cost_cp1252.csv", _GOOD_COST + csv_line(
        cost_row(DAY, line_item="gpt-4o, input")).replace("Test Org", "Caf\xe9").encode("cp1252")
        + _GOOD_COST.split(b"\n", 1)[1].replace(b"1.25", b"2.25"),
        ["cost_cp1252.csv, line 5:", "not UTF-8", "exactly as the provider exported it"],
        id="not-utf8-cp1252-row"),
    pytest.param("cut_mid_row.csv", _GOOD_USAGE + _LAST_USAGE_LINE[:70].encode(),
                 ["cut_mid_row.csv, line 5:", "truncated", "download it again"],
                 id="truncated-mid-row"),
    pytest.param("cut_in_quotes.csv", _GOOD_COST + b'1788220800,1788307200,2026-09-01T00:00:00'
                 b'+00:00,2026-09-02T00:00:00+00:00,1.5,usd,"gpt-5-2025-08-07, outp',
                 ["cut_in_quotes.csv, line 5:", "truncated", "download it again"],
                 id="truncated-inside-quoted-line-item"),
    pytest.param("renamed_column.csv", _GOOD_COST.replace(b"amount_value", b"amount", 1),
                 ["renamed_column.csv, line 1:", "amount_value", "Download the export again"],
                 id="wrong-header"),
    pytest.param("count_text.csv", _usage_with(usage_row(DAY, input_tokens="12k")),
                 ["count_text.csv, line 3:", "input_tokens", "'12k'", "not a number", _SEP],
                 id="non-numeric-count"),
    pytest.param("negative.csv", cost_csv([cost_row(DAY), cost_row(
        DAY, "-1.5000000000000000", "gpt-5-2025-08-07, output")]),
        ["negative.csv, line 3:", "negative amount", "download the file again"],
        id="negative-amount"),
    pytest.param("resaved.csv", csv_text(COST_HEADER_V1, [cost_row(DAY)]).replace(",", ";")
                 .encode(), ["resaved.csv, line 1:", "';'", "comma-separated"],
                 id="semicolon-separators"),
    pytest.param("blank.csv", b"\n  \r\n\t\n\n", ["blank.csv:", "only blank lines",
                                                  "Download the export again"],
                 id="only-blank-lines"),
    pytest.param("zero.csv", b"", ["zero.csv:", "empty (0 bytes)", "Download the export again"],
                 id="zero-bytes"),
    pytest.param("image.csv", _PNG, ["image.csv:", "PNG image", "Export the data"],
                 id="png-renamed-csv"),
    pytest.param("workbook.csv", _xlsx(), ["workbook.csv:", "Excel (XLSX)", "as CSV"],
                 id="xlsx-renamed-csv"),
    pytest.param("twice.csv", usage_csv([usage_row(DAY), usage_row(DAY, key="key_b"),
                                         usage_row(DAY)]),
                 ["twice.csv, line 4:", "repeats the row of line 2", "download the export again"],
                 id="duplicate-usage-rows"),
    pytest.param("twice_cost.csv", cost_csv([cost_row(DAY), cost_row(DAY)]),
                 ["twice_cost.csv, line 3:", "repeats the row of line 2"],
                 id="duplicate-cost-rows"),
    pytest.param("utf16.csv", csv_text(COST_HEADER_V1, [cost_row(DAY)]).encode("utf-16"),
                 ["utf16.csv:", "UTF-16", "UTF-8"], id="utf16-with-bom"),
    pytest.param("nul.csv", _GOOD_COST.replace(b"Test Org", b"Test\x00Org", 1),
                 ["nul.csv:", "NUL bytes", "exactly as the provider exported it"],
                 id="nul-bytes"),
    pytest.param("nul_late.csv", _NUL_LATE,
                 ["nul_late.csv, line 1205:", "NUL character", "download the file again"],
                 id="nul-byte-after-the-first-64kb"),
    pytest.param("long_id.csv", _usage_with(usage_row(DAY, project="p" * 129)),
                 ["long_id.csv, line 3:", "project_id", "129 characters", "download the file"],
                 id="id-longer-than-the-store-keeps"),
    pytest.param("broken_page.json", _MULTILINE_PAGE,
                 ["broken_page.json, line 4:", "not valid JSON", "Fetch the page again"],
                 id="invalid-json-page"),
    pytest.param("cut_page.json", page_bytes({DAY: [usage_result()] * 3})[:150],
                 ["cut_page.json", "not valid JSON", "truncated", "Fetch the page again"],
                 id="truncated-json-page"),
    pytest.param("inf.csv", _usage_with(usage_row(DAY, output="1e309")),
                 ["inf.csv, line 3:", "output_tokens", "whole number", _SEP], id="1e309-count"),
    pytest.param("inf_word.csv", _usage_with(usage_row(DAY, requests="inf")),
                 ["inf_word.csv, line 3:", "num_model_requests", "whole number"], id="inf-count"),
    pytest.param("nan.csv", _usage_with(usage_row(DAY, cached="NaN")),
                 ["nan.csv, line 3:", "input_cached_tokens", "whole number"], id="nan-count"),
    pytest.param("nan_page.json", page_bytes({DAY: [usage_result(float("nan"))]}),
                 ["nan_page.json, entry 2:", "input_tokens", "whole number"],
                 id="nan-count-in-json"),
    pytest.param("inf_page.json", page_bytes({DAY: [usage_result()]}).replace(
        b'"output_tokens": 50', b'"output_tokens": 1e309'),
        ["inf_page.json, entry 2:", "output_tokens", "whole number"], id="1e309-count-in-json"),
    pytest.param("huge.csv", _usage_with(usage_row(DAY, input_tokens="12345678901234567890")),
                 ["huge.csv, line 3:", "too large", _SEP], id="20-digit-count"),
    pytest.param("huge_page.json", page_bytes({DAY: [usage_result(12345678901234567890)]}),
                 ["huge_page.json, entry 2:", "too large"], id="20-digit-count-in-json"),
    pytest.param("half.csv", _usage_with(usage_row(DAY, requests="10.5")),
                 ["half.csv, line 3:", "num_model_requests", "whole number", _SEP],
                 id="fractional-count"),
    pytest.param("bad_amount_page.json", page_bytes({DAY: [cost_result("12,50")]}),
                 ["bad_amount_page.json, entry 2:", "amount.value", "not an amount"],
                 id="non-numeric-amount-in-json"),
]


@pytest.mark.parametrize(("name", "content", "expected"), MALFORMED)
def test_malformed_file_is_refused_and_the_store_is_unchanged(
        engine: Engine, tmp_path: Path, name: str, content: bytes, expected: list[str]) -> None:
    seed(engine, tmp_path)
    before = store_snapshot(engine)
    result = import_one(engine, tmp_path, name, content)
    assert not result.ok
    assert "\n" not in result.error
    for fragment in expected:
        assert fragment in result.error, (fragment, result.error)
    assert store_snapshot(engine) == before


def test_one_bad_file_does_not_stop_the_good_ones(engine: Engine, tmp_path: Path) -> None:
    results = import_sources(engine, [
        ("bad.csv", write(tmp_path, "bad.csv", _usage_with(usage_row(DAY, requests="x")))),
        ("good.csv", write(tmp_path, "good.csv", _GOOD_COST)),
    ])
    assert [r.ok for r in results] == [False, True]
    assert total_cost(engine, SYSTEM) == Decimal("3.75")


def test_a_non_export_found_in_a_folder_is_skipped_but_fails_when_named(
        engine: Engine, tmp_path: Path) -> None:
    from analytics.importers import sources_from_paths

    folder = tmp_path / "downloads"
    folder.mkdir()
    write(folder, "cost.csv", _GOOD_COST)
    write(folder, "truth.json", b'{"truth": {"total_usd": 3.75}}')
    write(folder, "notes.csv", b"name,value\nbudget,100\n")
    write(folder, "broken.csv", _usage_with(usage_row(DAY, requests="x")))
    results = {Path(r.file).name: r for r in import_sources(engine, sources_from_paths([folder]))}
    assert results["cost.csv"].ok and not results["cost.csv"].skipped
    for name in ("truth.json", "notes.csv"):
        assert results[name].ok and results[name].skipped, results[name]
        assert "not" in results[name].note
    assert not results["broken.csv"].ok and not results["broken.csv"].skipped
    [named] = import_sources(engine, sources_from_paths([folder / "truth.json"]))
    assert not named.ok and not named.skipped and "not an OpenAI Admin API page" in named.error
    assert len(import_history(engine)) == 1


# --- formats that must be accepted --------------------------------------------------------------


def _usage_totals(engine: Engine) -> tuple[int, int, int, int]:
    frame = spend(engine, SYSTEM, "provider")
    if frame.empty:
        return (0, 0, 0, 0)
    row = frame.iloc[0]
    return (int(row.input_tokens), int(row.cached_input_tokens), int(row.output_tokens),
            int(row.requests))


def test_float_counts_are_exact(engine: Engine, tmp_path: Path) -> None:
    result = import_one(engine, tmp_path, "floats.csv", usage_csv([
        usage_row(DAY, requests="10.0", input_tokens="123456789012.0", cached="7.00",
                  output="5.0"),
        usage_row(DAY, key="key_b", requests="1", input_tokens="3", cached="0", output="2")]))
    assert result.ok and result.rows == 2
    assert _usage_totals(engine) == (123456789015, 7, 7, 11)


def test_batch_flags_in_every_spelling(engine: Engine, tmp_path: Path) -> None:
    spellings = {"key_1": "True", "key_2": "False", "key_3": "TRUE", "key_4": "FALSE"}
    result = import_one(engine, tmp_path, "batch.csv", usage_csv(
        [usage_row(DAY, key=k, batch=v) for k, v in spellings.items()]))
    assert result.ok
    with engine.connect() as conn:
        stored = dict(conn.execute(select(Usage.api_key_id, Usage.batch)).all())
    assert stored == {"key_1": True, "key_2": False, "key_3": True, "key_4": False}


def test_empty_bucket_rows_cover_their_days_without_rows(engine: Engine, tmp_path: Path) -> None:
    last = DAY + timedelta(days=2)
    result = import_one(engine, tmp_path, "sparse.csv", usage_csv([
        empty_bucket_row(DAY), usage_row(DAY + timedelta(days=1)), empty_bucket_row(last)]))
    assert result.ok and result.rows == 1 and result.new == 1
    assert (result.first_day, result.last_day) == (DAY.isoformat(), last.isoformat())
    assert _usage_totals(engine) == (1000, 100, 50, 10)


@pytest.mark.parametrize("header", [USAGE_HEADER, COST_HEADER_V1, COST_HEADER_V2],
                         ids=["usage", "cost", "cost-17-columns"])
def test_header_only_file_imports_nothing_without_error(
        engine: Engine, tmp_path: Path, header: list[str]) -> None:
    seed(engine, tmp_path)
    before = store_snapshot(engine)
    result = import_one(engine, tmp_path, "nothing.csv", csv_text(header, []).encode())
    assert result.ok and (result.rows, result.new, result.replaced) == (0, 0, 0)
    assert result.first_day is None
    after = store_snapshot(engine)
    assert after["imports"] == before["imports"] + 1  # the import itself is recorded
    assert {k: v for k, v in after.items() if k != "imports"} == {
        k: v for k, v in before.items() if k != "imports"}


def test_utf8_bom_and_crlf_line_endings(engine: Engine, tmp_path: Path) -> None:
    text = csv_text(USAGE_HEADER, [usage_row(DAY), usage_row(DAY, key="key_b")], eol="\r\n")
    result = import_one(engine, tmp_path, "bom.csv", b"\xef\xbb\xbf" + text.encode())
    assert result.ok and result.rows == 2
    assert _usage_totals(engine) == (2000, 200, 100, 20)


def test_long_zero_padded_amounts_are_exact(engine: Engine, tmp_path: Path) -> None:
    amounts = ["0.0000012340000000", "1234.5678900000000000", "0.1000000000000000"]
    result = import_one(engine, tmp_path, "padded.csv", cost_csv([
        cost_row(DAY, a, f"gpt-5-2025-08-07, {t}")
        for a, t in zip(amounts, ("input", "output", "cached input"), strict=True)]))
    assert result.ok
    expected = sum((Decimal(a) for a in amounts), Decimal(0))
    assert total_cost(engine, SYSTEM) == expected == Decimal("1234.667891234")
    assert Decimal(result.total_usd) == expected


def test_amounts_as_json_strings_with_39_decimals(engine: Engine, tmp_path: Path) -> None:
    values = ["8.434520000000000000000000000000000000000",
              "0.000000001000000000000000000000000000000"]
    result = import_one(engine, tmp_path, "costs_page000.json", page_bytes({DAY: [
        cost_result(values[0]), cost_result(values[1], "gpt-5-2025-08-07, output")]}))
    assert result.ok and result.format == "openai_api_costs" and result.rows == 2
    assert total_cost(engine, SYSTEM) == Decimal("8.434520001")


def test_quoted_line_item_with_a_comma(engine: Engine, tmp_path: Path) -> None:
    content = cost_csv([cost_row(DAY, "2", "gpt-4o-mini-2024-07-18, cached input")])
    assert b'"gpt-4o-mini-2024-07-18, cached input"' in content
    assert import_one(engine, tmp_path, "quoted.csv", content).ok
    with engine.connect() as conn:
        row = conn.execute(select(Cost.line_item, Cost.model, Cost.token_type)).one()
    assert tuple(row) == ("gpt-4o-mini-2024-07-18, cached input", "gpt-4o-mini-2024-07-18",
                          "cached_input")


def test_org_total_rows_without_a_project(engine: Engine, tmp_path: Path) -> None:
    result = import_one(engine, tmp_path, "org_total.csv", cost_csv([
        cost_row(DAY, "10.25", "gpt-5-2025-08-07, input", project=""),
        cost_row(DAY, "1.75", "gpt-5-2025-08-07, output", project="")]))
    assert result.ok and result.rows == 2
    with engine.connect() as conn:
        assert conn.execute(select(Cost.org_level)).scalars().all() == [True, True]
    assert total_cost(engine, SYSTEM) == Decimal("12.00")


def test_json_float_counts_and_numeric_flags(engine: Engine, tmp_path: Path) -> None:
    result = import_one(engine, tmp_path, "usage_page000.json", page_bytes({DAY: [
        usage_result(1000.0, batch=1), usage_result(20, key="key_b", batch=0)]}))
    assert result.ok and result.rows == 2
    assert _usage_totals(engine)[0] == 1020
    with engine.connect() as conn:
        stored = dict(conn.execute(select(Usage.api_key_id, Usage.batch)).all())
    assert stored == {"key_a": True, "key_b": False}
