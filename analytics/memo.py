"""Read results kept between page visits until the store's data changes.

Some figures cover all of time (the first and last day of every API key, the models nobody
has priced) or need costing millions of usage rows: at a million rows each costs seconds,
yet it changes only when data is imported or deleted. ``per_data_version`` keeps a function's
result under the store (the engine), its data version (``series.data_version``: every
import, deletion and purge changes it), the principal and the call's arguments. A visit after
the first costs one small query for the version, a new import is seen at once, and a result
is never shared between users who see different projects.

The cache lives in the process, not in ``st.cache_data``: analytics never imports Streamlit,
and the CLI and cron call the same functions. Arguments must be hashable (a ``PriceBook``
is, by its rows); a cached frame is copied out, so a caller may change what it gets.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import lru_cache, wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

import pandas as pd
from sqlalchemy import Engine

from analytics.access import Principal
from analytics.series import data_version

P = ParamSpec("P")
T = TypeVar("T")
MAX_ENTRIES = 32  # results per function: a few users x a few date ranges or price books
_CACHES: list[Any] = []


def per_data_version(fn: Callable[Concatenate[Engine, Principal, P], T]
                     ) -> Callable[Concatenate[Engine, Principal, P], T]:
    """Decorate ``fn(engine, principal, ...)`` to keep its results per data version."""

    @lru_cache(maxsize=MAX_ENTRIES)
    def remembered(engine: Engine, version: str, principal: Principal,
                   args: tuple[Hashable, ...], kwargs: tuple[tuple[str, Hashable], ...]) -> T:
        del version  # part of the key only
        return fn(engine, principal, *args, **dict(kwargs))  # type: ignore[arg-type]

    @wraps(fn)
    def call(engine: Engine, principal: Principal, *args: P.args, **kwargs: P.kwargs) -> T:
        found = remembered(engine, data_version(engine), principal, tuple(args),
                           tuple(sorted(kwargs.items())))
        return found.copy() if isinstance(found, pd.DataFrame) else found  # type: ignore[return-value]

    _CACHES.append(remembered)
    return call


def clear_all() -> None:
    """Forget every kept result (benchmarks timing a cold visit; tests). The data version
    makes this unnecessary otherwise."""
    for cache in _CACHES:
        cache.cache_clear()
