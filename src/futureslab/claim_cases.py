"""The course's measured claims as runnable cases, each with its right and its wrong mechanisms.

A *case* runs one kind of claim the notebooks make, the way the notebooks judge it, with the
mechanism swapped for another: the right one (processes for pure-Python work, threads for waiting)
or a wrong one (threads under the GIL, workers pinned to one CPU, an executor with no parallelism,
one worker, work that waits where computing is claimed). ``tests/test_claim_mutations.py`` and
``benchmarks/claims.py`` run them: a wrong mechanism must never get a ✓, the right one must never
fail. ``docs/claims.md`` is the table of every claim in the course, its bar, and its mutations.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from .claims import ClaimFailed, claim, cpu_race, sequential_executor
from .cores import pin_to_cpu

__all__ = ["Case", "CASES", "pinned_processes", "outcome"]


def pinned_processes(workers):
    """A process pool whose workers all share CPU 0 (Linux): parallel in name only."""
    return ProcessPoolExecutor(workers, initializer=pin_to_cpu, initargs=(0,))


def outcome(judge: Callable[[], str]) -> str:
    """``"held"``, ``"unshown"`` or ``"failed"``: what a claim judged by ``judge()`` came to."""
    try:
        return judge()
    except ClaimFailed:
        return "failed"


@dataclass
class Case:
    name: str
    notebook: str
    bar: str
    right: str
    mechanisms: dict = field(repr=False)   # label -> callable() returning {claim: outcome}
    needs_cores: bool = True

    @property
    def wrong(self) -> list[str]:
        return [m for m in self.mechanisms if m != self.right]

    def run(self, mechanism: str) -> dict:
        return self.mechanisms[mechanism]()


# --- processes compute pure-Python work in parallel (01 §2, 05a, 06 §2, 07 §2) -------------------

def _slices():
    from .tasks import prime_ranges

    return prime_ranges(1_440_000, 4, start=1_200_000)  # four slices of ~50-80 ms each


def _cpu_parallel(pool=None, workers=2, task=None):
    from .tasks import count_primes_in

    def go():
        race = cpu_race(task or count_primes_in, _slices(), workers, pool=pool, rounds=2, budget=4.0)
        return {"speed-up": outcome(lambda: race.claim_parallel("processes computed in parallel")),
                "overlap": outcome(lambda: race.claim_overlap("processes computed at the same time"))}
    return go


_CPU = {"processes": _cpu_parallel(ProcessPoolExecutor),
        "threads (GIL)": _cpu_parallel(ThreadPoolExecutor),
        "no parallelism": _cpu_parallel(sequential_executor),
        "one worker": _cpu_parallel(ProcessPoolExecutor, workers=1)}
if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
    _CPU["processes pinned to one CPU"] = _cpu_parallel(pinned_processes)


# --- threads speed up work that releases the GIL (01: hashlib on large buffers) ------------------

def _gil_free(work: str, pool=ThreadPoolExecutor):
    """01's judge for hashing threads (``Race.claim_parallel``), fed hashing or pure-Python work."""
    def go():
        import functools

        from .tasks import count_primes_in, sha256_rounds

        if work == "hash":
            task, items = functools.partial(sha256_rounds, 8.0), [4] * 4
        else:
            task, items = count_primes_in, _slices()
        race = cpu_race(task, items, 2, pool=pool, control=sequential_executor, rounds=2, budget=4.0)
        return {"threads hash in parallel": outcome(lambda: race.claim_parallel("threads hashed in parallel"))}
    return go


# --- under the GIL threads take turns on pure-Python work (01 §2) --------------------------------

def _turns(control, work: str = "pure-python"):
    def go():
        import functools

        from .lesson01 import claim_gil
        from .tasks import count_primes_in, sha256_rounds

        if work == "hash":
            task, items = functools.partial(sha256_rounds, 8.0), [4] * 4
        else:
            task, items = count_primes_in, _slices()
        race = cpu_race(task, items, 2, control=control, rounds=2, budget=0)
        return {"threads took turns": outcome(lambda: claim_gil(race, "threads took turns holding the GIL"))}
    return go


# --- threads overlap waiting (01 §3): I/O speed-up against the ideal of N threads -----------------

def _io(workers: int = 8, pool=ThreadPoolExecutor):
    def go():
        from .server import LocalAPI
        from .tasks import fetch_post
        from .timing import measure

        with LocalAPI(latency=0.1) as api, pool(workers) as ex:
            ids = list(range(1, 9))
            seq = measure(lambda: [fetch_post(i, api.url) for i in ids], repeat=1).best
            par = measure(lambda: list(ex.map(fetch_post, ids, [api.url] * len(ids))), repeat=2).best
        speed = seq / par
        return {"8 threads ≥ 60% of 8x": outcome(lambda: claim(
            speed >= 0.6 * 8, "8 threads fetched 8 posts at least 60% of the ideal 8x faster",
            speedup=speed))}
    return go


# --- more processes than cores add nothing (07 §3): an upper bound, needs the whole machine -----

def _oversubscribe(task_name: str = "count_primes_in"):
    """05a's judge, run on :func:`futureslab.pitfalls.workers_per_core` (07 §3 judges the same bar)."""
    def go():
        from . import tasks
        from .cores import granted_cores
        from .lesson01 import BEYOND_GAIN_MAX
        from .pitfalls import workers_per_core

        cores = max(1, int(granted_cores().cores))
        work = tasks.count_primes_in if task_name == "count_primes_in" else tasks.sleep_for
        items = _slices() * 2 if task_name == "count_primes_in" else [0.05] * (8 * cores)
        best, room = workers_per_core(work, items, cores, rounds=2)
        gain = best[cores] / best[2 * cores]
        return {"2x processes gain ≤ 1.5x": outcome(lambda: claim(
            gain <= BEYOND_GAIN_MAX, "twice as many processes as cores gained at most 1.5x",
            needs_cores=room.granted, room=room, gain=gain))}
    return go


# --- a process starts slower than a thread, spawn slower than fork (01 §6): needs the machine quiet --

def _start_ups(claimed: str, pretend: str | None = None):
    """01 §6's judges on :func:`futureslab.lesson01.start_ups_measured`. ``claimed``: ``"threads"``
    (every start method over 3x a thread pool) or ``"fork"`` (spawn over 2x fork). ``pretend``:
    ``"threads"`` hands every start method a thread pool; ``"fork"`` starts every pool with fork."""
    def go():
        import multiprocessing

        from .lesson01 import start_ups_measured

        def pool(max_workers, mp_context):
            if pretend == "threads":
                return ThreadPoolExecutor(max_workers)
            if pretend == "fork":
                return ProcessPoolExecutor(max_workers, mp_context=multiprocessing.get_context("fork"))
            return ProcessPoolExecutor(max_workers, mp_context=mp_context)

        if claimed == "threads":
            starts, room, _ = start_ups_measured(process_pool=pool)
            return {"every start method > 3x threads": outcome(lambda: claim(
                all(starts[m] > 3 * starts["threads"] for m in starts if m != "threads"),
                "every start method took over 3x longer to start a pool than threads did",
                needs_cores=room.granted, room=room, **starts))}
        starts, room, _ = start_ups_measured(["fork", "spawn"], process_pool=pool)
        return {"spawn > 2x fork": outcome(lambda: claim(
            starts["spawn"] > 2 * starts["fork"], "spawn took over 2x longer to start a worker than fork",
            needs_cores=room.granted, room=room, fork=starts["fork"], spawn=starts["spawn"]))}
    return go


def _has_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


CASES = [
    Case("processes compute pure-Python work in parallel", "01 §2, 05a, 06 §2, 07 §2",
         "speed-up ≥ 0.6 × min(workers, granted cores) and ≥ 1.25× the threads control; "
         "overlap by ≥ 2 process ids with slices ≤ 1.75× the sequential ones",
         "processes", _CPU),
    Case("threads speed up hashing (the GIL is released)", "01",
         "speed-up ≥ 0.6 × min(workers, granted cores) and ≥ 1.25× a no-parallelism control",
         "threads on hashlib",
         {"threads on hashlib": _gil_free("hash"),
          "threads on pure-Python work": _gil_free("pure-python"),
          "no parallelism": _gil_free("hash", pool=sequential_executor)}),
    *([Case("threads take turns under the GIL", "01 §2",
            "≥ 2 tasks in progress at once and ≤ 1.3 cores busy (CPU time / wall time); needs the "
            "whole machine quiet", "threads on pure Python",
            {"threads on pure Python": _turns(ThreadPoolExecutor),
             "threads on hashlib (the GIL released)": _turns(ThreadPoolExecutor, "hash"),
             "processes passed off as threads": _turns(ProcessPoolExecutor),
             "no parallelism": _turns(sequential_executor)})]
      if getattr(sys, "_is_gil_enabled", lambda: True)() else []),
    Case("threads overlap waiting", "01 §3", "speed-up ≥ 0.6 × 8 for 8 requests on 8 threads",
         "8 threads", {"8 threads": _io(8), "1 thread": _io(1),
                       "no parallelism": _io(8, pool=sequential_executor)}, needs_cores=False),
    Case("more processes than cores add nothing", "05a, 07 §3",
         "2 × cores processes ≤ 1.5× faster than cores processes (computing predicts 1×, waiting 2×); needs the whole machine quiet",
         "computing", {"computing": _oversubscribe("count_primes_in"),
                       "waiting instead of computing": _oversubscribe("sleep_for")}),
    Case("a process pool starts slower than a thread pool", "01 §6",
         "every start method's first result > 3× a thread pool's (best of 3, threads best of 9); "
         "needs the whole machine quiet", "processes",
         {"processes": _start_ups("threads"),
          "threads passed off as processes": _start_ups("threads", pretend="threads")}),
    *([Case("spawn starts slower than fork", "01 §6",
            "spawn's first result > 2× fork's (best of 3 each); needs the whole machine quiet", "spawn",
            {"spawn": _start_ups("fork"), "fork passed off as spawn": _start_ups("fork", pretend="fork")})]
      if _has_fork() else []),
]
