"""What an upload holds, read in full but written nowhere: the import page's preview."""

from __future__ import annotations

from dataclasses import dataclass

from analytics.importers import ImportFailure, Source, parse_sources


@dataclass(frozen=True)
class Preview:
    file: str
    ok: bool
    format: str = ""
    kind: str = ""
    rows: int = 0
    first_day: str | None = None
    last_day: str | None = None
    total_usd: float | None = None
    error: str | None = None


def preview_sources(sources: list[Source]) -> list[Preview]:
    """Recognise and validate every source (each row is parsed) without touching the store."""
    out: list[Preview] = []
    for item in parse_sources(sources):
        if isinstance(item, ImportFailure):
            out.append(Preview(item.file_name, False, error=str(item)))
            continue
        try:
            for _ in item.rows:
                pass
        except ImportFailure as failure:
            out.append(Preview(item.file_name, False, item.format, error=str(failure)))
            continue
        cov = item.coverage
        out.append(Preview(
            item.file_name, True, item.format, item.usage_kind or item.kind, cov.rows,
            cov.first_day.isoformat() if cov.first_day else None,
            cov.last_day.isoformat() if cov.last_day else None,
            float(cov.total_usd) if item.kind == "cost" else None))
    return out
