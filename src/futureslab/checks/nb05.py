"""Checkers for notebook 05 (pitfalls). Each returns a Verdict and never raises."""

from __future__ import annotations

import logging
import os
import pickle
import time

from . import Wrong, exercise, expect, run_with_timeout

__all__ = ["add_ten_in_processes", "stop_at_first_error", "fetch_titles"]


@exercise("05.1", "Add ten, on processes, without a lambda",
          hint="pool.map(add, numbers, [10] * len(numbers)) or pool.map(functools.partial(add, b=10), numbers).",
          solution="futureslab.solutions.nb05:add_ten_in_processes")
def add_ten_in_processes(answer):
    from .. import tasks
    from ..trace import Tracer

    numbers = list(range(8))
    with Tracer() as tracer:
        try:
            result = run_with_timeout(answer, numbers, tracer.wrap(tasks.add), timeout=60)
        except (pickle.PicklingError, AttributeError) as exc:
            raise Wrong(f"a pickling error ({type(exc).__name__}): a lambda or a function defined in "
                        f"the notebook cannot be sent to a process pool. Pass `add` itself, with the "
                        f"10 as a second iterable or through functools.partial.") from None
        records = tracer.records
    expect(result is not None and not isinstance(result, (str, bytes)),
           f"add_ten_in_processes should return a list, got {result!r:.60}.")
    result = list(result)
    expect(result == [n + 10 for n in numbers],
           f"for {numbers} expected {[n + 10 for n in numbers]}, got {result!r:.80}.")
    expect(len(records) == len(numbers),
           f"`add` was called {len(records)} times for {len(numbers)} numbers: call the `add` you are "
           f"given, once per number.")
    expect(all(r.pid != os.getpid() for r in records),
           "the additions ran in this process, not in a ProcessPoolExecutor's workers.")
    return "Right results, computed in worker processes, and nothing unpicklable sent."


@exercise("05.2", "Stop at the first error",
          hint="Submit every item, loop over as_completed; on the first exception call "
               "pool.shutdown(cancel_futures=True) and return what you have.",
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
        self.pool_full = 0
        self.logger = logging.getLogger("urllib3.connectionpool")
        self.saved = (self.logger.level, self.logger.propagate)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(self)
        return self

    def emit(self, record):
        self.pool_full += record.getMessage().startswith("Connection pool is full")

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]


@exercise("05.3", "One session, many threads, no warnings",
          hint="requests.Session(); session.trust_env = False; "
               "session.mount('http://', HTTPAdapter(pool_maxsize=workers)); then pool.map over the ids.",
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
    return (f"All {len(ids)} titles, up to {stats['peak_in_flight']} requests at once, "
            f"and no connection thrown away.")
