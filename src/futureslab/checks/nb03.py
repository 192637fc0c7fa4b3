"""Checkers for notebook 03 (callbacks).

Each checker hands your function a *task* of its own, wrapped in a :class:`~futureslab.trace.Tracer`,
so it can see when every task ran, on which thread, and how many ran at once. Call them as
``check.run_with_progress(run_with_progress)`` and so on.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

from ..trace import Tracer
from . import describe, exercise, expect, logged_errors, pause, run_with_timeout, stoppable

__all__ = ["run_with_progress", "total_from_callbacks", "run_until_failure"]


def _caller_recorder(answer):
    """Wrap ``answer`` so we learn which thread called it (callbacks on other threads differ)."""
    if not callable(answer):
        run_with_timeout(answer)  # raises Wrong("expected a function, got ...")
    box = {}

    def call(*args):
        box["ident"] = threading.get_ident()
        return answer(*args)

    return call, box


# ------------------------------------------------------------------------------------ exercise 03.1

def _progress_task(item: int) -> int:
    pause(0.05)  # equal durations: tasks finish, and their callbacks fire, in bursts
    return item * 10


def _overlapping(intervals) -> bool:
    """Did two (start, end, thread) intervals from different threads overlap in time?"""
    ordered = sorted(intervals)
    return any(b[0] < a[1] and a[2] != b[2] for a, b in zip(ordered, ordered[1:]))


@exercise("03.1", "Live progress from callbacks",
          hint="Which method of a future runs a function of yours when it finishes? Those functions "
               "run on worker threads, several at once: what makes 'count, read, report' one step?",
          solution="futureslab.solutions.nb03:run_with_progress")
def run_with_progress(answer):
    items = list(range(12))
    n = len(items)
    calls = []  # (done, total, start, end, thread ident); list.append is thread-safe

    with Tracer() as tracer:
        def report(done, total):
            start = time.perf_counter() - tracer.t0
            pause(0.02)  # like drawing a progress bar: not safe to run from two threads at once
            calls.append((done, total, start, time.perf_counter() - tracer.t0, threading.get_ident()))

        call, caller = _caller_recorder(answer)
        result = run_with_timeout(call, tracer.wrap(stoppable(_progress_task)), items, report,
                                  timeout=15)
    records = tracer.records

    expect(isinstance(result, list), f"run_with_progress should return a list of results, got "
                                     f"{describe(result)}.")
    expect(records, f"none of the tasks ran: your function returned {describe(result)} without "
                    f"running any. Run task(item) for every item on a thread pool.")
    expect(result == [i * 10 for i in items],
           f"the results should be {[i * 10 for i in items]} (each task's result, in input order), "
           f"got {describe(result)}.")
    expect(len(records) == n, f"the task ran {len(records)} times for {n} items: run it once per item.")
    expect(tracer.max_concurrency() >= 2,
           "the tasks ran one at a time: submit them all to a ThreadPoolExecutor with several workers.")
    expect(len(calls) == n, f"report was called {len(calls)} times for {n} tasks: call it once each "
                            f"time a task finishes.")
    expect(all(total == n for _, total, _, _, _ in calls),
           f"report's second argument should be the number of tasks ({n}), got "
           f"{sorted({t for _, t, _, _, _ in calls})}.")
    counts = sorted(done for done, _, _, _, _ in calls)
    expect(counts == list(range(1, n + 1)),
           f"the done counts were {counts}, not 1 to {n}: two callbacks changed or read the counter at "
           f"the same moment. Update and read it while holding a threading.Lock.")
    expect(not _overlapping([(start, end, ident) for _, _, start, end, ident in calls]),
           "two callbacks were inside report() at the same moment. Without a lock around the count "
           "and the report, counts can repeat or arrive out of order (this time they did not; next "
           "time they may). Hold one threading.Lock while you count, read and call report.")
    last_end = max(r.end for r in records)
    first_report = min(start for _, _, start, _, _ in calls)
    expect(first_report < last_end - 0.01,
           "every report came after the last task had finished, so it was not live progress: call "
           "report from a done-callback as each task finishes.")
    expect(any(ident != caller.get("ident") for _, _, _, _, ident in calls),
           "every report came from your own thread, none from a worker: attach the reporting function "
           "with future.add_done_callback so the worker that finishes a task reports it.")
    return (f"{n} results in input order, {n} live progress reports (1 to {n}, one at a time), "
            f"up to {tracer.max_concurrency()} tasks at once.")


# ------------------------------------------------------------------------------------ exercise 03.2

class _Additions:
    """What the checker's numbers saw: when each addition started and ended, and on which thread."""

    def __init__(self, expected: int, pause_s: float = 0.02, last_pause_s: float = 0.15):
        self.expected, self.pause_s, self.last_pause_s = expected, pause_s, last_pause_s
        self._lock = threading.Lock()
        self.started = 0
        self.intervals: list = []  # (start, end, thread ident); end is None while in progress
        self.t0 = time.perf_counter()

    def add(self, value) -> None:
        with self._lock:
            self.started += 1
            last = self.started == self.expected
            entry = [time.perf_counter() - self.t0, None, threading.get_ident(), value]
            self.intervals.append(entry)
        # The last addition is slow on purpose: an answer that reads the total before every
        # callback has finished misses it every time, not just now and then.
        pause(self.last_pause_s if last else self.pause_s)
        entry[1] = time.perf_counter() - self.t0

    def settle(self, timeout: float = 2.0) -> None:
        deadline = time.perf_counter() + timeout
        while any(e[1] is None for e in list(self.intervals)) and time.perf_counter() < deadline:
            time.sleep(0.01)


class SlowNumber:
    """A number whose addition takes a moment, like a read-modify-write of a database row.

    ``total + slow`` (or ``total += slow``) reads ``total``, waits a few milliseconds, then returns the
    new sum; two threads doing it at once without a lock both start from the same old total, and one
    update is lost. Every addition is noted (thread, start, end) by ``log``: a list (gets the thread
    ident) or an :class:`_Additions`.
    """

    def __init__(self, value: int, log, pause: float = 0.004):
        self.value, self._log, self._pause = value, log, pause

    def __radd__(self, other):
        if not isinstance(other, (int, float)):
            return NotImplemented
        if isinstance(self._log, _Additions):
            self._log.add(self.value)
        else:
            self._log.append(threading.get_ident())
            time.sleep(self._pause)
        return other + self.value

    __add__ = __radd__

    def __repr__(self) -> str:
        return f"SlowNumber({self.value})"


@exercise("03.2", "Add up results in callbacks, safely",
          hint="Callbacks on different worker threads may add at the same moment: what makes a "
               "read-add-write one step? And when has the last callback really finished: when "
               "wait() returns, or when the pool has shut down?",
          solution="futureslab.solutions.nb03:total_from_callbacks")
def total_from_callbacks(answer):
    items = list(range(1, 17))
    expected = sum(items)
    additions = _Additions(expected=len(items))

    def slow_result(item):
        pause(0.05)  # equal durations: tasks finish, and callbacks fire, in bursts
        return SlowNumber(item, additions)

    with Tracer() as tracer:
        call, caller = _caller_recorder(answer)
        result = run_with_timeout(call, tracer.wrap(stoppable(slow_result)), items, timeout=15)
        returned_at = time.perf_counter() - additions.t0
        additions.settle()
    intervals = [tuple(e[:3]) for e in additions.intervals]
    by_end = [e[3] for e in sorted(additions.intervals, key=lambda e: (e[1] is None, e[1] or 0))]
    partial = [k for k in range(len(by_end)) if sum(by_end[:k]) == result]

    expect(isinstance(result, (int, float)) and not isinstance(result, bool),
           f"total_from_callbacks should return a number, got {describe(result)}.")
    expect(tracer.records, f"none of the tasks ran: your function returned {describe(result)} "
                           f"without running any. Run task(item) for every item on a thread pool.")
    expect(tracer.max_concurrency() >= 2,
           "the tasks ran one at a time: submit them to a ThreadPoolExecutor with several workers.")
    expect(intervals, "no result was ever added: add each future's result in its callback.")
    expect(any(ident != caller.get("ident") for _, _, ident in intervals),
           "every addition happened in your own thread, none in a callback on a worker: attach a "
           "callback with future.add_done_callback and add the result there.")
    expect(not _overlapping([(s, e if e is not None else s, i) for s, e, i in intervals]),
           f"two callbacks were adding at the same moment (the total came out {result:g}, expected "
           f"{expected}): each read the same old total and wrote back its own sum, so an update "
           f"can be lost. Guard the read-modify-write with a threading.Lock.")
    late = [e for _, e, _ in intervals if e is None or e > returned_at]
    expect(not late and not (result != expected and partial),
           f"your function read the total ({result:g}, expected {expected}) while callbacks were still "
           f"adding: it is what the total was after "
           f"{partial[-1] if partial else len(intervals) - len(late)} of the {len(intervals)} "
           f"additions. result() and wait() return as soon as a task's result is "
           f"set; its done-callbacks run just after that, on the worker. Read the total once the "
           f"pool has shut down (after the `with` block): shutdown waits until every worker has "
           f"finished, callbacks included.")
    expect(result == expected, f"the total is {result:g}, expected {expected} (the sum of every result).")
    return (f"total {expected}, every addition made in a callback, one at a time, and read after the "
            f"last one; up to {tracer.max_concurrency()} tasks ran at once.")


# ------------------------------------------------------------------------------------ exercise 03.3

_FAILING_ITEM = 3


def _fail_on_three(item: int) -> int:
    pause(0.04)
    if item == _FAILING_ITEM:
        raise ValueError(f"item {item} is broken")
    return item


@exercise("03.3", "Stop at the first failure",
          hint="A callback sees three kinds of finished future: cancelled, failed and ok; check in "
               "that order (what does result() do on a cancelled one?). The callback that sees the "
               "failure can cancel() the others; a {future: item} dict tells you the item.",
          solution="futureslab.solutions.nb03:run_until_failure")
def run_until_failure(answer):
    items = list(range(16))
    with Tracer() as tracer:
        task = tracer.wrap(stoppable(_fail_on_three), label=lambda item: str(item))
        result = run_with_timeout(answer, task, items, timeout=15)
    records = tracer.records
    ran = {int(r.task) for r in records}

    expect(isinstance(result, dict), f"run_until_failure should return a dict item -> label, got "
                                     f"{describe(result)}.")
    expect(records, f"none of the tasks ran: your function returned {describe(result)} without "
                    f"running any. Run task(item) for every item on a pool of 2 threads.")
    missing = [i for i in items if i not in result]
    cancelled_error = any(r.exc_info and r.exc_info[0] is CancelledError for r in logged_errors())
    expect(not (missing and cancelled_error),
           f"no label for items {missing}: your callback called result() (or exception()) on a "
           f"cancelled future, which raises CancelledError; an error in a callback is logged and "
           f"lost, so the label was never set. Check future.cancelled() first.")
    expect(not missing, f"no label for items {missing}: every future's callback should set one, "
                        f"including the cancelled ones'.")
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
