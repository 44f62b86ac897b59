"""Worker processes that run many CPU-bound calls at once: forecasts for every project.

A forecast is mostly Python (Prophet spends more of a fit in its pandas set-up than in Stan),
so threads would queue on the GIL; only processes use the second core. They are not
``concurrent.futures.ProcessPoolExecutor``'s: its "spawn" and "forkserver" children re-run
the parent's ``__main__`` script, and under Streamlit ``__main__`` *is* the app (the script
runner installs app.py as ``__main__``), so every worker would run the app; "fork" copies a
multi-threaded server mid-flight, which can deadlock. Instead each worker is a plain
``python -m analytics.workers`` that reads pickled calls on stdin and answers on stdout, so it
behaves the same under the Streamlit server, the CLI and tests.

Workers start on the first parallel batch and stay for the parent's life (the parent's pipe
closing ends them): starting one costs about two seconds of imports, a forecast a tenth.
Only this package's own functions and data cross the pipe; nothing untrusted is unpickled.
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

MAX_WORKERS = 4  # each worker holds pandas and Prophet (~200 MB resident)
ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


class WorkerDied(RuntimeError):
    """A worker process ended mid-call (killed, or out of memory)."""


class _Worker:
    def __init__(self) -> None:
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=os.environ | {"PYTHONPATH": path})

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[bool, T | Exception]:
        request = pickle.dumps((fn, args))  # fails here, not half-written, if it cannot pickle
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(request)
            self.proc.stdin.flush()
            return pickle.load(self.proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise WorkerDied(f"a worker process ended (exit code {self.proc.poll()})") from exc

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the worker sees the end of its input and exits
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Pool:
    """Up to `size` workers, each lent to one call at a time (Streamlit sessions share them)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._forget()

    def _forget(self) -> None:
        """Start empty: also in a forked child, whose parent's workers are not its own."""
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._free = threading.Condition()

    def _borrow(self) -> _Worker:
        with self._free:
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        return worker
                    self._all.remove(worker)  # ended while idle: replace it
                if len(self._all) < self.size:
                    worker = _Worker()
                    self._all.append(worker)
                    return worker
                self._free.wait()

    def run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        worker = self._borrow()
        try:
            ok, value = worker.call(fn, args)
        except BaseException:
            with self._free:
                self._all.remove(worker)  # its pipe may hold half an answer: never reuse it
                self._free.notify()
            worker.close()
            raise
        with self._free:
            self._idle.append(worker)
            self._free.notify()
        if not ok:
            raise value  # type: ignore[misc]  # the call's own exception, as if run here
        return value  # type: ignore[return-value]

    def close(self) -> None:
        with self._free:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            worker.close()


_POOL = _Pool(max(1, min(MAX_WORKERS, os.cpu_count() or 1)))
atexit.register(_POOL.close)
os.register_at_fork(after_in_child=_POOL._forget)


def run_all(fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> list[T]:
    """``[fn(*args) for args in calls]``, spread over one worker process per core.

    `fn` and the arguments must pickle (a module-level function, plain data). With one core
    or one call it runs here, in this process. An exception a call raises is raised here.
    """
    if len(calls) < 2 or _POOL.size < 2:
        return [fn(*args) for args in calls]
    with ThreadPoolExecutor(_POOL.size) as threads:
        return list(threads.map(lambda args: _POOL.run(fn, args), calls))


def _serve() -> None:
    """The worker's loop: a pickled (function, args) in, a pickled (ok, value) out."""
    calls = sys.stdin.buffer
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not mix in answers
    while True:
        try:
            fn, args = pickle.load(calls)
        except EOFError:
            return
        try:
            answer = pickle.dumps((True, fn(*args)))
        except Exception as exc:  # sent back and raised in the parent
            try:
                answer = pickle.dumps((False, exc))
            except Exception:
                answer = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        answers.write(answer)
        answers.flush()


if __name__ == "__main__":
    _serve()
