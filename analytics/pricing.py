"""Effective-dated price book, token counts -> estimated dollars, and what-if repricing.

Billed cost from the providers' cost exports is the truth for money. This module is for the
questions those exports cannot answer (cost by key, user or a dimension the export lacks,
and "what if"), so its results are *estimates*.

Choices worth knowing:

- **Effective dating.** A price row applies from its ``effective_from`` day until the next
  row for the same provider, family and service tier. A row dated in the future changes
  nothing before that day.
- **Floats for estimates.** ``Price`` objects carry exact ``Decimal`` list prices, but
  ``estimate_cost`` works in float64 dollars: it is vectorised over up to ~100k rows, token
  counts stay far below 2**53, and the relative error (~1e-15) is nowhere near the 0.5%
  accuracy target. Billed figures never pass through here.
- **Never zero for the unknown.** A row whose model has no price (unknown family, fine-tune
  without an ``ft:`` row, service tier without a row, day before the first price) gets
  ``priced=False``, a NaN cost and a plain ``unpriced_reason``.
- **Token semantics.** ``input_tokens`` includes cached reads (and cache writes, when a
  ``cache_write_tokens`` column is given): uncached = input - cached - cache writes.
  An empty cached price bills cached tokens at the input price. Batch requests are billed
  at ``batch_discount`` x the price (flex rows carry 1: a flex request is never a batch one).

Example:
    >>> book = load_price_book()
    >>> str(book.price_for("openai", "gpt-5", "2026-09-01").output_per_1m)
    '10'
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import pandas as pd

from analytics.models import parse_model
from analytics.store import PRICE_FILE

DEFAULT_TIER = "default"
TOKENS_PER_PRICE_UNIT = 1_000_000

PRICE_COLUMNS = (
    "provider",
    "family",
    "service_tier",
    "effective_from",
    "input_per_1m",
    "cached_input_per_1m",
    "cache_write_per_1m",
    "output_per_1m",
    "batch_discount",
    "unit",
    "source",
    "source_date",
)
_REQUIRED_PRICE_COLUMNS = ("provider", "family", "effective_from", "input_per_1m", "output_per_1m")
_PRICE_DEFAULTS = {
    "service_tier": DEFAULT_TIER,
    "cached_input_per_1m": "",
    "cache_write_per_1m": "",
    "batch_discount": "0.5",
    "unit": "tokens",
    "source": "",
    "source_date": "",
}
_RATE_COLUMNS = ("input_per_1m", "cached_input_per_1m", "cache_write_per_1m", "output_per_1m")
_PRICE_KEY = ["provider", "family", "service_tier"]
_SUPPORTED_UNITS = ("tokens",)

_REQUIRED_USAGE_COLUMNS = ("day", "provider", "model", "input_tokens", "output_tokens")
_TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")
# Service tiers an export may report that are billed at the standard price.
_STANDARD_TIER_ALIASES = ("", "auto", "nan", "none")


class PriceBookError(ValueError):
    """A price file or price rows a user supplied are not usable; the message says where."""


class UsageFrameError(ValueError):
    """A usage frame handed to the pricing functions lacks what they need."""


class ScenarioError(ValueError):
    """A what-if scenario is not well formed."""


@dataclass(frozen=True)
class Price:
    """One effective-dated list price, exact, per 1M tokens."""

    provider: str
    family: str
    service_tier: str
    effective_from: dt.date
    input_per_1m: Decimal
    cached_input_per_1m: Decimal | None
    cache_write_per_1m: Decimal | None
    output_per_1m: Decimal
    batch_discount: Decimal
    unit: str
    source: str
    source_date: dt.date | None

    @property
    def cached_rate_per_1m(self) -> Decimal:
        """What a cached input token costs: the input price when there is no cached price."""
        return self.input_per_1m if self.cached_input_per_1m is None else self.cached_input_per_1m


class PriceBook:
    """Validated, effective-dated price rows; immutable (combining returns a new book).

    Build one with :func:`load_price_book` or :meth:`PriceBook.from_frame`.
    """

    def __init__(self, rows: pd.DataFrame) -> None:
        """Wrap rows already validated by :func:`_parse_price_rows` (not for direct use)."""
        self._rows = rows.sort_values([*_PRICE_KEY, "effective_from"], ignore_index=True)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, name: str = "price rows") -> PriceBook:
        """Validate rows from a frame (an upload, the store); errors name ``name`` and row."""
        return cls(_parse_price_rows(_as_text(frame), name, "row", first_number=1))

    def __len__(self) -> int:
        return len(self._rows)

    def __eq__(self, other: object) -> bool:
        """Books with the same rows are equal, so that results kept per book (``memo``)
        serve every copy of it: ``current_book`` builds a new one on each call."""
        return isinstance(other, PriceBook) and self._text == other._text

    def __hash__(self) -> int:
        return hash(self._text)

    @cached_property
    def _text(self) -> str:
        return self.to_frame().to_csv(index=False)

    def to_frame(self) -> pd.DataFrame:
        """The rows as text, in the price file's columns, ready to save or to serialise."""
        text = self._rows.copy()
        text["effective_from"] = text["effective_from"].dt.strftime("%Y-%m-%d")
        for column in (*_RATE_COLUMNS, "batch_discount"):
            text[column] = text[column].map(lambda v: "" if v is None else str(v))
        text["source_date"] = text["source_date"].map(lambda d: "" if d is None else d.isoformat())
        return text[list(PRICE_COLUMNS)].astype(str)

    def with_rows(self, other: PriceBook) -> PriceBook:
        """Add ``other``'s rows; a row with the same provider, family, tier and
        ``effective_from`` replaces this book's row. How an Owner records a price change."""
        key = [*_PRICE_KEY, "effective_from"]
        kept = self._rows.merge(other._rows[key], on=key, how="left", indicator=True)
        kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge")
        return PriceBook(pd.concat([kept, other._rows], ignore_index=True))

    def replacing_families(self, other: PriceBook) -> PriceBook:
        """For each provider/family/tier ``other`` prices, use only ``other``'s rows.

        What a price-list scenario means: "price gpt-5 like this" must not be overruled by
        a later-dated row of the base book.
        """
        kept = self._rows.merge(
            other._rows[_PRICE_KEY].drop_duplicates(), on=_PRICE_KEY, how="left", indicator=True
        )
        kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge")
        return PriceBook(pd.concat([kept, other._rows], ignore_index=True))

    def price_for(
        self, provider: str, family: str, day: dt.date | str, service_tier: str = DEFAULT_TIER
    ) -> Price | None:
        """The price in effect on ``day``: the latest row with ``effective_from <= day``."""
        rows = self._rows
        match = rows[
            (rows["provider"] == provider.strip().lower())
            & (rows["family"] == family.strip().lower())
            & (rows["service_tier"] == _normalise_tier(service_tier))
            & (rows["effective_from"] <= pd.Timestamp(day))
        ]
        if match.empty:
            return None
        row = match.iloc[-1]
        return Price(
            provider=row["provider"],
            family=row["family"],
            service_tier=row["service_tier"],
            effective_from=row["effective_from"].date(),
            input_per_1m=row["input_per_1m"],
            cached_input_per_1m=row["cached_input_per_1m"],
            cache_write_per_1m=row["cache_write_per_1m"],
            output_per_1m=row["output_per_1m"],
            batch_discount=row["batch_discount"],
            unit=row["unit"],
            source=row["source"],
            source_date=row["source_date"],
        )

    def rate_table(self) -> pd.DataFrame:
        """Float rates for vectorised costing, keyed like the rows, sorted by date."""
        table = self._rows[[*_PRICE_KEY, "effective_from"]].copy()
        for column in (*_RATE_COLUMNS, "batch_discount"):
            table[column] = pd.to_numeric(self._rows[column].map(_decimal_to_float))
        return table.sort_values("effective_from", ignore_index=True)


def load_price_book(
    path: str | Path | IO[str] | None = None,
    extra: pd.DataFrame | None = None,
    extra_name: str = "added prices",
) -> PriceBook:
    """Read the price file (``data/prices.csv`` by default) plus optional ``extra`` rows.

    ``extra`` rows (Owner-added prices from the store, an uploaded file) are added with
    :meth:`PriceBook.with_rows`. Problems raise :class:`PriceBookError` naming the file and
    line, e.g. ``prices.csv line 4: input_per_1m 'abc' is not a number.``
    """
    source = PRICE_FILE if path is None else path
    name = Path(source).name if isinstance(source, str | Path) else getattr(source, "name", "")
    name = Path(str(name)).name or "price file"
    try:
        raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    except FileNotFoundError as error:
        raise PriceBookError(f"{name}: the price file was not found.") from error
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PriceBookError(f"{name}: not a readable CSV file ({error}).") from error
    # Line 1 is the header, so data row i is on line i + 2.
    book = PriceBook(_parse_price_rows(raw, name, "line", first_number=2))
    if extra is not None:
        book = book.with_rows(PriceBook.from_frame(extra, extra_name))
    return book


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells of a frame from any origin as text, empty for missing, dates in ISO form."""

    def cell(value: Any) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        if isinstance(value, dt.datetime | pd.Timestamp):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value)

    return frame.map(cell).astype(str) if len(frame.columns) else frame.astype(str)


def _parse_price_rows(
    raw: pd.DataFrame, name: str, unit_word: str, first_number: int
) -> pd.DataFrame:
    """Validate text price rows into typed rows; raise PriceBookError naming row and column."""
    raw = raw.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in _REQUIRED_PRICE_COLUMNS if c not in raw.columns]
    if missing:
        raise PriceBookError(f"{name}: missing column(s) {', '.join(missing)}.")
    unknown = [c for c in raw.columns if c not in PRICE_COLUMNS]
    if unknown:
        raise PriceBookError(
            f"{name}: unknown column(s) {', '.join(unknown)}; expected {', '.join(PRICE_COLUMNS)}."
        )
    raw = raw.assign(**{c: v for c, v in _PRICE_DEFAULTS.items() if c not in raw.columns})
    records = [
        _parse_price_row(row, f"{name} {unit_word} {first_number + i}")
        for i, row in enumerate(raw[list(PRICE_COLUMNS)].to_dict("records"))
    ]
    rows = pd.DataFrame.from_records(records, columns=list(PRICE_COLUMNS))
    rows["effective_from"] = pd.to_datetime(rows["effective_from"]).astype("datetime64[ns]")
    for column in ("provider", "family", "service_tier", "unit", "source"):
        rows[column] = rows[column].astype(str)
    _reject_duplicates(rows, name, unit_word, first_number)
    return rows


def _parse_price_row(row: dict[str, str], where: str) -> dict[str, Any]:
    """One text row -> typed values. Price files are small, so a plain loop is fine here."""
    parsed: dict[str, Any] = {}
    for column in ("provider", "family"):
        parsed[column] = row[column].strip().lower()
        if not parsed[column]:
            raise PriceBookError(f"{where}: {column} is empty.")
    parsed["service_tier"] = _normalise_tier(row["service_tier"])
    parsed["effective_from"] = _parse_date(row["effective_from"], "effective_from", where)
    for column in _RATE_COLUMNS:
        optional = column in ("cached_input_per_1m", "cache_write_per_1m")
        parsed[column] = _parse_rate(row[column], column, where, optional)
    discount = _parse_rate(row["batch_discount"] or "0.5", "batch_discount", where, False)
    if not Decimal(0) < discount <= Decimal(1):
        raise PriceBookError(
            f"{where}: batch_discount must be above 0 and at most 1, not {discount}."
        )
    parsed["batch_discount"] = discount
    parsed["unit"] = row["unit"].strip().lower() or "tokens"
    if parsed["unit"] not in _SUPPORTED_UNITS:
        raise PriceBookError(f"{where}: unit '{row['unit']}' is not supported (only tokens).")
    parsed["source"] = row["source"].strip()
    source_date = row["source_date"].strip()
    parsed["source_date"] = _parse_date(source_date, "source_date", where) if source_date else None
    return parsed


def _parse_rate(text: str, column: str, where: str, optional: bool) -> Decimal | None:
    """A non-negative decimal price; empty allowed only for optional columns."""
    text = text.strip()
    if not text:
        if optional:
            return None
        raise PriceBookError(f"{where}: {column} is empty.")
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise PriceBookError(f"{where}: {column} '{text}' is not a number.")
    if value < 0:
        raise PriceBookError(f"{where}: {column} is negative ({text}).")
    return value


def _parse_date(text: str, column: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise PriceBookError(
            f"{where}: {column} '{text}' is not a date in YYYY-MM-DD form."
        ) from None


def _reject_duplicates(rows: pd.DataFrame, name: str, unit_word: str, first_number: int) -> None:
    """Two rows for the same provider/family/tier/day would make the price ambiguous."""
    key = [*_PRICE_KEY, "effective_from"]
    duplicated = rows[rows.duplicated(key, keep=False)]
    if duplicated.empty:
        return
    first = duplicated.iloc[0]
    same = duplicated[(duplicated[key] == first[key]).all(axis=1)]
    numbers = " and ".join(str(first_number + int(i)) for i in same.index)
    raise PriceBookError(
        f"{name} {unit_word}s {numbers}: more than one price for {first['provider']} "
        f"{first['family']} ({first['service_tier']}) from "
        f"{first['effective_from']:%Y-%m-%d}; keep one."
    )


def _normalise_tier(tier: Any) -> str:
    text = str(tier).strip().lower()
    return DEFAULT_TIER if text in _STANDARD_TIER_ALIASES else text


def _decimal_to_float(value: Decimal | None) -> float:
    return np.nan if value is None else float(value)


# --- token counts -> dollars ------------------------------------------------------------


def estimate_cost(usage: pd.DataFrame, book: PriceBook) -> pd.DataFrame:
    """Estimate list-price dollars for each usage row; returns a new frame.

    ``usage`` needs day, provider, model, input_tokens and output_tokens; batch,
    service_tier, cached_input_tokens and cache_write_tokens are optional (False,
    "default", 0, 0); other columns (project_id, requests, ...) are kept. Adds ``family``,
    ``fine_tuned``, ``priced``, ``unpriced_reason`` (empty when priced) and
    ``estimated_cost_usd`` (float dollars, NaN when unpriced).
    """
    prepared = _prepare_usage(usage)
    cost, reason = _price_rows(prepared, book, prepared["price_family"])
    return usage.assign(
        family=prepared["family"].to_numpy(),
        fine_tuned=prepared["fine_tuned"].to_numpy(),
        priced=(reason == "").to_numpy(),
        unpriced_reason=reason.to_numpy(),
        estimated_cost_usd=cost.to_numpy(),
    )


def unpriced_models(frame: pd.DataFrame) -> list[str]:
    """The raw model names of the rows ``estimate_cost`` could not price, sorted."""
    return sorted(frame.loc[~frame["priced"], "model"].fillna("").astype(str).unique())


def first_priced_day(models: pd.DataFrame, book: PriceBook) -> pd.Series:
    """For each row of ``models`` (provider, model, service_tier): the first day ``book``
    has a price for it, NaT when it has none (no model name, unknown family or tier).

    Usage of a model on or after that day is priced unless its own token counts are odd
    (negative, more cached than input tokens), so a caller looking for unpriced usage can
    leave the rest in the database instead of costing it.
    """
    n = len(models)
    prepared = _prepare_usage(models.assign(day=pd.Timestamp(0), input_tokens=np.zeros(n),
                                            output_tokens=np.zeros(n)))
    table = book.rate_table()
    first = table.groupby([table[c].astype(str) for c in _PRICE_KEY])["effective_from"].min()
    keys = pd.MultiIndex.from_arrays([prepared["provider"].astype(str),
                                      prepared["price_family"].astype(str),
                                      prepared["service_tier"].astype(str)])
    days = pd.Series(first.reindex(keys).to_numpy(), index=models.index,
                     dtype="datetime64[ns]")
    return days.where((prepared["model"] != "").to_numpy())


def _prepare_usage(usage: pd.DataFrame) -> pd.DataFrame:
    """Normalised working columns, on a fresh 0..n-1 index, for costing ``usage``."""
    missing = [c for c in _REQUIRED_USAGE_COLUMNS if c not in usage.columns]
    if missing:
        raise UsageFrameError(f"The usage data is missing column(s): {', '.join(missing)}.")
    n = len(usage)
    day = pd.to_datetime(usage["day"].to_numpy() if n else [])
    if getattr(day, "tz", None) is not None:
        day = day.tz_convert(None)
    prepared = pd.DataFrame(
        {
            "day": pd.DatetimeIndex(day).normalize().astype("datetime64[ns]"),
            "provider": _text(usage["provider"]).str.lower(),
            "model": _text(usage["model"]),
            "service_tier": _text(
                usage["service_tier"] if "service_tier" in usage else pd.Series([""] * n)
            ),
            "batch": _as_bool(usage["batch"]) if "batch" in usage else np.zeros(n, dtype=bool),
        }
    )
    for column in _TOKEN_COLUMNS:
        values = usage[column].to_numpy() if column in usage else np.zeros(n)
        prepared[column] = pd.to_numeric(values, errors="coerce")
        prepared[column] = prepared[column].fillna(0.0).astype("float64")
    standard = prepared["service_tier"].str.lower().isin(_STANDARD_TIER_ALIASES)
    prepared["service_tier"] = prepared["service_tier"].str.lower().where(~standard, DEFAULT_TIER)
    if "project_id" in usage:
        prepared["project_id"] = usage["project_id"].to_numpy()
    families = prepared[["model", "provider"]].drop_duplicates()
    pairs = zip(families["model"], families["provider"], strict=True)
    infos = [parse_model(model, provider) for model, provider in pairs]
    families["family"] = [i.family for i in infos]
    families["fine_tuned"] = [i.fine_tuned for i in infos]
    families["price_family"] = [i.price_family for i in infos]
    return prepared.merge(families, on=["model", "provider"], how="left", validate="many_to_one")


def _text(values: pd.Series) -> pd.Series:
    return pd.Series(values.to_numpy(), dtype=object).fillna("").astype(str).str.strip()


def _as_bool(values: pd.Series) -> np.ndarray:
    """Booleans from bools or the text forms exports use (True/FALSE/1)."""
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=bool)
    return _text(values).str.lower().isin(("true", "1", "1.0", "yes")).to_numpy()


def _price_rows(
    prepared: pd.DataFrame, book: PriceBook, price_family: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Cost and reason ('' when priced) for each prepared row at ``price_family``'s prices."""
    rates = _rates_for(prepared, book, price_family)
    uncached = (
        prepared["input_tokens"] - prepared["cached_input_tokens"] - prepared["cache_write_tokens"]
    )
    per_million = (
        uncached * rates["input_per_1m"]
        + prepared["cached_input_tokens"] * _cached_rate(rates)
        + prepared["cache_write_tokens"] * rates["cache_write_per_1m"].fillna(0.0)
        + prepared["output_tokens"] * rates["output_per_1m"]
    )
    cost = per_million / TOKENS_PER_PRICE_UNIT * _multiplier(prepared, rates)
    reason = _unpriced_reason(prepared, book, price_family, rates, uncached)
    return cost.where(reason == ""), reason


def _cached_rate(rates: pd.DataFrame) -> pd.Series:
    """Cached input is billed at the input rate where the book has no cached rate."""
    return rates["cached_input_per_1m"].fillna(rates["input_per_1m"])


def _multiplier(prepared: pd.DataFrame, rates: pd.DataFrame) -> np.ndarray:
    return np.where(prepared["batch"], rates["batch_discount"], 1.0)


def unit_rates(combos: pd.DataFrame, book: PriceBook) -> pd.DataFrame:
    """Dollars per token for each row of ``combos`` (day, provider, model, service_tier,
    batch): ``input_rate`` (uncached input), ``cached_rate`` and ``output_rate``, batch
    discount included; ``priced`` False (rates NaN) where ``estimate_cost`` could not price
    that model on that day whatever the counts, and ``unpriced_reason`` its words for why
    ('' when priced).

    ``estimate_cost`` is linear in the token counts of a row it can price, so a store can
    price its usage in SQL with these rates (``spend_daily``) and get the same dollars; only
    the checks on the counts themselves (negative, more cached than input) stay with the
    caller.
    """
    n = len(combos)
    prepared = _prepare_usage(combos.assign(input_tokens=np.zeros(n), output_tokens=np.zeros(n)))
    family = prepared["price_family"]
    rates = _rates_for(prepared, book, family)
    reason = _unpriced_reason(prepared, book, family, rates, pd.Series(np.zeros(n)))
    per_token = _multiplier(prepared, rates) / TOKENS_PER_PRICE_UNIT
    priced = (reason == "").to_numpy()
    out = combos.reset_index(drop=True).assign(
        input_rate=rates["input_per_1m"].to_numpy() * per_token,
        cached_rate=_cached_rate(rates).to_numpy() * per_token,
        output_rate=rates["output_per_1m"].to_numpy() * per_token,
        priced=priced, unpriced_reason=reason.to_numpy())
    for column in ("input_rate", "cached_rate", "output_rate"):
        out.loc[~priced, column] = np.nan
    return out


_SHIFTED = ["input_per_1m", "cached_input_per_1m", "cache_write_per_1m", "output_per_1m",
            "batch_discount", "unit", "source", "source_date"]


def shifted_book(book: PriceBook, step: int) -> PriceBook | None:
    """A book that prices each period at the previous (``step=1``) or next (``-1``) price
    of the same provider, family and tier; None when no family has more than one row.

    Reconciliation asks whether a bill matches the neighbouring price, which points at an
    effective date set wrong or a price change missing from the book."""
    rows = book.to_frame()
    shifted = rows.groupby(_PRICE_KEY)[_SHIFTED].shift(step)
    rows[_SHIFTED] = shifted
    rows = rows[shifted["input_per_1m"].notna()]
    return PriceBook.from_frame(rows, "shifted prices") if len(rows) else None


def _rates_for(prepared: pd.DataFrame, book: PriceBook, price_family: pd.Series) -> pd.DataFrame:
    """Float rates in effect on each row's day (NaN where none), aligned to ``prepared``."""
    left = pd.DataFrame(
        {
            "_row": np.arange(len(prepared)),
            "day": prepared["day"].to_numpy(),
            "provider": prepared["provider"].to_numpy(),
            "family": price_family.to_numpy(),
            "service_tier": prepared["service_tier"].to_numpy(),
        }
    ).sort_values("day", kind="stable")
    table = book.rate_table()
    for column in _PRICE_KEY:  # merge_asof wants identical key dtypes on both sides
        left[column] = left[column].astype(str)
        table[column] = table[column].astype(str)
    merged = pd.merge_asof(
        left,
        table,
        left_on="day",
        right_on="effective_from",
        by=_PRICE_KEY,
        direction="backward",
    )
    return merged.sort_values("_row").reset_index(drop=True)


def _unpriced_reason(
    prepared: pd.DataFrame,
    book: PriceBook,
    price_family: pd.Series,
    rates: pd.DataFrame,
    uncached: pd.Series,
) -> pd.Series:
    """Plain words for why a row cannot be priced; '' when it can. First cause wins."""
    table = book.rate_table()
    provider = prepared["provider"].astype(str)
    family = price_family.reset_index(drop=True).astype(str)
    tier = prepared["service_tier"].astype(str)
    known_family = pd.MultiIndex.from_arrays([provider, family]).isin(
        pd.MultiIndex.from_frame(table[["provider", "family"]].astype(str))
    )
    known_tier = pd.MultiIndex.from_arrays([provider, family, tier]).isin(
        pd.MultiIndex.from_frame(table[_PRICE_KEY].astype(str))
    )
    tokens = prepared[list(_TOKEN_COLUMNS)]
    conditions = [
        (prepared["model"] == "").to_numpy(),
        family.str.startswith("ft:").to_numpy() & ~known_family,
        ~known_family,
        ~known_tier,
        rates["input_per_1m"].isna().to_numpy(),
        (tokens < 0).any(axis=1).to_numpy(),
        (uncached < 0).to_numpy(),
        ((prepared["cache_write_tokens"] > 0) & rates["cache_write_per_1m"].isna()).to_numpy(),
    ]
    reason = pd.Series("", index=prepared.index, dtype=object)
    failing = np.logical_or.reduce(conditions)
    if not failing.any():
        return reason.astype(str)
    # Words are built only for the failing rows: usually few, and strings are slow.
    provider, family, tier = provider[failing], family[failing], tier[failing]
    day = prepared.loc[failing, "day"].dt.strftime("%Y-%m-%d")
    choices = [
        "no model name",
        "fine-tuned model: no price row for " + family + " (base prices do not apply)",
        "no " + provider + " price for model family '" + family + "'",
        "no price for service tier '" + tier + "' of " + family,
        "no price for " + family + " in effect on " + day,
        "negative token count",
        "cached tokens exceed input tokens",
        "no cache-write price for " + family,
    ]
    reason[failing] = np.select([c[failing] for c in conditions], choices)
    return reason.astype(str)


# --- what-if scenarios ---------------------------------------------------------------------


class Scenario(Protocol):
    """A what-if: prices each prepared usage row as it would be under the scenario."""

    name: str

    def price(
        self, prepared: pd.DataFrame, base_book: PriceBook, baseline: pd.Series
    ) -> tuple[pd.Series, pd.Series]:
        """Scenario cost and unpriced reason ('' when priced) per prepared row."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :func:`scenario_from_dict` turns back into the scenario."""
        ...


@dataclass(frozen=True)
class PriceListScenario:
    """Price usage with another price list ("what if GPT-5 cost $1.25 / $10").

    For every provider/family/tier the scenario's book prices, its rows replace the base
    book's rows entirely; everything else keeps base prices.
    """

    book: PriceBook
    name: str = ""

    def price(
        self, prepared: pd.DataFrame, base_book: PriceBook, baseline: pd.Series
    ) -> tuple[pd.Series, pd.Series]:
        del baseline  # every row is repriced from scratch
        book = base_book.replacing_families(self.book)
        return _price_rows(prepared, book, prepared["price_family"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "price_list",
            "name": self.name,
            "rows": self.book.to_frame().to_dict("records"),
        }


@dataclass(frozen=True)
class MigrationScenario:
    """Move ``share`` of one family's tokens to another ("70% of gpt-4o in Production to
    gpt-5-mini"). The moved share is priced at the target's prices with the same token
    counts, cache-hit share, batch flag and tier; fine-tunes of ``from_family`` are not
    moved. Not modelled: a reasoning target may emit more output tokens than the source.
    """

    from_family: str
    to_family: str
    share: float
    project_ids: tuple[str, ...] | None = None
    to_provider: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not self.from_family.strip() or not self.to_family.strip():
            raise ScenarioError("A migration needs both a model family to move from and to.")
        if self.from_family.strip().lower() == self.to_family.strip().lower():
            raise ScenarioError("A migration must move traffic to a different model family.")
        if not 0.0 <= float(self.share) <= 1.0:
            raise ScenarioError(f"The share moved must be between 0 and 1, not {self.share}.")
        object.__setattr__(self, "from_family", self.from_family.strip().lower())
        object.__setattr__(self, "to_family", self.to_family.strip().lower())
        object.__setattr__(self, "share", float(self.share))
        if self.project_ids is not None:
            object.__setattr__(self, "project_ids", tuple(str(p) for p in self.project_ids))

    def price(
        self, prepared: pd.DataFrame, base_book: PriceBook, baseline: pd.Series
    ) -> tuple[pd.Series, pd.Series]:
        moved = (prepared["price_family"] == self.from_family).to_numpy()
        if self.project_ids is not None:
            if "project_id" not in prepared:
                raise UsageFrameError("The usage data has no project_id column to filter on.")
            moved = moved & prepared["project_id"].astype(str).isin(self.project_ids).to_numpy()
        cost = baseline.copy()
        reason = pd.Series([""] * len(prepared), dtype=object)
        if self.share == 0.0 or not moved.any():
            return cost, reason
        target_rows = prepared[moved].reset_index(drop=True)
        if self.to_provider is not None:
            target_rows["provider"] = self.to_provider.strip().lower()
        target_cost, target_reason = _price_rows(
            target_rows, base_book, pd.Series([self.to_family] * len(target_rows))
        )
        cost[moved] = (1.0 - self.share) * baseline[moved].to_numpy() + (
            self.share * target_cost.to_numpy()
        )
        reason[moved] = target_reason.to_numpy()
        return cost, reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "migration",
            "name": self.name,
            "from_family": self.from_family,
            "to_family": self.to_family,
            "share": self.share,
            "project_ids": None if self.project_ids is None else list(self.project_ids),
            "to_provider": self.to_provider,
        }


def scenario_from_dict(data: dict[str, Any]) -> PriceListScenario | MigrationScenario:
    """Rebuild a scenario saved with ``to_dict`` (e.g. JSON from the store); validates it."""
    kind = data.get("kind")
    name = str(data.get("name") or "")
    if kind == "price_list":
        rows = pd.DataFrame(list(data.get("rows") or []))
        return PriceListScenario(PriceBook.from_frame(rows, f"scenario '{name}'"), name)
    if kind == "migration":
        try:
            return MigrationScenario(
                from_family=str(data["from_family"]),
                to_family=str(data["to_family"]),
                share=float(data["share"]),
                project_ids=data.get("project_ids"),
                to_provider=data.get("to_provider"),
                name=name,
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ScenarioError):
                raise
            raise ScenarioError(
                f"Scenario '{name}' is incomplete or malformed ({error})."
            ) from None
    raise ScenarioError(f"Unknown scenario kind {kind!r}; expected 'price_list' or 'migration'.")


def scenario_to_json(scenario: Scenario) -> str:
    """The scenario as a JSON string, for saving by name."""
    return json.dumps(scenario.to_dict(), sort_keys=True)


def scenario_from_json(text: str) -> PriceListScenario | MigrationScenario:
    """Inverse of :func:`scenario_to_json`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ScenarioError(f"The saved scenario is not valid JSON ({error}).") from None
    if not isinstance(data, dict):
        raise ScenarioError("The saved scenario is not a JSON object.")
    return scenario_from_dict(data)


def reprice(usage: pd.DataFrame, base_book: PriceBook, scenario: Scenario) -> pd.DataFrame:
    """Baseline and scenario cost for each usage row; returns a new frame.

    Adds ``family``, ``fine_tuned``, ``baseline_usd``, ``scenario_usd``, ``difference_usd``
    (scenario - baseline), ``priced`` (both sides priced) and ``unpriced_reason`` (the
    baseline's, else the scenario's prefixed "scenario: ").
    """
    prepared = _prepare_usage(usage)
    baseline, base_reason = _price_rows(prepared, base_book, prepared["price_family"])
    scenario_cost, scenario_reason = scenario.price(prepared, base_book, baseline)
    reason = base_reason.where(
        base_reason != "", ("scenario: " + scenario_reason).where(scenario_reason != "", "")
    )
    priced = (reason == "").to_numpy()
    return usage.assign(
        family=prepared["family"].to_numpy(),
        fine_tuned=prepared["fine_tuned"].to_numpy(),
        baseline_usd=baseline.to_numpy(),
        scenario_usd=scenario_cost.to_numpy(),
        difference_usd=np.where(priced, (scenario_cost - baseline).to_numpy(), np.nan),
        priced=priced,
        unpriced_reason=reason.to_numpy(),
    )


def reprice_summary(
    frame: pd.DataFrame, by: Sequence[str] = ("project_id", "model")
) -> pd.DataFrame:
    """Sum a :func:`reprice` frame by ``by``: baseline_usd, scenario_usd, difference_usd.

    Rows unpriced on either side are left out of all three sums (so baseline + difference
    = scenario) and counted in ``unpriced_rows``; the caller must show that count rather
    than let the sums pass for complete totals. A group with nothing priced sums to NaN.
    """
    keys = list(by)
    priced = frame["priced"].to_numpy(dtype=bool)
    sums = pd.DataFrame(
        {
            **{k: frame[k].to_numpy() for k in keys},
            "baseline_usd": np.where(priced, frame["baseline_usd"], np.nan),
            "scenario_usd": np.where(priced, frame["scenario_usd"], np.nan),
            "difference_usd": np.where(priced, frame["difference_usd"], np.nan),
            "unpriced_rows": (~priced).astype(int),
        }
    )
    grouped = sums.groupby(keys, dropna=False, sort=True)
    money = grouped[["baseline_usd", "scenario_usd", "difference_usd"]].sum(min_count=1)
    return money.join(grouped["unpriced_rows"].sum()).reset_index()


def monthly_difference(frame: pd.DataFrame, by: Iterable[str] = ()) -> pd.DataFrame:
    """:func:`reprice_summary` by calendar month (``month`` = first day, a Timestamp)."""
    month = pd.to_datetime(frame["day"]).dt.to_period("M").dt.start_time
    return reprice_summary(frame.assign(month=month.to_numpy()), by=["month", *by])


def price_table(book: PriceBook, day: dt.date | str) -> pd.DataFrame:
    """Every row of ``book`` as text with a ``status`` as seen on ``day``: ``in effect``
    (the row that prices that day), ``scheduled`` (a later effective date) or ``replaced``
    (an older row a later one superseded), sorted by provider, family, tier and date."""
    rows = book.to_frame()
    effective = pd.to_datetime(rows["effective_from"])
    started = effective <= pd.Timestamp(day)
    current = started & ~rows[started].duplicated(_PRICE_KEY, keep="last").reindex(
        rows.index, fill_value=True)
    status = np.select([current, ~started], ["in effect", "scheduled"], "replaced")
    return rows.assign(status=status)
