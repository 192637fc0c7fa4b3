"""Checkers for the exercises of notebook 07 (tuning and scaling)."""

from __future__ import annotations

import collections
import threading
from concurrent.futures import ThreadPoolExecutor

from futureslab.checks import exercise, expect, run_with_timeout
from futureslab.server import LocalAPI
from futureslab.tasks import count_primes_in, fetch_post, sleep_for
from futureslab.timing import cpu_count
from futureslab.trace import Tracer

__all__ = ["sweep", "pick_workers", "count_primes_fast"]


@exercise("07.1", "Sweep the worker count",
          hint="For each n: time `with ThreadPoolExecutor(max_workers=n) as ex: list(ex.map(task, items))` "
               "with a stopwatch, and store the seconds under key n.",
          solution="futureslab.solutions.nb07:sweep")
def sweep(answer):
    items = [0.05] * 8
    workers_list = [1, 2, 8]
    with Tracer() as tracer:
        times = run_with_timeout(answer, tracer.wrap(sleep_for), items, workers_list, timeout=20)
    expect(isinstance(times, dict), f"sweep should return a dict of workers -> seconds, got "
                                    f"{type(times).__name__}.")
    expect(sorted(times) == workers_list, f"the keys should be the worker counts {workers_list}, "
                                          f"got {sorted(times, key=str)}.")
    expect(all(isinstance(v, (int, float)) and v > 0 for v in times.values()),
           "every value should be the seconds that run took (a positive number).")
    runs = len(tracer.records)
    expect(runs == len(items) * len(workers_list),
           f"task should run {len(items)} times per worker count ({len(items) * len(workers_list)} in "
           f"all), it ran {runs} times.")
    expect(tracer.max_concurrency() >= 6,
           f"at most {tracer.max_concurrency()} tasks ran at the same moment: the 8-worker run should "
           f"have overlapped all 8. Did you pass max_workers=n to the pool?")
    expect(times[1] >= 0.3, f"8 waits of 0.05 s on 1 worker cannot take {times[1]:.3f} s: time the whole "
                            f"map, including list() that waits for the results.")
    expect(times[8] <= times[1] / 3, f"8 workers took {times[8]:.3f} s against {times[1]:.3f} s for one: "
                                     f"the runs did not overlap.")
    return (f"1, 2 and 8 workers took {times[1]:.2f}, {times[2]:.2f} and {times[8]:.2f} s: "
            f"the waits overlapped as the pool grew.")


@exercise("07.2", "Pick max_workers by measuring",
          hint="Time run(n) for each candidate (best of two with futureslab.timing.measure), find the "
               "fastest time, then return the smallest n within 10 % of it.",
          solution="futureslab.solutions.nb07:pick_workers")
def pick_workers(answer):
    calls = collections.Counter()
    lock = threading.Lock()
    with LocalAPI(latency=0.1) as api:
        def run(n):
            """Fetch 8 posts on n threads."""
            with lock:
                calls[n] += 1
            with ThreadPoolExecutor(max_workers=n) as ex:
                return list(ex.map(lambda i: fetch_post(i, base_url=api.url), range(1, 9)))

        candidates = [2, 4, 8, 16, 32]
        choice = run_with_timeout(answer, run, candidates, timeout=30)
        peak = api.stats()["peak_in_flight"]
    missing = [n for n in candidates if calls[n] == 0]
    expect(not missing, f"you never measured run({missing[0] if missing else ''}): time every candidate "
                        f"before choosing.")
    expect(choice in candidates, f"the answer should be one of {candidates}, got {choice!r}.")
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
          hint="Use futureslab.timing.cpu_count() (the CPUs this process may use) as max_workers, split "
               "the range with prime_ranges(limit, chunks=2 * workers), and sum pool.map(task, ranges).",
          solution="futureslab.solutions.nb07:count_primes_fast")
def count_primes_fast(answer):
    limit = 300_000
    with Tracer() as tracer:
        total = run_with_timeout(answer, limit, task=tracer.wrap(count_primes_in), timeout=60)
    records = tracer.records
    expect(total == 25_997, f"there are 25997 primes below {limit}, you counted {total!r}.")
    expect(records, "the task you were given was never called: pass `task` to pool.map.")
    processes = {r.pid for r in records if r.worker.startswith("process")}
    cores = cpu_count()
    expect(processes, "every chunk ran in this process: use a ProcessPoolExecutor for CPU work.")
    expect(len(processes) <= cores,
           f"{len(processes)} worker processes ran chunks, but this machine lets you use {cores} CPUs: "
           f"extra processes cannot run at the same time and only add start-up cost.")
    if cores >= 2:
        expect(tracer.max_concurrency() >= 2,
               "the chunks ran one after another: use more than one worker process.")
    return f"{len(processes)} processes (this machine lets you use {cores} CPUs) counted {total} primes."
