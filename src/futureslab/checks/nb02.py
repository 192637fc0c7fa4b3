"""Checkers for the exercises of notebook 02 · Futures.

Each checker hands the learner's function a thread pool and a traced task with a known duration, so
it can see from the timeline whether tasks overlapped, when the answer returned, and what ran at all.
"""

from __future__ import annotations

import concurrent.futures as cf
import dis
import time
import types
from concurrent.futures import Future, ThreadPoolExecutor

from ..trace import Tracer
from . import Wrong, describe, exercise, expect, owned_pool, pause, run_with_timeout, stoppable

__all__ = ["start_all", "result_or", "first_done"]


def _wait_then_return(value, seconds):
    """The checkers' task: wait ``seconds`` (stopping early if the check gives up), return ``value``."""
    pause(seconds)
    return value


def _wait_for(seconds):
    pause(seconds)
    return seconds


@exercise("02.1", "Start every task, wait for none",
          hint="What does pool.submit give back, and does it wait for the task? Collect what it gives "
               "back for each item; the caller decides when to wait.",
          solution="futureslab.solutions.nb02:start_all")
def start_all(answer):
    items = [4, 1, 3, 2]
    duration = 0.4
    with Tracer() as tracer, owned_pool(ThreadPoolExecutor(max_workers=4)) as pool:
        task = tracer.wrap(stoppable(lambda item: _wait_then_return(item, duration)))
        t0 = time.perf_counter()
        result = run_with_timeout(answer, pool, task, list(items), timeout=10)
        returned_after = time.perf_counter() - t0
        expect(isinstance(result, list) and all(isinstance(f, Future) for f in result),
               "start_all should return a list of Future objects (what pool.submit returns), got "
               + (f"a list of {type(result[0]).__name__}" if isinstance(result, list) and result
                  else describe(result)) + ".")
        expect(len(result) == len(items), f"{len(items)} items, but {len(result)} futures.")
        _, never = cf.wait(result, timeout=5)
        expect(not never, f"{len(never)} of the futures you returned never finished: return the "
                          f"futures that pool.submit gives you.")
        values = [f.result() for f in result]
    expect(values == items, f"the futures' results should be {items} (in the order of the items), "
                            f"got {values}.")
    expect(returned_after < duration / 2,
           f"start_all took {returned_after:.2f} s to return: it waited for tasks to finish. "
           f"Return the futures right after submitting; the caller decides when to wait.")
    expect(len(tracer.records) == len(items),
           f"the task ran {len(tracer.records)} times for {len(items)} items: submit it once per item.")
    expect(tracer.max_concurrency() >= 2, "the tasks ran one at a time: submit them all to the pool.")
    return (f"{len(items)} futures back after {returned_after * 1000:.0f} ms, "
            f"and the tasks ran {tracer.max_concurrency()} at a time.")


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _catches_builtin_timeout_only(fn) -> bool:
    """True if ``fn`` names the builtin ``TimeoutError`` (a global it does not define) and never
    ``something.TimeoutError``: on Python 3.10 that does not catch concurrent.futures.TimeoutError."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    glob = getattr(fn, "__globals__", {})
    builtin_name = attribute = False
    for co in _code_objects(code):
        for ins in dis.get_instructions(co):
            if ins.argval != "TimeoutError":
                continue
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and "TimeoutError" not in glob:
                builtin_name = True
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                attribute = True
    return builtin_name and not attribute


@exercise("02.2", "A result, or a default after a timeout",
          hint="result() takes a timeout. Which exception does it raise when time is up, and under "
               "which name does that exception exist on every Python version? Catch that one only.",
          solution="futureslab.solutions.nb02:result_or")
def result_or(answer):
    if callable(answer) and _catches_builtin_timeout_only(answer):
        raise Wrong("your function catches the builtin TimeoutError. From Python 3.11 on that is the "
                    "same class as concurrent.futures.TimeoutError, but on 3.10 it is not: there the "
                    "timeout escapes your `except`. Name concurrent.futures.TimeoutError, which is "
                    "right on every version.")
    with Tracer() as tracer, owned_pool(ThreadPoolExecutor(max_workers=3)) as pool:
        slow = tracer.wrap(stoppable(_wait_then_return))
        quick = pool.submit(slow, "quick", 0.05)
        late = pool.submit(slow, "late", 1.0)
        failing = pool.submit(divmod, 1, 0)
        cf.wait([quick, failing])

        def call(future, timeout):
            try:
                return run_with_timeout(answer, future, timeout, "default", timeout=5)
            except cf.TimeoutError:
                raise Wrong("a concurrent.futures.TimeoutError escaped from your function: when "
                            "the task is not done in time, return the default.")

        value = call(quick, 1)
        expect(value == "quick", f"for a finished future, return its result ('quick'); got "
                                 f"{describe(value)}.")
        t0 = time.perf_counter()
        value = call(late, 0.2)
        waited = time.perf_counter() - t0
        expect(value == "default",
               f"when the task is not done within the timeout, return the default; got "
               f"{describe(value)}.")
        expect(waited < 0.6, f"with timeout=0.2 your function took {waited:.2f} s to give up: "
                             f"pass the timeout to result().")
        expect(late.running() or late.done(), "the slow future was cancelled: a timeout should "
                                              "only stop your waiting, not the task.")
        try:
            value = call(failing, 1)
        except ZeroDivisionError:
            pass
        else:
            raise Wrong(f"the task raised ZeroDivisionError, but your function returned "
                        f"{describe(value)}: it swallowed the error. Catch only the timeout; let "
                        f"result() re-raise the task's own exception.")
        expect(late.result(timeout=5) == "late", "the slow task should still finish.")
    records = {r.task: r for r in tracer.records}
    kept_running = records["late"].end - records["late"].start
    return (f"finished results pass through, the slow one gave the default after {waited:.2f} s "
            f"(the task itself kept running for {kept_running:.2f} s), and the task's own error "
            f"still reached the caller.")


@exercise("02.3", "The first result wins",
          hint="Submit everything, then look at wait()'s return_when options: one of them returns as "
               "soon as any future is done. What can you still do with the futures that are not?",
          solution="futureslab.solutions.nb02:first_done")
def first_done(answer):
    items = [0.6, 0.2, 0.9, 0.9, 0.9, 0.9]  # seconds each task sleeps; it returns that number
    with Tracer() as tracer:
        with owned_pool(ThreadPoolExecutor(max_workers=2)) as pool:
            task = tracer.wrap(stoppable(_wait_for))
            t0 = time.perf_counter()
            result = run_with_timeout(answer, pool, task, list(items), timeout=10)
            returned_after = time.perf_counter() - t0
        records = tracer.records
    expect(records, f"none of the tasks ran: your function returned {describe(result)} without "
                    f"running any. Submit every item's task to the pool.")
    expect(result == 0.2, f"the task that finishes first returns 0.2; your function returned "
                          f"{describe(result)}.")
    expect(returned_after < 0.5,
           f"your function returned after {returned_after:.2f} s, but the first task was done "
           f"after about 0.2 s: it waited for more than the first one.")
    expect(tracer.max_concurrency() >= 2, "the tasks ran one at a time: submit them all to the pool.")
    expect(len(records) <= 3,
           f"{len(records)} of {len(items)} tasks ran: once you have a winner, cancel() the futures "
           f"that have not started, so they never run.")
    return (f"the first result came back after {returned_after:.2f} s, and only {len(records)} of "
            f"{len(items)} tasks ever ran: the rest were cancelled while still pending.")
