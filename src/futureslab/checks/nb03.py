"""Checkers for notebook 03 (callbacks).

Each checker hands your function a *task* of its own, wrapped in a :class:`~futureslab.trace.Tracer`,
so it can see when every task ran, on which thread, and how many ran at once. Call them as
``check.run_with_progress(run_with_progress)`` and so on.
"""

from __future__ import annotations

import threading
import time

from ..trace import Tracer
from . import expect, exercise, run_with_timeout

__all__ = ["run_with_progress", "total_from_callbacks", "run_until_failure"]


def _caller_recorder(answer):
    """Wrap ``answer`` so we learn which thread called it (callbacks on other threads differ)."""
    box = {}

    def call(*args):
        box["ident"] = threading.get_ident()
        return answer(*args)

    return call, box


# ------------------------------------------------------------------------------------ exercise 03.1

def _progress_task(item: int) -> int:
    time.sleep(0.03 + 0.02 * (item % 4))
    return item * 10


@exercise("03.1", "Live progress from callbacks",
          hint="Submit every item, then future.add_done_callback(on_done) on each future. In on_done, "
               "add 1 to a counter and read it back while holding a threading.Lock, then call "
               "report(count, total). Return [f.result() for f in futures].",
          solution="futureslab.solutions.nb03:run_with_progress")
def run_with_progress(answer):
    items = list(range(12))
    n = len(items)
    calls = []  # (done, total, seconds since start, thread ident); list.append is thread-safe

    with Tracer() as tracer:
        def report(done, total):
            calls.append((done, total, time.perf_counter() - tracer.t0, threading.get_ident()))

        call, caller = _caller_recorder(answer)
        result = run_with_timeout(call, tracer.wrap(_progress_task), items, report, timeout=15)
    records = tracer.records

    expect(isinstance(result, list), f"run_with_progress should return a list of results, got "
                                     f"{type(result).__name__}.")
    expect(result == [i * 10 for i in items],
           f"the results should be {[i * 10 for i in items]} (each task's result, in input order), "
           f"got {result!r}.")
    expect(len(records) == n, f"the task ran {len(records)} times for {n} items: run it once per item.")
    expect(tracer.max_concurrency() >= 2,
           "the tasks ran one at a time: submit them all to a ThreadPoolExecutor with several workers.")
    expect(len(calls) == n, f"report was called {len(calls)} times for {n} tasks: call it once each "
                            f"time a task finishes.")
    expect(all(total == n for _, total, _, _ in calls),
           f"report's second argument should be the number of tasks ({n}), got "
           f"{sorted({t for _, t, _, _ in calls})}.")
    counts = sorted(done for done, _, _, _ in calls)
    expect(counts == list(range(1, n + 1)),
           f"the done counts were {counts}, not 1 to {n}: two callbacks changed or read the counter at "
           f"the same moment. Update and read it while holding a threading.Lock.")
    last_end = max(r.end for r in records)
    first_report = min(t for _, _, t, _ in calls)
    expect(first_report < last_end - 0.01,
           "every report came after the last task had finished, so it was not live progress: call "
           "report from a done-callback as each task finishes.")
    expect(any(ident != caller.get("ident") for _, _, _, ident in calls),
           "every report came from your own thread, none from a worker: attach the reporting function "
           "with future.add_done_callback so the worker that finishes a task reports it.")
    return (f"{n} results in input order, {n} live progress reports (1 to {n}, no count repeated), "
            f"up to {tracer.max_concurrency()} tasks at once.")


# ------------------------------------------------------------------------------------ exercise 03.2

class SlowNumber:
    """A number whose addition takes a moment, like a read-modify-write of a database row.

    ``total + slow`` (or ``total += slow``) reads ``total``, waits a few milliseconds, then returns the
    new sum; two threads doing it at once without a lock both start from the same old total, and one
    update is lost. Every addition notes the thread that made it.
    """

    def __init__(self, value: int, log: list, pause: float = 0.004):
        self.value, self._log, self._pause = value, log, pause

    def __radd__(self, other):
        if not isinstance(other, (int, float)):
            return NotImplemented
        self._log.append(threading.get_ident())
        time.sleep(self._pause)
        return other + self.value

    __add__ = __radd__

    def __repr__(self) -> str:
        return f"SlowNumber({self.value})"


@exercise("03.2", "Add up results in callbacks, safely",
          hint="Keep the total in a dict (or an object) and one threading.Lock. In the callback: "
               "`with lock: state['total'] += future.result()`. Return the total after the `with "
               "ThreadPoolExecutor(...)` block, when every callback has run.",
          solution="futureslab.solutions.nb03:total_from_callbacks")
def total_from_callbacks(answer):
    items = list(range(1, 17))
    additions: list = []  # thread idents of every addition

    def slow_result(item):
        time.sleep(0.05)  # equal durations: tasks finish, and callbacks fire, in bursts
        return SlowNumber(item, additions)

    with Tracer() as tracer:
        call, caller = _caller_recorder(answer)
        result = run_with_timeout(call, tracer.wrap(slow_result), items, timeout=15)
    expected = sum(items)

    expect(tracer.max_concurrency() >= 2,
           "the tasks ran one at a time: submit them to a ThreadPoolExecutor with several workers.")
    expect(isinstance(result, (int, float)) and not isinstance(result, bool),
           f"total_from_callbacks should return a number, got {result!r}.")
    expect(len(additions) > 0, "no result was ever added: add each future's result in its callback.")
    expect(any(ident != caller.get("ident") for ident in additions),
           "every addition happened in your own thread, none in a callback on a worker: attach a "
           "callback with future.add_done_callback and add the result there.")
    if result < expected and len(additions) >= len(items):
        raise_msg = (f"the total is {result:g}, expected {expected}: {len(additions)} additions were made "
                     f"but some were lost. Two callbacks read the same old total at the same moment "
                     f"and both wrote back their own sum. Guard the read-modify-write with a "
                     f"threading.Lock.")
        expect(False, raise_msg)
    expect(result == expected, f"the total is {result:g}, expected {expected} (the sum of every result).")
    return (f"total {expected}, every addition made in a callback under a lock, with up to "
            f"{tracer.max_concurrency()} tasks running at once.")


# ------------------------------------------------------------------------------------ exercise 03.3

_FAILING_ITEM = 3


def _fail_on_three(item: int) -> int:
    time.sleep(0.04)
    if item == _FAILING_ITEM:
        raise ValueError(f"item {item} is broken")
    return item


@exercise("03.3", "Stop at the first failure",
          hint="Keep a dict labels and a list futures. In the callback: if future.cancelled(), label "
               "'cancelled' (never call result() on it: that raises CancelledError); elif "
               "future.exception() is not None, label 'failed' and call f.cancel() on every future; "
               "else 'ok'. Find the item with a future->item dict.",
          solution="futureslab.solutions.nb03:run_until_failure")
def run_until_failure(answer):
    items = list(range(16))
    with Tracer() as tracer:
        task = tracer.wrap(_fail_on_three, label=lambda item: str(item))
        result = run_with_timeout(answer, task, items, timeout=15)
    records = tracer.records
    ran = {int(r.task) for r in records}

    expect(isinstance(result, dict), f"run_until_failure should return a dict item -> label, got "
                                     f"{type(result).__name__}.")
    missing = [i for i in items if i not in result]
    expect(not missing,
           f"no label for items {missing}. If those futures were cancelled: a callback that calls "
           f"result() on a cancelled future raises CancelledError, which is logged and lost, so "
           f"check future.cancelled() first.")
    odd = {i: v for i, v in result.items() if v not in ("ok", "failed", "cancelled")}
    expect(not odd, f"labels must be 'ok', 'failed' or 'cancelled', got {odd}.")
    expect(tracer.max_concurrency() >= 2,
           "the tasks ran one at a time: submit them to a ThreadPoolExecutor with 2 or more workers.")
    expect(result[_FAILING_ITEM] == "failed",
           f"item {_FAILING_ITEM} raised ValueError, so its label should be 'failed', got "
           f"{result[_FAILING_ITEM]!r}.")
    wrong_ok = sorted(i for i in items if i in ran and i != _FAILING_ITEM and result[i] != "ok")
    expect(not wrong_ok, f"items {wrong_ok} ran and succeeded, so their label should be 'ok'.")
    wrong_cancel = sorted(i for i in items if i not in ran and result[i] != "cancelled")
    expect(not wrong_cancel, f"items {wrong_cancel} never ran, so their label should be 'cancelled'.")
    cancelled = [i for i in items if result[i] == "cancelled"]
    failed_at = next(r.end for r in records if int(r.task) == _FAILING_ITEM)
    late = sorted(int(r.task) for r in records if r.start > failed_at + 0.03)
    expect(not late and cancelled,
           f"after item {_FAILING_ITEM} failed, tasks {late} still started and {len(cancelled)} were "
           f"cancelled: use a pool of 2 threads, and in the callback that sees the failure, cancel "
           f"every future that has not started.")
    return (f"item {_FAILING_ITEM} failed, {len(cancelled)} waiting tasks were cancelled and labelled "
            f"by their callbacks, {len(ran) - 1} ran fine, up to {tracer.max_concurrency()} at once.")
