"""After the data changes, recompute in the background what users were looking at.

Heavy all-time figures are kept per data version (``memo``, the forecasts), so the first
visit after an import used to pay for them: seconds at a million usage rows. ``refresh``
makes the calls users made lately (``memo.stale_calls``: same function, principal and
arguments) again for the new version on one background thread, so the next visit finds them
kept; a visit arriving while its result is being computed waits for it (``memo``'s per-key
lock) instead of computing it twice.

Two triggers: the app calls ``refresh`` right after an import, sync or deletion it made, and
``watch`` polls the data version every few seconds to notice imports made by another process
(``python -m analytics import``, cron).

One thread does the work, one call after another: the server's cores stay free for the
people using it, and the forecasts it runs spread over the worker processes themselves. A
call that fails in the background is logged and left for the next caller to compute (and
report) as usual; nothing here can reach a user or stop the app.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from analytics import spend_daily
from analytics.memo import stale_calls
from analytics.series import data_version
from analytics.store import is_current

WATCH_EVERY_S = 5.0  # a CLI import shows up warm a few seconds after it ends

log = logging.getLogger(__name__)


class _Refresher:
    """Stores waiting for a refresh (each at most once) and the daemon thread serving them."""

    def __init__(self) -> None:
        self._wanted: dict[Engine, None] = {}  # an ordered set: first asked, first served
        self._busy = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def ask(self, engine: Engine) -> None:
        with self._changed:
            self._wanted[engine] = None  # asked twice before it ran: one refresh serves both
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="burnrate-refresh",
                                                daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def _serve(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._wanted))
                engine = next(iter(self._wanted))
                del self._wanted[engine]
                self._busy = True
            try:
                _refresh_now(engine)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def wait_idle(self, timeout: float | None) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._wanted and not self._busy,
                                          timeout)


_REFRESHER = _Refresher()


def _refresh_now(engine: Engine) -> int:
    """Make every stale recent call again; the number made. Failures are logged."""
    if not is_current(engine):
        return 0
    try:
        version = data_version(engine)
    except Exception:  # the store went away: nothing to refresh
        log.warning("Background refresh skipped: the store could not be read.", exc_info=True)
        return 0
    try:  # first the spend rollup the reports read (spend_daily): its marked days
        spend_daily.refresh(engine)
    except Exception:  # the next report rebuilds it, and says so if it cannot
        log.warning("Background refresh of the spend rollup failed.", exc_info=True)
    made = 0
    for call in stale_calls(engine, version):
        if not is_current(engine) or _exiting():  # disposed meanwhile: using it would open
            break  # a new pool
        try:
            call.rerun()
        except Exception:  # the next visit computes it and shows any error in plain words
            if _exiting():  # the process is ending under it (its worker pools refuse work)
                break
            log.warning("Background refresh of %s failed; it will be computed when next "
                        "asked.", call, exc_info=True)
        else:
            made += 1
    return made


def _exiting() -> bool:
    """Whether the interpreter is shutting down (its main thread has ended)."""
    return not threading.main_thread().is_alive()


def refresh(engine: Engine) -> None:
    """Recompute, in the background, the results users asked for lately that the store's
    current data makes stale. Returns at once; ``wait_idle`` waits for the work."""
    _REFRESHER.ask(engine)


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until every refresh asked for has finished; False if ``timeout`` ran out first
    (benchmarks and tests: the app never waits)."""
    return _REFRESHER.wait_idle(timeout)


_watched: dict[Engine, threading.Thread] = {}
_watched_lock = threading.Lock()


def watch(engine: Engine, every_s: float = WATCH_EVERY_S) -> None:
    """Start, once per store, a daemon thread that polls the data version every ``every_s``
    seconds and refreshes when it changed (an import by another process). It stops when the
    store's engine is disposed. Cheap to call on every page run."""
    with _watched_lock:
        thread = _watched.get(engine)
        if thread is not None and thread.is_alive():
            return
        seen = _version_or_none(engine)
        thread = threading.Thread(target=_watch, args=(engine, every_s, seen),
                                  name="burnrate-watch", daemon=True)
        _watched[engine] = thread
        thread.start()


def _version_or_none(engine: Engine) -> str | None:
    """The data version, read here so that any change after ``watch`` returns is noticed;
    None while the store cannot be read (the watcher reads it later)."""
    try:
        return data_version(engine)
    except Exception:
        return None


def _watch(engine: Engine, every_s: float, seen: str | None) -> None:
    failing = False
    while True:
        time.sleep(every_s)
        if not is_current(engine):  # disposed while we slept: reading would reopen it
            break
        try:
            version = data_version(engine)
        except Exception:
            if not is_current(engine):
                break  # disposed while we read: not a fault
            if not failing:  # once per outage, not every few seconds
                log.warning("Watching the store for new data failed; retrying.", exc_info=True)
            failing = True
        else:
            failing = False
            if seen is not None and version != seen:
                refresh(engine)
            seen = version
    with _watched_lock:
        if _watched.get(engine) is threading.current_thread():
            del _watched[engine]
