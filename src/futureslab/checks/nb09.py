"""Checkers for the exercises of notebook 09 (newer Pythons and clusters)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from futureslab.checks import exercise, expect, run_with_timeout
from futureslab.server import LocalAPI
from futureslab.tasks import count_primes, count_primes_in, prime_ranges
from futureslab.trace import Tracer

__all__ = ["first_n_then_stop", "total_primes", "fastest_first"]


@exercise("09.1", "Stop early with cancel_futures",
          hint="Make the pool without `with`, submit every id, collect results from as_completed until "
               "you have n, then call pool.shutdown(cancel_futures=True) in a `finally:`.",
          solution="futureslab.solutions.nb09:first_n_then_stop")
def first_n_then_stop(answer):
    ids, n = list(range(1, 41)), 4
    with LocalAPI(latency=0.1) as api:
        results = run_with_timeout(answer, ids, n, timeout=20)
        time.sleep(0.15)  # anything still running would reach the server by now
        stats = api.stats()
    expect(isinstance(results, (list, tuple)), f"return a list of posts, got {type(results).__name__}.")
    expect(len(results) == n, f"return exactly the first {n} posts, got {len(results)}.")
    got = [r.get("id") if isinstance(r, dict) else r for r in results]
    expect(all(i in ids for i in got) and len(set(got)) == n, f"expected {n} different posts, got ids {got}.")
    expect(stats["peak_in_flight"] >= 2, "the requests ran one at a time: submit them all to a pool.")
    expect(stats["requests"] <= 16,
           f"the server got {stats['requests']} of the {len(ids)} requests: the queued ones still ran "
           f"after you had your {n}. Shut the pool down with cancel_futures=True.")
    return f"{n} posts arrived, and {len(ids) - stats['requests']} queued requests were never sent."


@exercise("09.2", "One function, any executor",
          hint="futures = [executor.submit(task, r) for r in ranges]; then sum f.result() for f in "
               "as_completed(futures). Use only submit/map/as_completed, nothing pool-specific.",
          solution="futureslab.solutions.nb09:total_primes")
def total_primes(answer):
    # ranges of ~20 ms each: long enough that two threads' runs overlap even with the GIL
    ranges = prime_ranges(200_000, chunks=8)
    expected = count_primes(0, 200_000)
    with Tracer() as tracer, ThreadPoolExecutor(max_workers=4) as pool:
        total = run_with_timeout(answer, pool, ranges, task=tracer.wrap(count_primes_in), timeout=30)
    expect(total == expected, f"there are {expected} primes below 200000, you counted {total!r}.")
    workers = set(tracer.workers)
    expect(tracer.records, "the task you were given was never called: pass `task` to executor.submit.")
    expect(all(w.startswith("thread-") for w in workers), "some ranges ran in the calling thread: hand every one to the executor.")
    expect(tracer.max_concurrency() >= 2, "the ranges ran one after another: submit them all before you "
                                          "wait for any result.")
    return "the same code runs on a thread pool, a process pool or a Dask cluster's executor."


@exercise("09.3", "as_completed on a Dask cluster",
          hint="futures = [client.submit(sleep_then_return, d, d) for d in delays]; then "
               "[f.result() for f in distributed.as_completed(futures)].",
          solution="futureslab.solutions.nb09:fastest_first")
def fastest_first(answer, client):
    delays = [0.4, 0.1, 0.3, 0.2]
    t0 = time.perf_counter()
    results = run_with_timeout(answer, client, delays, timeout=30)
    elapsed = time.perf_counter() - t0
    expect(isinstance(results, (list, tuple)), f"return a list, got {type(results).__name__}.")
    expect(sorted(results) == sorted(delays), f"expected the values {delays} in some order, got {results}.")
    expect(results[0] == min(delays), f"the first result was {results[0]}, but the 0.1 s task finished "
                                      f"first: collect results as they complete, not in submission order.")
    expect(elapsed < 0.9 * sum(delays), f"the tasks took {elapsed:.2f} s in all, as long as one after "
                                        f"another: submit them all before waiting.")
    return "the cluster ran the tasks together and you took each result as it arrived."
