"""Worked solutions to the exercises of notebook 04 (map vs as_completed). Try them yourself first!"""

from __future__ import annotations

import itertools
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait


def in_finish_order(task, items):
    """Run ``task(item)`` for every item on 8 threads; return ``[(item, result), ...]`` in the order
    the tasks finished."""
    pairs = []
    with ThreadPoolExecutor(max_workers=8) as executor:
        item_of = {executor.submit(task, item): item for item in items}  # future -> its input
        for future in as_completed(item_of):
            pairs.append((item_of[future], future.result()))
    return pairs


def first_result(task, items):
    """Return ``(item, result)`` of the first task to finish, as soon as it is known, and cancel
    every task that has not started. (Running tasks cannot be stopped; they finish in the background.)"""
    executor = ThreadPoolExecutor(max_workers=4)  # no `with`: its exit would wait for the slow ones
    try:
        item_of = {executor.submit(task, item): item for item in items}
        future = next(as_completed(item_of))
        return item_of[future], future.result()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def bounded_run(task, items, limit):
    """Run ``task(item)`` for every item of the iterable ``items`` (which may be very long) with at most
    ``limit`` tasks in flight, reading the input only as tasks finish. Returns the results in finish
    order."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    items = iter(items)
    results = []
    with ThreadPoolExecutor(max_workers=limit) as executor:
        pending = {executor.submit(task, item) for item in itertools.islice(items, limit)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                results.append(future.result())
            for item in itertools.islice(items, len(done)):  # one new task per finished one
                pending.add(executor.submit(task, item))
    return results
