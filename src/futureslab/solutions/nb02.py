"""Worked solutions to the exercises of notebook 02 · Futures."""

from __future__ import annotations

import concurrent.futures as cf


def start_all(pool, task, items):
    """02.1: submit ``task(item)`` for every item and return the futures at once, in order."""
    # submit() returns immediately: do not call result() here, that would wait for each task.
    return [pool.submit(task, item) for item in items]


def result_or(future, timeout, default):
    """02.2: ``future``'s result if it is ready within ``timeout`` seconds, else ``default``.

    An exception raised by the task is not ours to hide: ``result()`` re-raises it, and we let it go.
    """
    try:
        return future.result(timeout=timeout)
    except cf.TimeoutError:  # the builtin TimeoutError only from 3.11 on; this name works on all
        return default


def first_done(pool, task, items):
    """02.3: the result of whichever ``task(item)`` finishes first; cancel those not started yet."""
    futures = [pool.submit(task, item) for item in items]
    done, not_done = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
    for future in not_done:
        future.cancel()  # succeeds only for tasks still waiting in the queue
    return next(iter(done)).result()
