"""The prefetch thread an import reads its file on: same items in the same order, the
producer's error raised in the consumer, and no thread left behind however the consumer
stops. (Issue: scale.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from analytics.prefetch import prefetched


def _threads() -> int:
    return sum(thread.name == "burnrate-prefetch" for thread in threading.enumerate())


def test_items_arrive_in_order_and_the_thread_ends() -> None:
    assert list(prefetched(iter(range(1000)), depth=3)) == list(range(1000))
    assert _threads() == 0


def test_the_producers_error_is_raised_in_the_consumer_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3 is bad")

    seen = []
    with pytest.raises(ValueError, match="line 3 is bad"):
        for item in prefetched(items()):
            seen.append(item)
    assert seen == [1, 2]
    assert _threads() == 0


def test_a_consumer_that_stops_early_stops_and_closes_the_producer() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            for n in range(10_000):
                produced.append(n)
                yield n
        finally:
            closed.set()

    stream = prefetched(items(), depth=2)
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()
    assert closed.is_set(), "the producer's generator was closed (its file with it)"
    assert _threads() == 0
    assert len(produced) <= 2 + 2 + 1, "it ran at most `depth` items ahead"


def test_a_consumer_error_does_not_leave_the_thread_running() -> None:
    with pytest.raises(RuntimeError):
        for item in prefetched(iter(range(10_000))):
            if item == 5:
                raise RuntimeError("the store refused the batch")
    assert _threads() == 0
