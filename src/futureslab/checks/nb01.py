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
from . import Wrong, describe, exercise, expect, is_pickling_error, run_with_timeout

__all__ = ["fetch_titles", "count_primes_parallel", "fetch_politely"]

LATENCY = 0.2  # seconds per request in the checkers' own API: long enough to tell overlap apart


def _returned_nothing(result, name: str, what: str) -> None:
    expect(result is not None, f"{name} returned None: did you forget `return`? It should return {what}.")


@exercise("01.1", "Fetch post titles on threads",
          hint="Fetching is waiting, so which pool lets the waits overlap? Give it enough workers for "
               "every post to be in flight at once, and keep the order of post_ids (one of the pool's "
               "methods does that for you). Each post is a dict: keep only its title.",
          solution="futureslab.solutions.nb01:fetch_titles")
def fetch_titles(answer):
    post_ids = [3, 1, 4, 15, 9, 2, 6, 5]
    expected = [data.POSTS[i - 1]["title"] for i in post_ids]
    with LocalAPI(latency=LATENCY) as api:
        t0 = time.perf_counter()
        result = run_with_timeout(answer, list(post_ids), timeout=10)
        elapsed = time.perf_counter() - t0
        stats = api.stats()
    _returned_nothing(result, "fetch_titles", "a list of titles")
    expect(isinstance(result, list), f"fetch_titles should return a list of titles, got {describe(result)}.")
    expect(stats["requests"] >= len(post_ids),
           f"the server saw {stats['requests']} request(s) for {len(post_ids)} posts: fetch each post "
           f"from the API with fetch_post (a list typed in by hand is not fetched).")
    expect(len(result) == len(post_ids), f"asked for {len(post_ids)} posts, got {len(result)} titles back.")
    if sorted(map(str, result)) == sorted(expected) and result != expected:
        raise Wrong("the right titles, but not in the order of post_ids: collect the results in the "
                    "order you asked for them, not the order they finished.")
    expect(result == expected, "these are not the posts' titles: keep post['title'] of each post.")
    peak = stats["peak_in_flight"]
    expect(peak > 1, "the titles are right, but the server never saw more than one request at once: "
                     "the fetches ran one after another. Run them on a thread pool.")
    expect(peak >= len(post_ids) // 2,
           f"the titles are right and the requests overlapped, but never more than {peak} at once: "
           f"your pool has too few threads for {len(post_ids)} waits. Waiting costs no CPU; give "
           f"every post its own thread.")
    return (f"all {len(post_ids)} titles, in order; up to {peak} requests were in flight at once, so "
            f"the waits overlapped ({elapsed:.2f} s instead of about {len(post_ids) * LATENCY:.1f} s).")


def _traced_pids(records):
    return sorted({r.pid for r in records})


@exercise("01.2", "Count primes on processes",
          hint="Computing in pure Python needs processes, not threads. Size the pool with `workers`, "
               "hand the pool `task` itself (it must pickle it by name: what can't a lambda do?), and "
               "add up what comes back.",
          solution="futureslab.solutions.nb01:count_primes_parallel")
def count_primes_parallel(answer):
    ranges = prime_ranges(1_160_000, 4, start=1_000_000)  # four chunks of roughly equal work
    workers = 2
    with Tracer() as tracer:
        task = tracer.wrap(count_primes_in)
        try:
            result = run_with_timeout(answer, task, list(ranges), workers, timeout=15)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            if not is_pickling_error(exc):
                raise
            raise Wrong(f"a process pool could not pickle what you sent it ({type(exc).__name__}): "
                        f"a lambda or a function defined in the notebook has no importable name. "
                        f"Send the module-level function `task` itself.") from None
        records = tracer.records
    # counted after the answer ran, so the answer's time limit is its own
    expected = sum(count_primes_in(r) for r in ranges)
    _returned_nothing(result, "count_primes_parallel", "the total as an int")
    expect(isinstance(result, int) and not isinstance(result, bool),
           f"count_primes_parallel should return the total as an int, got {describe(result)}.")
    expect(records, f"your function returned {result} without ever calling `task`: call it once per "
                    f"range, on the pool (a number typed in by hand is not a computation).")
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
    expect(len(pids) <= workers,
           f"{len(pids)} processes ran the work, but workers={workers}: pass max_workers=workers.")
    if tracer.max_concurrency() < 2:
        expect(len(pids) >= 2,
               "the ranges were counted one at a time, in one worker process: let the pool have "
               "`workers` processes, and hand it every range before you wait for any result.")
        raise Wrong(f"{len(pids)} processes ran the work, but never at the same time: hand the pool "
                    f"every range before you wait for any result.")
    return (f"total {result}, computed by {len(pids)} worker processes that ran at the same time: "
            f"each has its own interpreter and its own GIL.")


@exercise("01.3", "Fetch politely: at most N requests at once",
          hint="A pool never runs more calls at once than it has workers. What size should the pool "
               "be, then?",
          solution="futureslab.solutions.nb01:fetch_politely")
def fetch_politely(answer):
    user_ids = list(range(1, 11))
    expected = [data.USERS[i - 1] for i in user_ids]
    with LocalAPI(latency=LATENCY) as api:
        for limit in (3, 5):
            api.reset_stats()
            result = run_with_timeout(answer, list(user_ids), limit, timeout=10)
            stats = api.stats()
            _returned_nothing(result, "fetch_politely", "a list of users")
            expect(isinstance(result, list),
                   f"fetch_politely should return a list of users, got {describe(result)}.")
            expect(stats["requests"] >= len(user_ids),
                   f"the server saw {stats['requests']} request(s) for {len(user_ids)} users: fetch "
                   f"each user with fetch_user.")
            expect(result == expected,
                   "the users are not the right ones, or not in the order of user_ids.")
            expect(stats["peak_in_flight"] <= limit,
                   f"with max_in_flight={limit} the server saw {stats['peak_in_flight']} requests "
                   f"at once: too many. The pool's size is the limit.")
            expect(stats["peak_in_flight"] >= limit,
                   f"with max_in_flight={limit} the server never saw more than "
                   f"{stats['peak_in_flight']} request(s) at once: you may use all {limit}.")
    return "the users arrived in order, with exactly as many requests in flight as allowed (3, then 5)."
