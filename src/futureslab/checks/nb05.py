"""Checkers for notebook 05 (05a: processes; 05b: threads, stopping and errors). Each returns a
Verdict and never raises."""

from __future__ import annotations

import logging
import os
import pickle
import sys
import time

from . import Wrong, exercise, expect, is_pickling_error, run_with_timeout

__all__ = ["add_ten_in_processes", "stop_at_first_error", "fetch_titles"]


class _CalledFromMain(Exception):
    """Raised in a worker process when `add` was called by a function defined in ``__main__``."""


class _WatchCaller:
    """Wraps the `add` handed to the learner: in a worker process, a caller defined in ``__main__``
    (a notebook cell, found there only because fork copied the notebook) is refused. Picklable by
    reference under every start method, because it is defined in this module."""

    def __init__(self, fn, parent_pid):
        self.fn, self.parent_pid = fn, parent_pid

    def __call__(self, *args, **kwargs):
        if os.getpid() != self.parent_pid and sys._getframe(1).f_globals.get("__name__") == "__main__":
            raise _CalledFromMain(sys._getframe(1).f_code.co_name)
        return self.fn(*args, **kwargs)


_NOT_IMPORTABLE = ("A worker process can only run a function it can import by name: `add` itself can "
                   "travel, a lambda or a function defined in the notebook cannot.")


@exercise("05.1", "Add ten, on processes, without a lambda",
          hint="Send `add` itself to the pool and let the 10 travel as data: section 1's fix lists two "
               "picklable ways to give a module-level function a second argument.",
          solution="futureslab.solutions.nb05:add_ten_in_processes")
def add_ten_in_processes(answer):
    from concurrent.futures.process import BrokenProcessPool

    from .. import tasks
    from ..trace import Tracer

    numbers = list(range(8))
    with Tracer() as tracer:
        add = _WatchCaller(tracer.wrap(tasks.add), os.getpid())
        try:
            result = run_with_timeout(answer, numbers, add, timeout=60)
        except _CalledFromMain as exc:
            raise Wrong(f"`add` was called by `{exc}`, a function defined in the notebook. That worked "
                        f"here only because this kernel starts workers with fork, which copies the "
                        f"notebook into them; under spawn or forkserver (macOS, Windows, Linux from "
                        f"Python 3.14) the worker cannot find `{exc}` and the pool breaks. "
                        f"{_NOT_IMPORTABLE}") from None
        except (pickle.PicklingError, AttributeError) as exc:
            if not is_pickling_error(exc):
                raise  # not about sending the function: reported as the learner's error
            raise Wrong(f"a pickling error ({type(exc).__name__}): a lambda or a nested function cannot "
                        f"be sent to a process pool. {_NOT_IMPORTABLE}") from None
        except BrokenProcessPool:
            raise Wrong(f"the process pool broke (BrokenProcessPool): a worker started with spawn or forkserver cannot find a function defined in "
                        f"the notebook. {_NOT_IMPORTABLE}") from None
        records = tracer.records
    expect(result is not None and not isinstance(result, (str, bytes)),
           f"add_ten_in_processes should return a list, got {result!r:.60}.")
    try:
        result = list(result)
    except TypeError:
        raise Wrong(f"add_ten_in_processes should return a list, got {result!r:.60}.") from None
    expect(result == [n + 10 for n in numbers],
           f"for {numbers} expected {[n + 10 for n in numbers]}, got {result!r:.80}.")
    expect(len(records) == len(numbers),
           f"`add` was called {len(records)} times for {len(numbers)} numbers: call the `add` you are "
           f"given, once per number.")
    expect(all(r.pid != os.getpid() for r in records),
           "the additions ran in this process, not in a ProcessPoolExecutor's workers.")
    return "Right results, computed in worker processes, and nothing unpicklable sent."


@exercise("05.2", "Stop at the first error",
          hint="Handle results as they finish (section 4 of 05b), and when one fails, stop the "
               "queued tasks from starting (section 5 of 05b) before you return.",
          solution="futureslab.solutions.nb05:stop_at_first_error")
def stop_at_first_error(answer):
    from .. import tasks
    from ..trace import Tracer

    items = list(range(16))
    with Tracer() as tracer:
        t0 = time.perf_counter()
        out = run_with_timeout(answer, items, tracer.wrap(tasks.unlucky), 2, timeout=20)
        elapsed = time.perf_counter() - t0
        records = tracer.records
    expect(isinstance(out, tuple) and len(out) == 2,
           f"stop_at_first_error should return a pair (results, error), got {out!r:.80}.")
    results, error = out
    expect(isinstance(results, dict), f"results should be a dict of item -> result, got {results!r:.80}.")
    expect(isinstance(error, ValueError),
           f"the error should be the ValueError raised for item 3, got {error!r:.80}.")
    expect(3 not in results, "item 3 failed, so it must not be in results.")
    wrong = {k: v for k, v in results.items() if k != 3 and v != 2 * k}
    expect(not wrong, f"some results are wrong: {wrong!r:.80}.")
    expect({0, 1, 2} <= results.keys(),
           f"items 0, 1 and 2 finish before item 3 fails, so they belong in results; got {sorted(results)}.")
    expect(_overlap(records) >= 2,
           "the tasks ran one after another: use a thread pool with `workers` threads.")
    expect(len(records) <= 8,
           f"{len(records)} of 16 tasks started: after the first error the queued ones should be "
           f"cancelled (shutdown(cancel_futures=True), or cancel() each pending future).")
    expect(elapsed < 2.0, f"it took {elapsed:.1f} s; stopping early should take well under a second.")
    return (f"Stopped after the first error: {len(records)} of 16 tasks ever started, "
            f"{len(results)} results kept.")


def _overlap(records) -> int:
    from ..trace import max_concurrency

    return max_concurrency(records)


class _Urllib3Counter(logging.Handler):
    def __enter__(self):
        self.pool_full = self.new_connections = 0
        self.logger = logging.getLogger("urllib3.connectionpool")
        self.saved = (self.logger.level, self.logger.propagate)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(self)
        return self

    def emit(self, record):
        text = record.getMessage()
        self.pool_full += text.startswith("Connection pool is full")
        self.new_connections += text.startswith("Starting new HTTP")

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]


@exercise("05.3", "One session, many threads, no warnings",
          hint="A session keeps connections open for the next request; how many can it keep per host, "
               "and how many threads share it? Section 6 of 05b shows two fixes.",
          solution="futureslab.solutions.nb05:fetch_titles")
def fetch_titles(answer):
    from ..data import POSTS
    from ..server import LocalAPI

    ids = list(range(1, 61))
    with LocalAPI(latency=0.05) as api, _Urllib3Counter() as logs:
        titles = run_with_timeout(answer, api.url, ids, 20, timeout=30)
        stats = api.stats()
    expect(isinstance(titles, (list, tuple)), f"fetch_titles should return a list, got {titles!r:.60}.")
    expect(list(titles) == [POSTS[i - 1]["title"] for i in ids],
           "the titles are not right, or not in the order of post_ids.")
    expect(stats["requests"] >= len(ids), f"the server saw only {stats['requests']} requests for {len(ids)} posts.")
    expect(stats["peak_in_flight"] >= 10,
           f"at most {stats['peak_in_flight']} requests were in flight at once: use `workers` threads.")
    expect(logs.pool_full == 0,
           f"urllib3 warned 'Connection pool is full' {logs.pool_full} times: the session's pool keeps "
           f"10 connections by default; size it to the thread count, or use a session per thread.")
    expect(logs.new_connections <= 20,
           f"{logs.new_connections} connections were opened for {len(ids)} requests on 20 threads: "
           f"connections were not reused. `requests.get` (and a new Session per request) opens a "
           f"fresh connection every time; keep sessions that live across requests.")
    return (f"All {len(ids)} titles, up to {stats['peak_in_flight']} requests at once, "
            f"and no connection thrown away.")
