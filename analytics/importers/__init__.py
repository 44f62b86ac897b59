"""Recognise an export from its first bytes and header, and hand back a stream of canonical rows.

The format is never taken from the file name: people rename downloads. A damaged export fails
here with a message that says what it looks like and what to do; readable CSV or JSON that is
no export at all fails as ``NotAnExport``, which a folder import reports as skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple, TextIO

from analytics.importers import anthropic_api, anthropic_csv
from analytics.importers.base import ImportFailure, NotAnExport, ParsedFile
from analytics.importers.openai_api import load_page, page_kind, read_pages
from analytics.importers.openai_csv import (
    COST_REQUIRED,
    EXPORT_COLUMNS,
    USAGE_REQUIRED,
    check_header,
    is_cost_header,
    is_usage_header,
    not_utf8,
    open_text,
    read_cost,
    read_usage,
    reader,
)

EXPORT_SUFFIXES = (".csv", ".json")
_SNIFF = 64 * 1024

_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"PK\x03\x04": "a zip archive or an Excel (XLSX) workbook",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel (XLS) workbook",
    b"\x1f\x8b": "a gzip archive",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
}


class Source(NamedTuple):
    """A file to import: its display name, its bytes or path, and whether it was found by
    walking a folder (such a file may be skipped when it is no export; a file named on
    purpose may not). A plain ``(name, data)`` pair is accepted wherever a Source is."""

    name: str
    data: bytes | Path
    from_folder: bool = False


def sources_from_paths(paths: Iterable[str | Path]) -> list[Source]:
    """A Source for every file named directly or found in a folder named, in a stable order.

    Hidden files and folders (``.git``, macOS ``._`` shadows) are not walked into.
    """
    out: list[Source] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in EXPORT_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            out.extend(Source(str(p), p, True) for p in found)
        else:
            out.append(Source(str(path), path))
    return out


def _head(data: bytes | Path, name: str) -> bytes:
    if isinstance(data, Path):
        try:
            with data.open("rb") as fh:
                return fh.read(_SNIFF)
        except FileNotFoundError:
            raise ImportFailure(name, "no such file.") from None
        except IsADirectoryError:
            raise ImportFailure(name, "is a folder, not a file.") from None
        except OSError as exc:
            raise ImportFailure(name, f"cannot be read ({exc.strerror}).") from None
    return data[:_SNIFF]


def _refuse_binary(head: bytes, name: str) -> None:
    if not head:
        raise ImportFailure(name, "is empty (0 bytes). Download the export again.")
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise ImportFailure(name, f"is {what}, not a CSV or JSON export. Export the data "
                                "from the provider's dashboard as CSV.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFailure(name, "is UTF-16 text. Save it as UTF-8 CSV, or better, use the "
                            "file exactly as the provider exported it.")
    if b"\x00" in head:
        raise ImportFailure(name, "contains binary data (NUL bytes), not text. Use the file "
                            "exactly as the provider exported it.")
    if len(head) < _SNIFF and not head.lstrip(b"\xef\xbb\xbf").strip():
        raise ImportFailure(name, "holds only blank lines, not even a header. Download the "
                            "export again.")


def _read_header(name: str, data: bytes | Path) -> tuple[list[str], TextIO]:
    """The header's column names, and the open text positioned at the first data row."""
    text = open_text(data)
    try:
        first = next(reader(text), None)
    except UnicodeDecodeError:
        text.close()
        raise not_utf8(name, data) from None
    except csv.Error as exc:
        text.close()
        raise ImportFailure(name, f"is not valid CSV ({exc}).", 1) from None
    if not first:
        text.close()
        raise ImportFailure(name, "starts with a blank line instead of a header. Use the file "
                            "exactly as the provider exported it.", 1)
    return [h.strip() for h in first], text


def parse_csv(name: str, data: bytes | Path) -> ParsedFile:
    """A CSV export: usage or cost, recognised by its header."""
    header, text = _read_header(name, data)
    if anthropic_csv.is_anthropic_header(header):
        return _parse_anthropic(name, data, header, text)
    try:
        _recognise(header, name)
    except ImportFailure:
        text.close()
        raise
    if is_usage_header(header):
        return read_usage(text, header, name, "openai_usage_csv", data)
    return read_cost(text, header, name, "openai_cost_csv", data)


def _parse_anthropic(name: str, data: bytes | Path, header: list[str],
                     text: TextIO) -> ParsedFile:
    """An Anthropic Console export: token usage or cost, recognised by its header."""
    try:
        check_header(header, name)
        if anthropic_csv.is_token_header(header):
            return anthropic_csv.read_tokens(text, header, name, data)
        if anthropic_csv.is_cost_header(header):
            return anthropic_csv.read_cost(text, header, name, data)
    except ImportFailure:
        text.close()
        raise
    text.close()
    raise ImportFailure(
        name, "has an Anthropic export's header without the columns it needs. A token export "
        f"needs {', '.join(anthropic_csv.TOKEN_REQUIRED)}; a cost export needs "
        f"{', '.join(anthropic_csv.COST_REQUIRED)}. Download the export again rather than "
        "editing its header.", 1)


def _recognise(header: list[str], name: str) -> None:
    """Refuse a header that no reader can take; a header with no export column at all is
    ``NotAnExport`` (a different file), one with some of them a damaged export."""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        sep = ";" if ";" in header[0] else "\t"
        if EXPORT_COLUMNS.intersection(c.strip().strip('"') for c in header[0].split(sep)):
            label = "';'" if sep == ";" else "tab"
            raise ImportFailure(name, f"uses {label} as the separator: it was re-saved by a "
                                "spreadsheet. Use the file exactly as the provider exported it "
                                "(comma-separated), or download it again.", 1)
    if not EXPORT_COLUMNS.intersection(header):
        raise NotAnExport(
            name, "is not a recognised export: its header has none of the columns of an OpenAI "
            "usage export (start_time, end_time, num_model_requests, input_tokens, ...) or cost "
            "export (start_time, end_time, amount_value, amount_currency, ...), nor of an "
            "Anthropic Console export (usage_date_utc, usage_output_tokens, cost_usd, ...).", 1)
    check_header(header, name)
    if not (is_usage_header(header) or is_cost_header(header)):
        missing = min(([c for c in USAGE_REQUIRED if c not in header],
                       [c for c in COST_REQUIRED if c not in header]), key=len)
        raise ImportFailure(
            name, f"has an export's header without the column(s) {', '.join(missing)}. A usage "
            f"export needs {', '.join(USAGE_REQUIRED)}; a cost export needs "
            f"{', '.join(COST_REQUIRED)}. Download the export again rather than editing its "
            "header.", 1)


def parse_sources(sources: Iterable[Source | tuple[str, bytes | Path]]
                  ) -> list[ParsedFile | ImportFailure]:
    """Recognise each source. CSVs are one import each; Admin API pages are grouped by
    endpoint, every page of an endpoint forming one import.

    A source that cannot be recognised yields its ``ImportFailure`` in place of a file, so one
    bad file does not stop the others.
    """
    out: list[ParsedFile | ImportFailure] = []
    pages: dict[str, list[tuple[str, dict]]] = {}
    reports: dict[str, list[tuple[str, dict]]] = {}
    for name, data, *_ in sources:
        try:
            head = _head(data, name)
            _refuse_binary(head, name)
            if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"[")):
                raw = data.read_bytes() if isinstance(data, Path) else data
                report = anthropic_api.load_report(raw)
                if report is not None:
                    reports.setdefault(anthropic_api.report_kind(report), []).append(
                        (name, report))
                    continue
                page = load_page(raw, name)
                pages.setdefault(page_kind(page, name), []).append((name, page))
            else:
                out.append(parse_csv(name, data))
        except ImportFailure as failure:
            out.append(failure)
    for kind, group in pages.items():
        if kind == "empty":
            kind = "costs" if any("cost" in n.lower() for n, _ in group) else "completions"
        out.append(read_pages(group, kind, _label(group)))
    for kind, group in reports.items():
        if kind == "empty":
            kind = "cost" if any("cost" in n.lower() for n, _ in group) else "usage"
        out.append(anthropic_api.read_reports(group, kind, _label(group)))
    return out


def _label(group: list[tuple[str, dict]]) -> str:
    return group[0][0] if len(group) == 1 else f"{group[0][0]} (+{len(group) - 1} pages)"


__all__ = ["ImportFailure", "NotAnExport", "ParsedFile", "Source", "parse_sources",
           "sources_from_paths", "parse_csv"]
