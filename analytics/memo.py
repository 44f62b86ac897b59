"""Read results kept between page visits until the store's data changes, and the calls users
made lately, so that ``analytics.refresh`` can make them again in the background after an
import.

Some figures cover all of time (the first and last day of every API key, the models nobody
has priced) or need costing millions of usage rows: at a million rows each costs seconds,
yet it changes only when data is imported or deleted. ``per_data_version`` keeps a function's
result under the store (the engine), its data version (``series.data_version``: every
import, deletion and purge changes it), the principal and the call's arguments. A visit after
the first costs one small query for the version, a new import is seen at once, and a result
is never shared between users who see different projects.

The first visit after an import would still pay the seconds, so each *user's* call (the
outermost kept call: the ones it makes inside are its parts) is remembered with its
principal and arguments (``Call``), the newest ``MAX_RECENT`` of them; ``refresh`` makes
them again for the new version while nobody waits. A caller asking for a result that is
being computed (by the refresh, or another session) waits for it on a per-key lock and then
finds it kept, rather than computing it a second time. ``replayed`` gives the same to a
function that keeps its results itself (the forecasts, ``forecasting.py``).

The cache lives in the process, not in ``st.cache_data``: analytics never imports Streamlit,
and the CLI and cron call the same functions. Arguments must be hashable (a ``PriceBook``
is, by its rows); a cached frame is copied out, so a caller may change what it gets. Only
the newest data version's results of a store are kept (``_Kept``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

import pandas as pd
from sqlalchemy import Engine

from analytics.access import Principal
from analytics.series import data_version

P = ParamSpec("P")
T = TypeVar("T")
MAX_ENTRIES = 32  # results per function: a few users x a few date ranges or price books
MAX_RECENT = 48  # users' calls made again after a change: a few users x a few pages
RECENT_FOR_S = 7 * 86_400  # a call nobody made for a week is not worth recomputing
WAIT_FOR_OTHERS_S = 60.0  # longest wait for the same result being computed elsewhere
_CACHES: list[_Kept] = []

# The store and data version a kept call is computing for in this thread (or a refresh is):
# calls made inside it are its parts, not something a user asked for, and use the same
# version, read once per visit rather than once per part.
_computing_for: ContextVar[tuple[Engine, str] | None] = ContextVar("burnrate_memo_for",
                                                                   default=None)


@dataclass
class Call:
    """A call a user made, to make again for a newer data version."""

    fn: Callable[..., object]  # the decorated function, so a rerun is kept as the call was
    engine: Engine
    principal: Principal
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    asked_at: float  # time.monotonic() of a user's latest call
    done_for: str  # the data version its result is known to be kept for

    def rerun(self) -> None:
        """Make the call again (its result is kept by the function's cache); not counted as
        asked by a user, so interest fades when users stop looking."""
        version = data_version(self.engine)
        token = _computing_for.set((self.engine, version))
        try:
            self.fn(self.engine, self.principal, *self.args, **self.kwargs)
        finally:
            _computing_for.reset(token)
        self.done_for = version  # read before the call: a change during it is redone later

    def __str__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"{name} for {self.principal.username}"  # arguments may be a whole price book


class _Recent:
    """The newest ``MAX_RECENT`` distinct calls users made, oldest first."""

    def __init__(self) -> None:
        self._calls: OrderedDict[Hashable, Call] = OrderedDict()
        self._lock = threading.Lock()

    def asked(self, call: Call) -> None:
        key = (call.fn, call.engine, call.principal, _frozen(call.args), _frozen(call.kwargs))
        with self._lock:
            self._calls[key] = call
            self._calls.move_to_end(key)
            while len(self._calls) > MAX_RECENT:
                self._calls.popitem(last=False)

    def stale(self, engine: Engine, version: str) -> list[Call]:
        """The store's calls asked lately whose result is not kept for ``version``, newest
        first (the page just looked at is warmed first); older ones are forgotten."""
        since = time.monotonic() - RECENT_FOR_S
        with self._lock:
            for key in [k for k, c in self._calls.items() if c.asked_at < since]:
                del self._calls[key]
            return [c for c in reversed(self._calls.values())
                    if c.engine is engine and c.done_for != version]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


class _KeyLocks:
    """One lock per call being computed, so the same result is never computed twice at once.

    Locks nest only along the call graph (a kept function calling another), which has no
    cycles, so two threads can never wait for each other; a thread may take its own lock
    again."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[threading.RLock, list[int]]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def held(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.setdefault(key, (threading.RLock(), [0]))
            users[0] += 1
        # Waiting is bounded: if the other computation hangs (a blocked statement), the
        # caller computes the result itself rather than hang with it.
        acquired = lock.acquire(timeout=WAIT_FOR_OTHERS_S)
        try:
            yield
        finally:
            if acquired:
                lock.release()
            with self._guard:
                users[0] -= 1
                if not users[0]:
                    del self._locks[key]


_RECENT = _Recent()
_COMPUTING = _KeyLocks()


def _frozen(value: object) -> Hashable:
    """A hashable stand-in for arguments: sequences as tuples, mappings as sorted pairs."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(value)
    return value  # type: ignore[return-value]  # anything else must hash as it is


def _version(engine: Engine) -> str:
    """The store's data version: the one the enclosing kept call computes for, else read."""
    outer = _computing_for.get()
    return outer[1] if outer is not None and outer[0] is engine else data_version(engine)


@contextmanager
def _asked(fn: Callable[..., object], engine: Engine, principal: Principal,
           args: tuple[Any, ...], kwargs: dict[str, Any], version: str) -> Iterator[None]:
    """Run a kept call; remember it once it succeeded if a user made it (it is not part of
    another kept call, nor a rerun). A failing call is not remembered: refreshing it would
    fail again."""
    if _computing_for.get() is not None:
        yield
        return
    token = _computing_for.set((engine, version))
    try:
        yield
    finally:
        _computing_for.reset(token)
    _RECENT.asked(Call(fn, engine, principal, args, kwargs, time.monotonic(), version))


class _Kept:
    """One function's results, newest ``MAX_ENTRIES`` kept, and only for the newest data
    version of each store: once a store's data changed, its older results can never be asked
    for again (versions only move on), and at a million rows one result can weigh tens of MB."""

    def __init__(self) -> None:
        self._results: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._versions: dict[Engine, str] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        engine, version = key[0], key[1]
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]  # type: ignore[no-any-return]
        result = compute()
        with self._lock:
            if self._versions.get(engine) != version:
                self._versions[engine] = version
                for old in [k for k in self._results if k[0] is engine and k[1] != version]:
                    del self._results[old]
            self._results[key] = result
            while len(self._results) > MAX_ENTRIES:
                self._results.popitem(last=False)
        return result

    def __len__(self) -> int:
        return len(self._results)

    def keys(self) -> list[tuple[Any, ...]]:
        """(engine, data version, principal, args, kwargs) of each kept result, oldest first."""
        with self._lock:
            return list(self._results)

    def clear(self) -> None:
        with self._lock:
            self._results.clear()
            self._versions.clear()


def per_data_version(fn: Callable[Concatenate[Engine, Principal, P], T]
                     ) -> Callable[Concatenate[Engine, Principal, P], T]:
    """Decorate ``fn(engine, principal, ...)`` to keep its results per data version."""
    kept = _Kept()

    @wraps(fn)
    def call(engine: Engine, principal: Principal, *args: P.args, **kwargs: P.kwargs) -> T:
        version = _version(engine)
        key = (engine, version, principal, tuple(args), tuple(sorted(kwargs.items())))
        with _asked(call, engine, principal, args, kwargs, version), \
                _COMPUTING.held((call, *key)):
            found = kept.get(key, lambda: fn(engine, principal, *args, **kwargs))
        return found.copy() if isinstance(found, pd.DataFrame) else found  # type: ignore[return-value]

    call.kept = kept  # type: ignore[attr-defined]  # tests look at what is held
    _CACHES.append(kept)
    return call


def replayed(fn: Callable[Concatenate[Engine, Principal, P], T]
             ) -> Callable[Concatenate[Engine, Principal, P], T]:
    """Decorate ``fn(engine, principal, ...)``, which keeps its own results per data version
    (the forecasts), so that users' calls are made again by ``refresh`` and an identical call
    made meanwhile waits for the one running, then finds its results kept.

    Also for a public function that resolves defaults (the current price book, the billing
    day) before calling a kept one: the user's call is then the one remembered, so a refresh
    resolves them again instead of replaying an old price book.

    Arguments may be lists or mappings (they are frozen for the keys)."""

    @wraps(fn)
    def call(engine: Engine, principal: Principal, *args: P.args, **kwargs: P.kwargs) -> T:
        version = _version(engine)
        key = (call, engine, version, principal, _frozen(args), _frozen(kwargs))
        with _asked(call, engine, principal, args, kwargs, version), _COMPUTING.held(key):
            return fn(engine, principal, *args, **kwargs)

    return call


def stale_calls(engine: Engine, version: str) -> list[Call]:
    """The calls users made lately on this store whose results are not kept for ``version``,
    newest first: what ``refresh`` makes again."""
    return _RECENT.stale(engine, version)


def clear_all() -> None:
    """Forget every kept result and remembered call (benchmarks timing a cold visit; tests).
    The data version makes this unnecessary otherwise."""
    for cache in _CACHES:
        cache.clear()
    _RECENT.clear()
