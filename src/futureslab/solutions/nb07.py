"""Worked solutions to the exercises of notebook 07 (tuning and scaling). Try them yourself first!"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from futureslab.tasks import count_primes_in, prime_ranges
from futureslab.timing import cpu_count, measure, stopwatch


def sweep(task, items, workers_list):
    """Run ``task`` over ``items`` on a thread pool of each size in ``workers_list``;
    return ``{workers: seconds}``."""
    times = {}
    for n in workers_list:
        with stopwatch() as sw:
            with ThreadPoolExecutor(max_workers=n) as executor:
                list(executor.map(task, items))  # list() waits for every result
        times[n] = sw.elapsed
    return times


def pick_workers(run, candidates, tolerance=0.10):
    """Time ``run(n)`` for each ``n`` in ``candidates`` (best of two) and return the smallest ``n``
    whose time is within ``tolerance`` of the fastest."""
    best = {n: measure(run, n, repeat=2).best for n in candidates}
    fastest = min(best.values())
    return min(n for n, seconds in best.items() if seconds <= fastest * (1 + tolerance))


def count_primes_fast(limit, task=count_primes_in):
    """Count the primes below ``limit`` on one process per usable CPU."""
    workers = cpu_count()  # the CPUs this process may use, not os.cpu_count()
    ranges = prime_ranges(limit, chunks=2 * workers)  # a few chunks per worker balance the load
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(task, ranges))
