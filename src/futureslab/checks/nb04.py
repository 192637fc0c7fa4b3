"""Checkers for notebook 04 (map vs as_completed).

Each checker hands your function a *task* of its own, wrapped in a :class:`~futureslab.trace.Tracer`,
so it can see when each task started and finished and how many ran at once. Call them as
``check.in_finish_order(in_finish_order)`` and so on.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from ..trace import Tracer
from . import expect, exercise, run_with_timeout

__all__ = ["in_finish_order", "first_result", "bounded_run"]


def _by_item(item) -> str:
    return str(item)


# ------------------------------------------------------------------------------------ exercise 04.1

def _reverse_task(item: int) -> int:
    time.sleep(0.04 * (8 - item))  # item 0 is the slowest, item 7 the quickest
    return item * item


@exercise("04.1", "Results in the order they finish",
          hint="Submit every item and keep a dict {future: item}; loop over as_completed(that dict) "
               "and append (item_of[future], future.result()).",
          solution="futureslab.solutions.nb04:in_finish_order")
def in_finish_order(answer):
    items = list(range(8))
    with Tracer() as tracer:
        result = run_with_timeout(answer, tracer.wrap(_reverse_task, label=_by_item), items, timeout=15)
    ends = {int(r.task): r.end for r in tracer.records}

    expect(isinstance(result, list), f"in_finish_order should return a list of (item, result) pairs, "
                                     f"got {type(result).__name__}.")
    expect(all(isinstance(p, tuple) and len(p) == 2 for p in result),
           f"each entry should be an (item, result) pair, got {result[:3]!r}...")
    expect(sorted(p[0] for p in result) == items,
           f"the pairs should cover each item once, got items {[p[0] for p in result]}.")
    bad = [(i, r) for i, r in result if r != i * i]
    expect(not bad, f"some pairs match an item with another item's result: {bad[:3]}. Look the item up "
                    f"in a {{future: item}} dict.")
    expect(tracer.max_concurrency() >= 2,
           "the tasks ran one at a time: submit them all to a ThreadPoolExecutor with several workers.")
    for (a, _), (b, _) in zip(result, result[1:]):
        expect(ends[a] <= ends[b] + 0.015,
               f"item {a} is listed before item {b}, but it finished {ends[a] - ends[b]:.2f} s later: "
               f"this looks like input order. Take results as they complete (as_completed).")
    return (f"{len(items)} pairs in the order the tasks finished, up to {tracer.max_concurrency()} "
            f"tasks at once.")


# ------------------------------------------------------------------------------------ exercise 04.2

_QUICK = 2  # the one quick item


def _one_quick(item: int) -> int:
    time.sleep(0.05 if item == _QUICK else 0.5)
    return item * 100


@exercise("04.2", "The first result, then stop",
          hint="Don't use `with`: its exit waits for every running task. Make the executor, submit, take "
               "the first future from as_completed, then executor.shutdown(wait=False, "
               "cancel_futures=True) and return.",
          solution="futureslab.solutions.nb04:first_result")
def first_result(answer):
    items = list(range(12))
    starts = []  # (item, time it started); a task that starts late is seen before it ends

    with Tracer() as tracer:
        def task(item):
            starts.append((item, time.perf_counter()))
            return _one_quick(item)

        t0 = time.perf_counter()
        result = run_with_timeout(answer, tracer.wrap(task, label=_by_item), items, timeout=15)
        returned_at = time.perf_counter()
        elapsed = returned_at - t0
        time.sleep(max(0.0, 0.7 - elapsed))  # the running tasks end at 0.5 s; the next would start then

    expect(isinstance(result, tuple) and len(result) == 2,
           f"first_result should return an (item, result) pair, got {result!r}.")
    expect(result == (_QUICK, _QUICK * 100),
           f"the first task to finish was item {_QUICK} (result {_QUICK * 100}), got {result!r}. "
           f"Submit every item first, then take the first future as_completed gives you.")
    expect(tracer.max_concurrency() >= 2,
           "the tasks ran one at a time: submit them to a ThreadPoolExecutor with several workers.")
    expect(elapsed < 0.35,
           f"your function took {elapsed:.2f} s although the answer was ready after about 0.05 s: it "
           f"waited for the slow tasks. A `with` block (or shutdown(wait=True)) waits for every running "
           f"task; use executor.shutdown(wait=False, cancel_futures=True) instead.")
    late = sorted(item for item, start in list(starts) if start > returned_at + 0.05)
    expect(not late,
           f"tasks {late} started after your function had returned: the queued tasks were not "
           f"cancelled. Call executor.shutdown(wait=False, cancel_futures=True), or cancel() each "
           f"future that has not started.")
    return (f"item {_QUICK} first, returned in under 0.35 s; the {len(items) - len(starts)} waiting tasks "
            f"were cancelled and the running ones finished in the background.")


# ------------------------------------------------------------------------------------ exercise 04.3

def _bounded_task(item: int) -> int:
    time.sleep(0.02 + 0.01 * (item % 3))
    return item + 1000


@exercise("04.3", "A bounded number of tasks in flight",
          hint="Submit the first `limit` items (itertools.islice). Then loop: done, pending = "
               "wait(pending, return_when=FIRST_COMPLETED); collect each done result and submit one "
               "new item per finished task, until the input runs out and pending is empty.",
          solution="futureslab.solutions.nb04:bounded_run")
def bounded_run(answer):
    n, limit = 30, 3
    pulls = []  # time of each item taken from the input

    with Tracer() as tracer:
        def source():
            for item in range(n):
                pulls.append(time.perf_counter() - tracer.t0)
                yield item

        result = run_with_timeout(answer, tracer.wrap(_bounded_task, label=_by_item), source(), limit,
                                  timeout=15)
    records = tracer.records

    expect(isinstance(result, list), f"bounded_run should return a list of results, got "
                                     f"{type(result).__name__}.")
    expected = [item + 1000 for item in range(n)]
    expect(Counter(result) == Counter(expected),
           f"the results should be each task's result once ({n} of them, any order), got "
           f"{len(result)} results{'' if len(result) != n else ' with the wrong values'}.")
    peak = tracer.max_concurrency()
    expect(peak >= 2, "the tasks ran one at a time: keep `limit` tasks in flight at once.")
    expect(peak <= limit, f"{peak} tasks ran at the same moment, more than limit={limit}.")
    first_end = min(r.end for r in records)
    early = sum(1 for t in pulls if t < first_end)
    expect(early <= limit + 1,
           f"you took {early} items from the input before the first task finished: executor.map and a "
           f"submit-everything loop read the whole input up front (an endless one would never end). "
           f"Take a new item only when a task finishes: wait(..., return_when=FIRST_COMPLETED).")
    return (f"{n} results with at most {peak} tasks in flight (limit {limit}); the input was read "
            f"only as tasks finished.")
