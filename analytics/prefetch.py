"""Run a producer of work items one step ahead of its consumer, on a second thread.

An import reads and checks a file (Arrow's CSV parsing, hashing, mostly C code that lets go of
the GIL) while it writes the previous batch to the store (SQLite's own C code, which lets go
of the GIL too). Done one after the other, each waits for the other; on two cores they
overlap. The producer keeps at most ``depth`` items ahead, so memory stays bounded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    """An exception raised by the producer, carried to the consumer to be raised there."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield what ``items`` yields, computed on a helper thread up to ``depth`` items ahead.

    An exception in the producer is raised in the consumer at the point the item would have
    come. When the consumer stops early (an error of its own, or it closes the generator),
    the producer is told to stop and is waited for, so no thread outlives the call and no
    file stays open behind it.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as error:  # noqa: BLE001 - every failure goes to the consumer
            offer(_Failed(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="burnrate-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = handoff.get(timeout=0.5)
            except queue.Empty:
                if worker.is_alive():
                    continue
                try:  # it may have handed over its last item just before ending
                    item = handoff.get_nowait()
                except queue.Empty:
                    raise RuntimeError("the prefetch thread ended without a result") from None
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


__all__ = ["prefetched"]
