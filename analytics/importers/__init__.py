"""Recognise an export from its first bytes and header, and hand back a stream of canonical rows.

The format is never taken from the file name: people rename downloads. A file that is not a
known export fails here with a message that says what it looks like and what to do.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from analytics.importers.base import ImportFailure, ParsedFile
from analytics.importers.openai_api import load_page, page_kind, read_pages
from analytics.importers.openai_csv import (
    check_header,
    is_cost_header,
    is_usage_header,
    read_cost,
    read_usage,
)

Source = tuple[str, "bytes | Path"]
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


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and the export files inside folders named, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*")
                              if p.is_file() and p.suffix.lower() in EXPORT_SUFFIXES))
        else:
            out.append(path)
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


def _open_text(data: bytes | Path) -> io.TextIOBase:
    if isinstance(data, Path):
        return data.open("r", encoding="utf-8-sig", newline="")
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")


def parse_csv(name: str, data: bytes | Path) -> ParsedFile:
    """A CSV export: usage or cost, recognised by its header."""
    text = _open_text(data)
    try:
        first = next(csv.reader(text), None)
    except UnicodeDecodeError:
        text.close()
        raise ImportFailure(name, "is not UTF-8 text. Use the file exactly as the provider "
                            "exported it (a spreadsheet re-save changes the encoding).", 1) from None
    except csv.Error as exc:
        text.close()
        raise ImportFailure(name, f"is not valid CSV ({exc}).", 1) from None
    if not first:
        text.close()
        raise ImportFailure(name, "has no header line. Download the export again.", 1)
    header = [h.strip() for h in first]
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        text.close()
        sep = "';'" if ";" in header[0] else "tab"
        raise ImportFailure(name, f"uses {sep} as the separator: it was re-saved by a "
                            "spreadsheet. Use the file exactly as the provider exported it "
                            "(comma-separated).", 1)
    try:
        check_header(header, name)
    except ImportFailure:
        text.close()
        raise
    if is_usage_header(header):
        return read_usage(text, header, name, "openai_usage_csv")
    if is_cost_header(header):
        return read_cost(text, header, name, "openai_cost_csv")
    text.close()
    raise ImportFailure(
        name, "is not a recognised export: its header has none of the columns of an OpenAI "
        "usage export (start_time, end_time, num_model_requests, input_tokens, ...) or cost "
        "export (start_time, end_time, amount_value, amount_currency, ...).", 1)


def parse_sources(sources: list[Source]) -> list[ParsedFile | ImportFailure]:
    """Recognise each source. CSVs are one import each; Admin API pages are grouped by
    endpoint, every page of an endpoint forming one import.

    A source that cannot be recognised yields its ``ImportFailure`` in place of a file, so one
    bad file does not stop the others.
    """
    out: list[ParsedFile | ImportFailure] = []
    pages: dict[str, list[tuple[str, dict]]] = {}
    for name, data in sources:
        try:
            head = _head(data, name)
            _refuse_binary(head, name)
            if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
                raw = data.read_bytes() if isinstance(data, Path) else data
                page = load_page(raw, name)
                pages.setdefault(page_kind(page, name), []).append((name, page))
            else:
                out.append(parse_csv(name, data))
        except ImportFailure as failure:
            out.append(failure)
    for kind, group in pages.items():
        if kind == "empty":
            kind = "costs" if any("cost" in n.lower() for n, _ in group) else "completions"
        label = group[0][0] if len(group) == 1 else f"{group[0][0]} (+{len(group) - 1} pages)"
        out.append(read_pages(group, kind, label))
    return out


def sources_from_paths(paths: Iterable[str | Path]) -> list[Source]:
    """(display name, path) for every export file named directly or found in a folder."""
    return [(str(p), p) for p in expand_paths(paths)]


__all__ = ["ImportFailure", "ParsedFile", "parse_sources", "sources_from_paths", "parse_csv"]
