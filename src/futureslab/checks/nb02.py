"""Checkers for the exercises of notebook 02 · Futures.

Each checker hands the learner's function a thread pool and a traced task with a known duration, so
it can see from the timeline whether tasks overlapped, when the answer returned, and what ran at all.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor

from ..tasks import sleep_for, sleep_then_return
from ..trace import Tracer
from . import Wrong, exercise, expect, run_with_timeout

__all__ = ["start_all", "result_or", "first_done"]


@exercise("02.1", "Start every task, wait for none",
          hint="A list comprehension of pool.submit(task, item): submit returns a Future at once.",
          solution="futureslab.solutions.nb02:start_all")
def start_all(answer):
    items = [4, 1, 3, 2]
    duration = 0.4
    with Tracer() as tracer, ThreadPoolExecutor(max_workers=4) as pool:
        task = tracer.wrap(functools.partial(sleep_then_return, seconds=duration))
        t0 = time.perf_counter()
        result = run_with_timeout(answer, pool, task, list(items), timeout=10)
        returned_after = time.perf_counter() - t0
        expect(isinstance(result, list) and all(isinstance(f, Future) for f in result),
               "start_all should return a list of Future objects (what pool.submit returns), got "
               + (f"a list of {type(result[0]).__name__}" if isinstance(result, list) and result
                  else f"{type(result).__name__}") + ".")
        expect(len(result) == len(items), f"{len(items)} items, but {len(result)} futures.")
        values = [f.result(timeout=10) for f in result]
    expect(values == items, f"the futures' results should be {items} (in the order of the items), "
                            f"got {values}.")
    expect(returned_after < duration / 2,
           f"start_all took {returned_after:.2f} s to return: it waited for tasks to finish. "
           f"Return the futures right after submitting; the caller decides when to wait.")
    expect(tracer.max_concurrency() >= 2, "the tasks ran one at a time: submit them all to the pool.")
    return (f"{len(items)} futures back after {returned_after * 1000:.0f} ms, "
            f"and the tasks ran {tracer.max_concurrency()} at a time.")


@exercise("02.2", "A result, or a default after a timeout",
          hint="try: return future.result(timeout=timeout) except concurrent.futures.TimeoutError: "
               "return default. Catch nothing else.",
          solution="futureslab.solutions.nb02:result_or")
def result_or(answer):
    with Tracer() as tracer, ThreadPoolExecutor(max_workers=3) as pool:
        slow = tracer.wrap(sleep_then_return)
        quick = pool.submit(slow, "quick", 0.05)
        late = pool.submit(slow, "late", 1.0)
        failing = pool.submit(divmod, 1, 0)
        cf.wait([quick, failing])

        def call(future, timeout):
            try:
                return run_with_timeout(answer, future, timeout, "default", timeout=5)
            except cf.TimeoutError:
                raise Wrong("a concurrent.futures.TimeoutError escaped from your function. Before "
                            "Python 3.11 it is not the builtin TimeoutError: catch "
                            "concurrent.futures.TimeoutError, which works on every version.")

        expect(call(quick, 1) == "quick", "for a finished future, return its result.")
        t0 = time.perf_counter()
        value = call(late, 0.2)
        waited = time.perf_counter() - t0
        expect(value == "default",
               f"when the task is not done within the timeout, return the default; got {value!r}.")
        expect(waited < 0.6, f"with timeout=0.2 your function took {waited:.2f} s to give up: "
                             f"pass the timeout to result().")
        expect(late.running() or late.done(), "the slow future was cancelled.")
        try:
            value = call(failing, 1)
        except ZeroDivisionError:
            pass
        else:
            raise Wrong(f"the task raised ZeroDivisionError, but your function returned {value!r}: "
                        f"it swallowed the error. Catch only the timeout; let result() re-raise "
                        f"the task's own exception.")
        expect(late.result(timeout=5) == "late", "the slow task should still finish.")
    records = {r.task: r for r in tracer.records}
    kept_running = records["late"].end - records["late"].start
    return (f"finished results pass through, the slow one gave the default after {waited:.2f} s "
            f"(the task itself kept running for {kept_running:.2f} s), and the task's own error "
            f"still reached the caller.")


@exercise("02.3", "The first result wins",
          hint="Submit everything, then done, not_done = wait(futures, return_when=FIRST_COMPLETED); "
               "cancel() what is not done; return the result of a future in done.",
          solution="futureslab.solutions.nb02:first_done")
def first_done(answer):
    items = [0.6, 0.2, 0.9, 0.9, 0.9, 0.9]  # seconds each task sleeps; it returns that number
    with Tracer() as tracer:
        pool = ThreadPoolExecutor(max_workers=2)
        try:
            task = tracer.wrap(sleep_for)
            t0 = time.perf_counter()
            result = run_with_timeout(answer, pool, task, list(items), timeout=10)
            returned_after = time.perf_counter() - t0
        finally:
            pool.shutdown(wait=True)
        records = tracer.records
    expect(result == 0.2, f"the task that finishes first returns 0.2; your function returned {result!r}.")
    expect(returned_after < 0.5,
           f"your function returned after {returned_after:.2f} s, but the first task was done "
           f"after about 0.2 s: it waited for more than the first one.")
    expect(len(records) <= 3,
           f"{len(records)} of {len(items)} tasks ran: once you have a winner, cancel() the futures "
           f"that have not started, so they never run.")
    expect(max(tracer.max_concurrency(), 1) >= 2, "the tasks ran one at a time.")
    return (f"the first result came back after {returned_after:.2f} s, and only {len(records)} of "
            f"{len(items)} tasks ever ran: the rest were cancelled while still pending.")
