"""Checkers for the exercises of notebook 07 (tuning and scaling)."""

from __future__ import annotations

import collections
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from futureslab.checks import describe, exercise, expect, owned_pool, run_with_timeout
from futureslab.cores import granted_cores
from futureslab.server import LocalAPI
from futureslab.tasks import count_primes_in, fetch_post, sleep_for
from futureslab.trace import Tracer

__all__ = ["sweep", "pick_workers", "count_primes_fast"]


def _not_none(value, name: str, what: str) -> None:
    expect(value is not None, f"{name} returned None: did you forget `return`? It should return {what}.")


@exercise("07.1", "Sweep the worker count",
          hint="Time each pool size on its own: start the clock before the pool is made, and stop it "
               "only once every result is back (leaving the pool's `with` block waits for them). "
               "Remember that map is lazy about handing you results.",
          solution="futureslab.solutions.nb07:sweep")
def sweep(answer):
    items = [0.05] * 8
    workers_list = [1, 2, 8]
    with Tracer() as tracer:
        times = run_with_timeout(answer, tracer.wrap(sleep_for), items, workers_list, timeout=10)
    records = tracer.records
    _not_none(times, "sweep", "a dict of workers -> seconds")
    expect(isinstance(times, dict), f"sweep should return a dict of workers -> seconds, got {describe(times)}.")
    expect(sorted(times, key=str) == sorted(workers_list, key=str),
           f"the keys should be the worker counts {workers_list}, got {sorted(times, key=str)}.")
    expect(all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in times.values()),
           "every value should be the seconds that run took (a positive number).")
    expect(records, "your function returned timings without ever running `task`: run it over the "
                    "items on each pool and time that.")
    expect(all(r.pid == os.getpid() for r in records),
           "the tasks ran in other processes: this exercise sweeps a ThreadPoolExecutor (waiting "
           "needs threads, not processes).")
    runs = len(records)
    expect(runs == len(items) * len(workers_list),
           f"task should run {len(items)} times per worker count ({len(items) * len(workers_list)} in "
           f"all), it ran {runs} times.")
    expect(tracer.max_concurrency() >= 6,
           f"at most {tracer.max_concurrency()} tasks ran at the same moment: the 8-worker run should "
           f"have overlapped all 8. Did you pass max_workers=n to the pool?")
    expect(times[1] >= 0.3, f"8 waits of 0.05 s on 1 worker cannot take {times[1]:.3f} s: time the whole "
                            f"map, including list() that waits for the results.")
    expect(times[8] <= times[1] / 3, f"8 workers took {times[8]:.3f} s against {times[1]:.3f} s for one: "
                                     f"are the times stored under the right worker counts?")
    return (f"1, 2 and 8 workers took {times[1]:.2f}, {times[2]:.2f} and {times[8]:.2f} s: "
            f"the waits overlapped as the pool grew.")


@exercise("07.2", "Pick max_workers by measuring",
          hint="Work in two passes: first time every candidate (keep the better of two runs each), "
               "then look for the smallest candidate whose time is close enough to the fastest one.",
          solution="futureslab.solutions.nb07:pick_workers")
def pick_workers(answer):
    calls = collections.Counter()
    lock = threading.Lock()
    with LocalAPI(latency=0.1) as api:
        def run(n):
            """Fetch 8 posts on n threads."""
            with lock:
                calls[n] += 1
            with owned_pool(ThreadPoolExecutor(max_workers=n)) as ex:
                return list(ex.map(lambda i: fetch_post(i, base_url=api.url), range(1, 9)))

        candidates = [2, 4, 8, 16, 32]
        choice = run_with_timeout(answer, run, candidates, timeout=15)
        peak = api.stats()["peak_in_flight"]
    _not_none(choice, "pick_workers", "one of the candidates")
    expect(choice in candidates, f"the answer should be one of {candidates}, got {describe(choice)}.")
    missing = [n for n in candidates if calls[n] == 0]
    expect(not missing, f"you never measured run({missing[0] if missing else ''}): time every candidate "
                        f"before choosing.")
    expect(peak >= 8, f"the server never saw 8 requests at once (peak {peak}): run(n) should be called "
                      f"with each n.")
    expect(choice not in (2, 4), f"{choice} workers is slower than 8: the 8 requests wait in "
                                 f"{8 // choice} rounds. Pick the smallest n that is about as fast as "
                                 f"the fastest.")
    expect(choice in (8, 16), f"{choice} threads for 8 requests: the extra threads have nothing to do. "
                              f"Pick the smallest n whose time is within 10 % of the fastest.")
    return (f"you chose {choice}: more threads than requests cannot make 8 requests faster, "
            f"and fewer make them wait in rounds.")


@exercise("07.3", "Size a process pool for CPU work",
          hint="Which pool computes pure Python in parallel, and how many of its workers can run at "
               "once on this machine (section 4 says how to ask)? Split the range into a few pieces "
               "per worker and add up what the pieces give.",
          solution="futureslab.solutions.nb07:count_primes_fast")
def count_primes_fast(answer):
    limit = 300_000
    with Tracer() as tracer:
        total = run_with_timeout(answer, limit, task=tracer.wrap(count_primes_in), timeout=20)
    records = tracer.records
    _not_none(total, "count_primes_fast", "the number of primes below limit")
    expect(total == 25_997, f"there are 25997 primes below {limit}, you counted {describe(total)}.")
    expect(records, f"your function returned {total} without calling the `task` it was given: pass "
                    f"`task` to pool.map.")
    processes = {r.pid for r in records if r.worker.startswith("process")}
    grant = granted_cores()
    allowed = max(1, math.ceil(grant.cores - 1e-9))
    expect(processes, "every chunk ran in this process: use a ProcessPoolExecutor for CPU work.")
    expect(len(processes) <= allowed,
           f"{len(processes)} worker processes ran chunks, but {grant}: extra processes cannot run at "
           f"the same time and only add start-up cost.")
    if allowed >= 2:
        expect(tracer.max_concurrency() >= 2,
               "the chunks ran one after another: use more than one worker process.")
    return f"{len(processes)} processes ({grant}) counted {total} primes."
