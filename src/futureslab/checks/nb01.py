"""Checkers for the exercises of notebook 01 · Threads vs processes.

Each checker runs the learner's function against its own :class:`~futureslab.server.LocalAPI` or
with a :class:`~futureslab.trace.Tracer`, so it can tell not only whether the answer is right but
whether the work really overlapped (the server's peak-in-flight count, or the timeline's workers).
"""

from __future__ import annotations

import os
import pickle
import time

from .. import data
from ..server import LocalAPI
from ..tasks import count_primes_in, prime_ranges
from ..trace import Tracer
from . import Wrong, exercise, expect, run_with_timeout

__all__ = ["fetch_titles", "count_primes_parallel", "fetch_politely"]

LATENCY = 0.2  # seconds per request in the checkers' own API: long enough to tell overlap apart


@exercise("01.1", "Fetch post titles on threads",
          hint="Use ThreadPoolExecutor(max_workers=len(post_ids)) and pool.map(fetch_post, post_ids); "
               "keep only each post's 'title'.",
          solution="futureslab.solutions.nb01:fetch_titles")
def fetch_titles(answer):
    post_ids = [3, 1, 4, 15, 9, 2, 6, 5]
    expected = [data.POSTS[i - 1]["title"] for i in post_ids]
    with LocalAPI(latency=LATENCY) as api:
        t0 = time.perf_counter()
        result = run_with_timeout(answer, list(post_ids), timeout=15)
        elapsed = time.perf_counter() - t0
        stats = api.stats()
    expect(isinstance(result, list),
           f"fetch_titles should return a list of titles, got {type(result).__name__}.")
    expect(len(result) == len(post_ids),
           f"asked for {len(post_ids)} posts, got {len(result)} titles back.")
    expect(result == expected,
           "the titles are not the right ones, or not in the order of post_ids "
           "(pool.map keeps the input order; as_completed does not).")
    expect(stats["requests"] >= len(post_ids),
           f"the server saw only {stats['requests']} requests for {len(post_ids)} posts: "
           f"fetch each post from the API with fetch_post.")
    expect(stats["peak_in_flight"] >= len(post_ids) // 2,
           f"the titles are right, but the server never saw more than {stats['peak_in_flight']} "
           f"request(s) at once, so the fetches ran one after another. Run them on a thread pool.")
    return (f"all {len(post_ids)} titles, in order; up to {stats['peak_in_flight']} requests were in "
            f"flight at once, so the waits overlapped ({elapsed:.2f} s instead of about "
            f"{len(post_ids) * LATENCY:.1f} s).")


def _traced_pids(records):
    return sorted({r.pid for r in records})


@exercise("01.2", "Count primes on processes",
          hint="with ProcessPoolExecutor(max_workers=workers) as pool: return sum(pool.map(task, ranges)). "
               "Pass `task` itself, not a lambda around it.",
          solution="futureslab.solutions.nb01:count_primes_parallel")
def count_primes_parallel(answer):
    ranges = prime_ranges(1_160_000, 4, start=1_000_000)  # four chunks of roughly equal work
    expected = sum(count_primes_in(r) for r in ranges)
    workers = 2
    with Tracer() as tracer:
        task = tracer.wrap(count_primes_in)
        try:
            result = run_with_timeout(answer, task, list(ranges), workers, timeout=30)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            if "pickle" not in str(exc).lower():
                raise
            raise Wrong(f"a process pool could not pickle what you sent it ({type(exc).__name__}). "
                         f"Send the module-level function `task` itself, never a lambda or a "
                         f"function defined in the notebook.")
        records = tracer.records
    expect(isinstance(result, int) and not isinstance(result, bool),
           f"count_primes_parallel should return the total as an int, got {result!r}.")
    expect(result == expected,
           f"the total should be {expected}, got {result}. Did every range get counted once?")
    expect(len(records) == len(ranges),
           f"`task` ran {len(records)} times for {len(ranges)} ranges: call it once per range, "
           f"and pass `task` itself to the pool (not count_primes_in).")
    pids = _traced_pids(records)
    expect(os.getpid() not in pids,
           "the total is right, but the work ran in this notebook's own process"
           + (" (on threads: with the GIL only one of them computes at a time)."
              if len({r.thread for r in records}) > 1 else ", one range after another.")
           + " Use a ProcessPoolExecutor.")
    expect(len(pids) >= 2,
           "the work ran in one worker process only; use max_workers=workers so two "
           "processes share it.")
    expect(len(pids) <= workers,
           f"{len(pids)} processes ran the work, but workers={workers}: pass max_workers=workers.")
    overlap = tracer.max_concurrency()
    expect(overlap >= 2, "two processes ran the work, but never at the same time.")
    return (f"total {result}, computed by {len(pids)} worker processes that ran at the same time: "
            f"each has its own interpreter and its own GIL.")


@exercise("01.3", "Fetch politely: at most N requests at once",
          hint="The size of a thread pool is the most calls it runs at once: "
               "ThreadPoolExecutor(max_workers=max_in_flight) and pool.map(fetch_user, user_ids).",
          solution="futureslab.solutions.nb01:fetch_politely")
def fetch_politely(answer):
    user_ids = list(range(1, 11))
    expected = [data.USERS[i - 1] for i in user_ids]
    with LocalAPI(latency=LATENCY) as api:
        for limit in (3, 5):
            api.reset_stats()
            result = run_with_timeout(answer, list(user_ids), limit, timeout=15)
            stats = api.stats()
            expect(isinstance(result, list),
                   f"fetch_politely should return a list of users, got {type(result).__name__}.")
            expect(result == expected,
                   "the users are not the right ones, or not in the order of user_ids.")
            expect(stats["peak_in_flight"] <= limit,
                   f"with max_in_flight={limit} the server saw {stats['peak_in_flight']} requests "
                   f"at once: too many. The pool's size is the limit.")
            expect(stats["peak_in_flight"] >= limit,
                   f"with max_in_flight={limit} the server never saw more than "
                   f"{stats['peak_in_flight']} request(s) at once: you may use all {limit}.")
    return "the users arrived in order, with exactly as many requests in flight as allowed (3, then 5)."
