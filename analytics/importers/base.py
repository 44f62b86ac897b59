"""What every importer shares: the error a person reads, the canonical row shapes, and the
field parsers that turn an export's text into exact values.

Importers stream: they yield canonical rows one at a time and fill a ``Coverage`` as they go,
so a file of millions of rows is never held in memory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple


class ImportFailure(ValueError):
    """A file that cannot be imported, with where and what to do, in plain words.

    ``unit`` names what ``line`` counts: lines of a CSV, or entries (buckets and results,
    counted through the page) of an Admin API page, which has no useful line numbers.
    """

    def __init__(self, file_name: str, message: str, line: int | None = None,
                 unit: str = "line") -> None:
        self.file_name = file_name
        self.line = line
        self.reason = message
        where = f"{file_name}, {unit} {line}" if line else file_name
        super().__init__(f"{where}: {message}")


class FastPathDeclined(Exception):
    """A fast columnar reader met something it does not handle exactly as the row reader
    would (an odd spelling, a bad value, a repeat): the file is read again row by row, whose
    messages name the line. Never shown to a user."""


class NotAnExport(ImportFailure):
    """Readable CSV or JSON that is no export at all (notes, a price list, a truth file).

    Kept apart from a malformed export so that a file met while walking a folder can be
    skipped, while the same file named on purpose still fails.
    """


class UsageRow(NamedTuple):
    """One usage bucket in canonical form (``input_tokens`` includes cached tokens)."""

    line: int
    provider: str
    kind: str
    day: date
    bucket_start: datetime
    bucket_end: datetime
    project_id: str
    user_id: str
    api_key_id: str
    model: str
    batch: bool
    service_tier: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    requests: int


# The stored columns of a usage row (``line`` is not stored), and how a column batch of usage
# writes its days and bucket times: as SQLAlchemy keeps them in SQLite, which PostgreSQL's
# ``COPY`` reads as well.
USAGE_STORED = UsageRow._fields[1:]
DATETIME_TEXT = "%Y-%m-%d %H:%M:%S.%f"


def moment_text(value: datetime | date) -> str:
    """A bucket time or day as the text a usage batch carries."""
    return value.strftime(DATETIME_TEXT) if isinstance(value, datetime) else value.isoformat()


class CostRow(NamedTuple):
    """One billed cost line in canonical form; ``org_level`` when the export gave no project."""

    line: int
    provider: str
    day: date
    org_level: bool
    project_id: str
    api_key_id: str
    user_id: str
    line_item: str
    model: str
    token_type: str
    amount: Decimal
    currency: str
    quantity: Decimal | None
    unit: str


@dataclass
class Coverage:
    """What an import speaks for: the days and projects whose stored rows it replaces."""

    days: set[date] = field(default_factory=set)
    projects: set[str] = field(default_factory=set)
    rows: int = 0
    total_usd: Decimal = Decimal(0)
    project_names: dict[str, str] = field(default_factory=dict)
    key_names: dict[str, str] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget what a declined fast read counted, before the row reader counts again."""
        self.days.clear()
        self.projects.clear()
        self.rows = 0
        self.total_usd = Decimal(0)
        self.project_names.clear()
        self.key_names.clear()

    @property
    def first_day(self) -> date | None:
        return min(self.days) if self.days else None

    @property
    def last_day(self) -> date | None:
        return max(self.days) if self.days else None


@dataclass
class ParsedFile:
    """A recognised export: its format, what it holds, and the stream of its rows."""

    file_name: str
    format: str
    provider: str
    kind: Literal["usage", "cost"]
    usage_kind: str  # completions, embeddings, ... ('' for cost)
    rows: Iterator[UsageRow] | Iterator[CostRow]
    coverage: Coverage
    sources: tuple[str, ...] = ()  # the files it was read from (several for Admin API pages)
    unit: str = "line"  # what a row's ``line`` counts, for messages
    # A fast reader of the same rows as column batches (usage only), tried before ``rows``.
    columnar: Callable[[], Iterator[tuple[Any, Any]]] | None = None


# A quadrillion tokens in one bucket is far beyond any real export, and keeps SQL sums of
# thousands of such rows inside a 64-bit integer.
MAX_COUNT = 10**15

# What to do about a value no provider writes: the file was damaged or edited on the way.
REDOWNLOAD = "Download the export again from the provider; do not edit it by hand."

# The longest display name (project, key) the store keeps; longer is no provider's export.
NAME_LIMIT = 256
# Control characters (C0, DEL, C1): no provider writes them into an id or a name, and in a
# terminal they could rewrite what a person reads. Format characters such as a right-to-left
# override are kept verbatim: they are text, shown inert.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


class FieldParser:
    """Parses one file's fields, naming the file and line in every error."""

    def __init__(self, file_name: str, unit: str = "line") -> None:
        self.file_name = file_name
        self.unit = unit
        self._day_cache: dict[str, tuple[datetime, date]] = {}

    def fail(self, line: int | None, message: str) -> ImportFailure:
        return ImportFailure(self.file_name, message, line, self.unit)

    def name(self, value: str, column: str, line: int) -> str:
        """A display name (project, key) as exported, refused if the store cannot keep it
        verbatim; names are stored as text and never interpreted."""
        problem = text_problem(value, NAME_LIMIT)
        if problem:
            raise self.fail(line, f"the {column} value {problem}. This is not what the "
                            "provider exports; download the file again.")
        return value

    def count(self, text: str | int | float | None, column: str, line: int) -> int:
        """A token or request count: exported as ``10`` or ``10.0``; never negative or
        fractional."""
        if text is None or text == "":
            return 0
        if isinstance(text, bool):
            raise self.fail(line, f"column '{column}' holds {text!r}, not a count. {REDOWNLOAD}")
        if isinstance(text, int):
            value: float | int = text
        else:
            raw = str(text).strip()
            whole, _, frac = raw.partition(".")
            if whole.isascii() and whole.isdigit() and frac.strip("0") == "":
                value = int(whole)  # exact, however many digits
            else:
                try:
                    if not raw.isascii():  # '١٠', '²': digits no export writes
                        raise ValueError
                    value = float(raw)
                except ValueError:
                    raise self.fail(line, f"column '{column}' holds {raw[:40]!r}, which is not "
                                    f"a number. {REDOWNLOAD}") from None
        if not math.isfinite(value) or value != int(value) or value < 0:
            raise self.fail(line, f"column '{column}' holds {str(text)[:40]!r}: a count must be "
                            f"a whole number of at least 0. {REDOWNLOAD}")
        if value > MAX_COUNT:
            raise self.fail(line, f"column '{column}' holds {str(text)[:40]!r}, which is too large "
                            f"to be a real count. {REDOWNLOAD}")
        return int(value)

    def flag(self, text: str | int | bool | None, column: str, line: int) -> bool:
        """A boolean as exported: ``True``/``False``/``TRUE``/``FALSE`` (or JSON true/false)."""
        if isinstance(text, bool):
            return text
        low = str(text if text is not None else "").strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise self.fail(line, f"column '{column}' holds {text!r}; expected True or False. "
                        f"{REDOWNLOAD}")

    def amount(self, text: str | int | float | None, column: str, line: int) -> Decimal:
        """Dollars as an exact decimal: long zero-padded text or a JSON string/number."""
        raw = str(text).strip()
        try:
            if not raw.isascii():  # Decimal would take '١٠' for 10: no export writes that
                raise InvalidOperation
            value = Decimal(raw)
        except InvalidOperation:
            raise self.fail(line, f"column '{column}' holds {raw[:40]!r}, which is not an amount "
                            f"of money. {REDOWNLOAD}") from None
        if not value.is_finite():
            raise self.fail(line, f"column '{column}' holds {raw[:40]!r}, which is not a finite "
                            f"amount. {REDOWNLOAD}")
        if value < 0:
            raise self.fail(line, f"column '{column}' holds a negative amount ({raw[:40]}). Usage "
                            "exports carry no credits; download the file again from the "
                            "provider.")
        if abs(value) >= Decimal("1e15"):
            raise self.fail(line, f"column '{column}' holds {raw[:40]!r}, far beyond any real "
                            f"bill. {REDOWNLOAD}")
        return value

    def bucket(self, start: str | int | None, end: str | int | None,
               line: int) -> tuple[datetime, datetime, date]:
        """A bucket's UTC start and end (from unix seconds) and the day it counts for."""
        b_start, day = self._instant(start, "start_time", line)
        b_end, _ = self._instant(end, "end_time", line)
        if b_end <= b_start:
            raise self.fail(line, f"end_time is not after start_time. {REDOWNLOAD}")
        return b_start, b_end, day

    def _instant(self, text: str | int | None, column: str, line: int) -> tuple[datetime, date]:
        key = str(text).strip()
        hit = self._day_cache.get(key)
        if hit is not None:
            return hit
        try:
            seconds = float(key)
            if not math.isfinite(seconds) or seconds != int(seconds):
                raise ValueError
            # 2001-09-09 .. 2100-01-01: anything outside is not a usage export's timestamp.
            if not 1_000_000_000 <= seconds < 4_102_444_800:
                raise ValueError
        except ValueError:
            raise self.fail(line, f"column '{column}' holds {key[:40]!r}; expected a unix time in "
                            f"seconds such as 1788220800. {REDOWNLOAD}") from None
        moment = datetime.fromtimestamp(int(seconds), UTC).replace(tzinfo=None)
        hit = (moment, moment.date())
        self._day_cache[key] = hit
        return hit


def text_problem(value: str, limit: int) -> str | None:
    """Why a text value cannot be stored as it is (too long, a control character), or None.

    >>> text_problem("gpt-5", 128), text_problem("a\\x1b[2J", 128)
    (None, 'contains a control character (U+001B)')
    """
    if len(value) > limit:
        return f"is {len(value)} characters long (at most {limit} fit)"
    if not value.isprintable():
        bad = _CONTROL.search(value)
        if bad:
            char = bad.group()
            return ("contains a NUL character" if char == "\x00"
                    else f"contains a control character (U+{ord(char):04X})")
    return None


def parse_line_item(line_item: str) -> tuple[str, str]:
    """Split ``"gpt-4o-mini-2024-07-18, cached input"`` into model and token type.

    >>> parse_line_item("gpt-4o-mini-2024-07-18, cached input")
    ('gpt-4o-mini-2024-07-18', 'cached_input')
    """
    model, sep, kind = line_item.rpartition(",")
    if not sep:
        return line_item.strip(), ""
    return model.strip(), kind.strip().lower().replace(" ", "_")


# An Admin API bucket's (start, end, day), read by the provider's own rules.
BucketTimes = Callable[["FieldParser", dict[str, Any], int], tuple[datetime, datetime, date]]
PageEntry = tuple["FieldParser", int, tuple[datetime, datetime, date], dict[str, Any]]


def page_entries(pages: list[tuple[str, dict[str, Any]]], cov: Coverage, times: BucketTimes,
                 entry: str = "entry") -> Iterator[PageEntry]:
    """(parser, position, (bucket start, end, day), result) for every result of every page of
    a provider's usage or cost API (``data``: buckets, each holding ``results``).

    The position counts buckets and results through a page (1-based) and stands in for a
    line number in messages; each bucket's day is added to ``cov``. A bucket without results
    (the key missing or null) is an empty bucket: its day is covered, it holds nothing.
    """
    for file_name, page in pages:
        parser = FieldParser(file_name, entry)
        position = 0
        for bucket in page["data"]:
            position += 1
            if not isinstance(bucket, dict):
                raise parser.fail(position, "a bucket that is not a JSON object.")
            start, end, day = times(parser, bucket, position)
            cov.days.add(day)
            results = bucket.get("results") or []
            if not isinstance(results, list):
                raise parser.fail(position, "a bucket whose 'results' is not a list.")
            for result in results:
                position += 1
                if not isinstance(result, dict):
                    raise parser.fail(position, "a result that is not a JSON object.")
                yield parser, position, (start, end, day), result
