"""Prices an Owner adds in the app, stored on top of the seeded price file.

Rows in ``price_overrides`` are only ever inserted, never updated or deleted: a correction is
a new row, and for one provider, family, tier and effective day the newest row wins. The
table is therefore its own history, and every insert has its audit row. Prices feed
*estimates* only; billed cost in the ``cost`` table is never touched by a price change.

Example:
    >>> add_price(engine, owner, {"provider": "openai", "family": "gpt-5",
    ...     "effective_from": "2027-01-01", "input_per_1m": "1", "output_per_1m": "8"})
    ... # doctest: +SKIP
    >>> current_book(engine).price_for("openai", "gpt-5", "2027-01-02")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from analytics import audit
from analytics.access import Principal
from analytics.pricing import PRICE_COLUMNS, Price, PriceBook, PriceBookError, load_price_book
from analytics.store import PriceRow, write_transaction

# The store keeps rates as Numeric(20, 6) and the batch discount as Numeric(6, 4); a value
# with more decimals would be rounded silently, so it is refused instead.
_RATE_DECIMALS = 6
_DISCOUNT_DECIMALS = 4
_RATES = ("input_per_1m", "cached_input_per_1m", "cache_write_per_1m", "output_per_1m")
_KEY = ["provider", "family", "service_tier", "effective_from"]


def add_price(engine: Engine, principal: Principal, row: Mapping[str, Any]) -> Price:
    """Validate and store one Owner-entered price row; return it as a :class:`Price`.

    ``row`` holds the price file's columns (provider, family, effective_from, input_per_1m,
    output_per_1m required; the rest optional). Bad values raise ``PriceBookError`` naming
    the column.
    """
    principal.require("add or change prices", owner_only=True)
    known = {k: v for k, v in row.items() if k in PRICE_COLUMNS}
    book = PriceBook.from_frame(pd.DataFrame([known]), "the new price")
    text = book.to_frame().iloc[0]
    price = book.price_for(text["provider"], text["family"], text["effective_from"],
                           text["service_tier"])
    assert price is not None  # a one-row book prices its own key on its own day
    _check_precision(price)
    values = {
        "provider": price.provider, "family": price.family, "service_tier": price.service_tier,
        "effective_from": price.effective_from, "input_per_1m": price.input_per_1m,
        "cached_input_per_1m": price.cached_input_per_1m,
        "cache_write_per_1m": price.cache_write_per_1m, "output_per_1m": price.output_per_1m,
        "batch_discount": price.batch_discount, "unit": price.unit, "source": price.source,
        "source_date": price.source_date,
    }
    with write_transaction(engine) as conn:
        before = _latest_for_key(conn, price)
        conn.execute(PriceRow.__table__.insert().values(
            **values, created_by=principal.username,
            created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
        audit.record(conn, principal.username, "price.add",
                     f"{price.provider}:{price.family}:{price.service_tier}:"
                     f"{price.effective_from.isoformat()}", before, values)
    return price


def _check_precision(price: Price) -> None:
    for column in _RATES:
        value = getattr(price, column)
        if value is not None and _decimals(value) > _RATE_DECIMALS:
            raise PriceBookError(
                f"the new price: {column} {value} has more than {_RATE_DECIMALS} decimals.")
    if _decimals(price.batch_discount) > _DISCOUNT_DECIMALS:
        raise PriceBookError(f"the new price: batch_discount {price.batch_discount} has more "
                             f"than {_DISCOUNT_DECIMALS} decimals.")


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _latest_for_key(conn: Any, price: Price) -> dict[str, Any] | None:
    """The stored row this one supersedes (same key), for the audit's "before"."""
    table = PriceRow.__table__
    row = conn.execute(
        select(table).where(
            table.c.provider == price.provider, table.c.family == price.family,
            table.c.service_tier == price.service_tier,
            table.c.effective_from == price.effective_from)
        .order_by(table.c.id.desc()).limit(1)).mappings().first()
    if row is None:
        return None
    return {k: _plain(row[k]) if k in (*_RATES, "batch_discount") else row[k]
            for k in PRICE_COLUMNS}


def price_history(engine: Engine) -> pd.DataFrame:
    """Every stored price row, newest first, with who added it and ``superseded`` (a later
    row for the same provider, family, tier and day replaced it)."""
    table = PriceRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.id.desc())).mappings().all()
    columns = ["id", *PRICE_COLUMNS, "created_by", "created_at"]
    frame = pd.DataFrame([dict(r) for r in rows], columns=columns)
    for column in (*_RATES, "batch_discount"):  # the store pads to its scale: 2.500000
        frame[column] = frame[column].map(_plain)
    frame["superseded"] = frame.duplicated(_KEY, keep="first")  # newest first: later = older
    return frame


def _plain(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(format(value.normalize(), "f"))


def stored_rows(engine: Engine) -> pd.DataFrame:
    """The stored rows in effect (newest per key), in the price file's columns."""
    history = price_history(engine)
    return history.loc[~history["superseded"], list(PRICE_COLUMNS)].reset_index(drop=True)


def current_book(engine: Engine, seed: str | Path | None = None) -> PriceBook:
    """The price book the app prices with: the seed file (``data/prices.csv`` unless
    ``seed`` names another) plus the stored rows; a stored row replaces a file row with the
    same provider, family, tier and effective day."""
    stored = stored_rows(engine)
    return load_price_book(seed, extra=stored if len(stored) else None,
                           extra_name="stored prices")
