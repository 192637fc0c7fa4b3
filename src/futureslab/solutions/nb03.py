"""Worked solutions to the exercises of notebook 03 (callbacks). Try them yourself first!"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


def run_with_progress(task, items, report):
    """Run ``task(item)`` for every item on 4 threads; each time one finishes, a done-callback calls
    ``report(done_so_far, total)``. Returns the results in input order."""
    items = list(items)
    total = len(items)
    lock = threading.Lock()
    state = {"done": 0}

    def on_done(future):
        with lock:  # count and report as one step, so the counts come out 1, 2, ..., total
            state["done"] += 1
            report(state["done"], total)

    with ThreadPoolExecutor(max_workers=4) as executor:
        futures = [executor.submit(task, item) for item in items]
        for future in futures:
            future.add_done_callback(on_done)
    return [future.result() for future in futures]


def total_from_callbacks(task, items):
    """Run ``task(item)`` for every item on 4 threads and add each result to a running total from a
    done-callback, under a lock. Returns the total."""
    lock = threading.Lock()
    state = {"total": 0}

    def add_result(future):
        value = future.result()
        with lock:  # read, add and write back as one step: no other callback can slip in between
            state["total"] = state["total"] + value

    with ThreadPoolExecutor(max_workers=4) as executor:
        for item in items:
            executor.submit(task, item).add_done_callback(add_result)
    # Leaving the `with` block waited for every task, and each callback ran before its worker was free.
    return state["total"]


def run_until_failure(task, items):
    """Run ``task(item)`` for every item on 2 threads; when one fails, cancel every task that has not
    started. Returns ``{item: "ok" | "failed" | "cancelled"}``, each label set by a done-callback."""
    labels = {}
    item_of = {}  # future -> item

    def on_done(future):
        item = item_of[future]
        if future.cancelled():  # check first: result() or exception() would raise CancelledError
            labels[item] = "cancelled"
        elif future.exception() is not None:
            labels[item] = "failed"
            for other in item_of:
                other.cancel()  # only works on tasks still waiting; each one's callback runs now
        else:
            labels[item] = "ok"

    with ThreadPoolExecutor(max_workers=2) as executor:
        for item in items:
            item_of[executor.submit(task, item)] = item
        for future in list(item_of):
            future.add_done_callback(on_done)
    return labels
