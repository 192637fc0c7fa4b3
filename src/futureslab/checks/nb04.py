"""Checkers for notebook 04 (map vs as_completed).

Each checker hands your function a *task* of its own, wrapped in a :class:`~futureslab.trace.Tracer`,
so it can see when each task started and finished and how many ran at once. Call them as
``check.in_finish_order(in_finish_order)`` and so on.
"""

from __future__ import annotations

import time
from collections import Counter

from ..trace import Tracer
from . import describe, exercise, expect, pause, run_with_timeout, stoppable

__all__ = ["in_finish_order", "first_result", "bounded_run"]


def _by_item(item) -> str:
    return str(item)


# ------------------------------------------------------------------------------------ exercise 04.1

def _reverse_task(item: int) -> int:
    pause(0.04 * (8 - item))  # item 0 is the slowest, item 7 the quickest
    return item * item


@exercise("04.1", "Results in the order they finish",
          hint="Which function hands you futures in the order they finish? A future does not know "
               "its input: keep a dictionary from each future to its item.",
          solution="futureslab.solutions.nb04:in_finish_order")
def in_finish_order(answer):
    items = list(range(8))
    with Tracer() as tracer:
        result = run_with_timeout(answer, tracer.wrap(stoppable(_reverse_task), label=_by_item), items,
                                  timeout=15)
    ends = {int(r.task): r.end for r in tracer.records}

    expect(isinstance(result, list), f"in_finish_order should return a list of (item, result) pairs, "
                                     f"got {describe(result)}.")
    expect(ends, f"none of the tasks ran: your function returned {describe(result)} without running "
                 f"any. Run task(item) for every item on a thread pool.")
    expect(result and all(isinstance(p, tuple) and len(p) == 2 for p in result),
           f"each entry should be an (item, result) pair, got {result[:3]!r}...")
    expect(sorted(p[0] for p in result) == items,
           f"the pairs should cover each item once, got items {[p[0] for p in result]}.")
    bad = [(i, r) for i, r in result if r != i * i]
    expect(not bad, f"some pairs match an item with another item's result: {bad[:3]}. Look the item up "
                    f"in a {{future: item}} dict.")
    expect(tracer.max_concurrency() >= 2,
           "the tasks ran one at a time: submit them all to a ThreadPoolExecutor with several workers.")
    expect(set(ends) == set(items), f"the task ran for items {sorted(ends)}, not for every item.")
    for (a, _), (b, _) in zip(result, result[1:]):
        expect(ends[a] <= ends[b] + 0.015,
               f"item {a} is listed before item {b}, but it finished {ends[a] - ends[b]:.2f} s later: "
               f"this looks like input order. Take results as they complete (as_completed).")
    return (f"{len(items)} pairs in the order the tasks finished, up to {tracer.max_concurrency()} "
            f"tasks at once.")


# ------------------------------------------------------------------------------------ exercise 04.2

_QUICK = 2  # the one quick item


def _one_quick(item: int) -> int:
    pause(0.05 if item == _QUICK else 0.5)
    return item * 100


@exercise("04.2", "The first result, then stop",
          hint="What does leaving a `with ThreadPoolExecutor(...)` block wait for? Look at the "
               "parameters of executor.shutdown: one of them drops the tasks that have not started.",
          solution="futureslab.solutions.nb04:first_result")
def first_result(answer):
    items = list(range(12))
    starts = []  # (item, time it started); a task that starts late is seen before it ends

    with Tracer() as tracer:
        def task(item):
            starts.append((item, time.perf_counter()))
            return _one_quick(item)

        t0 = time.perf_counter()
        result = run_with_timeout(answer, tracer.wrap(stoppable(task), label=_by_item), items,
                                  timeout=15)
        returned_at = time.perf_counter()
        elapsed = returned_at - t0
        time.sleep(max(0.0, 0.7 - elapsed))  # the running tasks end at 0.5 s; the next would start then

    expect(isinstance(result, tuple) and len(result) == 2,
           f"first_result should return an (item, result) pair, got {describe(result)}.")
    expect(starts, f"none of the tasks ran: your function returned {describe(result)} without "
                   f"running any. Submit every item to a pool of 4 threads.")
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
    pause(0.02 + 0.03 * (item % 3))  # 0.02, 0.05 or 0.08 s
    return item + 1000


@exercise("04.3", "A bounded number of tasks in flight",
          hint="Start `limit` tasks (itertools.islice takes a few items from an iterator). Then, each "
               "time any one of them finishes, which wait() mode tells you so?, start one new task.",
          solution="futureslab.solutions.nb04:bounded_run")
def bounded_run(answer):
    n, limit = 30, 3
    pulls = []  # time of each item taken from the input

    with Tracer() as tracer:
        def source():
            for item in range(n):
                pulls.append(time.perf_counter() - tracer.t0)
                yield item

        result = run_with_timeout(answer, tracer.wrap(stoppable(_bounded_task), label=_by_item),
                                  source(), limit, timeout=15)
    records = tracer.records

    expect(isinstance(result, list), f"bounded_run should return a list of results, got "
                                     f"{describe(result)}.")
    expect(records, f"none of the tasks ran: your function returned {describe(result)} without "
                    f"running any. Run task(item) for every item of the input.")
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
    # Workers must not sit idle while input remains: after each task ends (before the last item
    # was taken), the next task should start at once, not when a whole batch has finished.
    last_pull = max(pulls)
    starts = sorted(r.start for r in records)
    gaps = []
    for r in records:
        if r.end < last_pull:
            nxt = next((s for s in starts if s >= r.end - 0.001), None)
            if nxt is not None:
                gaps.append(nxt - r.end)
    idle = [g for g in gaps if g > 0.025]
    expect(len(idle) <= len(gaps) // 3,
           f"after {len(idle)} of {len(gaps)} finished tasks, no new task started for up to "
           f"{max(idle) * 1000:.0f} ms while input remained: the input was read in batches and each "
           f"batch waited for its slowest task, leaving workers idle. Start a new task as soon as "
           f"any one finishes." if idle else "")
    return (f"{n} results with at most {peak} tasks in flight (limit {limit}); the input was read "
            f"only as tasks finished, and a new task started as soon as one ended.")
