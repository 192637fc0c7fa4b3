"""Worked solutions to the exercises of notebook 09 (newer Pythons and clusters). Try them yourself first!"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed

from futureslab.tasks import count_primes_in, fetch_post, sleep_then_return


def first_n_then_stop(ids, n):
    """Fetch posts on 4 threads; return the first ``n`` that arrive and cancel the rest (3.9+)."""
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        futures = [pool.submit(fetch_post, i) for i in ids]
        results = []
        for future in as_completed(futures):
            results.append(future.result())
            if len(results) == n:
                break
        return results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # queued requests never start


def total_primes(executor, ranges, task=count_primes_in):
    """Sum ``task`` over ``ranges`` on any concurrent.futures-style executor."""
    futures = [executor.submit(task, r) for r in ranges]
    return sum(f.result() for f in as_completed(futures))


def fastest_first(client, delays):
    """Run ``sleep_then_return(d, d)`` on a Dask cluster for each delay; results as they finish."""
    from distributed import as_completed as dask_as_completed

    futures = [client.submit(sleep_then_return, d, d) for d in delays]
    return [f.result() for f in dask_as_completed(futures)]
