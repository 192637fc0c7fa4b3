"""Worked solutions to the exercises of notebook 07 (tuning and scaling). Try them yourself first!"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from futureslab.tasks import count_primes_in, prime_ranges
from futureslab.cores import granted_cores
from futureslab.timing import measure, stopwatch


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
    """Count the primes below ``limit`` on one process per core granted to this process."""
    # the cores this process may use (CPU affinity and a container's quota), not os.cpu_count();
    # a fractional quota (1.5 cores) is rounded up
    workers = max(1, math.ceil(granted_cores().cores))
    ranges = prime_ranges(limit, chunks=2 * workers)  # a few chunks per worker balance the load
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(task, ranges))
