"""The worker processes that forecast many scopes at once: real processes, not mocks."""

from __future__ import annotations

import os
import time

import pytest

from analytics import workers

pytestmark = pytest.mark.skipif(workers._POOL.size < 2, reason="one core: calls run inline")


def _pool_pids() -> set[int]:
    workers.run_all(time.sleep, [(0.2,)] * 2 * workers._POOL.size)  # every worker started
    return {w.proc.pid for w in workers._POOL._all}


def test_calls_run_in_other_processes_and_answer_in_order():
    pool = _pool_pids()
    assert len(pool) == workers._POOL.size and os.getpid() not in pool
    assert set(workers.run_all(os.getpid, [()] * 4)) <= pool
    assert workers.run_all(divmod, [(7, 2), (9, 4), (10, 3)]) == [(3, 1), (2, 1), (3, 1)]


def test_a_calls_exception_is_raised_here_and_costs_no_worker():
    pool = _pool_pids()
    with pytest.raises(ZeroDivisionError):
        workers.run_all(divmod, [(1, 1), (1, 0)])
    assert {w.proc.pid for w in workers._POOL._all} == pool
    assert set(workers.run_all(os.getpid, [()] * 4)) <= pool


def test_a_worker_that_died_is_replaced():
    pool = _pool_pids()
    for worker in list(workers._POOL._all):
        worker.proc.kill()
        worker.proc.wait()
    again = set(workers.run_all(os.getpid, [()] * 4))
    assert again and not again & pool
