"""The measuring behind notebook 07 · Tuning and scaling, kept out of the lesson cells.

Every function that backs a claim takes the executor factory it judges (``pool=``), so the tests can
feed it the wrong mechanism and see the claim fail or say it cannot be shown.

* :func:`io_sweep` — the same I/O job on thread pools of several sizes (:class:`IOSweep`).
* :func:`cpu_counts`, :func:`cpu_ranges` — the process counts and work items 07 sweeps, from the
  granted cores; the CPU sweep itself is :func:`futureslab.lesson01.process_sweep`.
* :func:`serial_then_parallel` / :func:`amdahl_sweep` — a job with two requests in order and 16 that
  may overlap, on pools of several sizes (:class:`AmdahlSweep`): Amdahl's law with a serial part
  known by design, so the fit can be checked.
* :func:`cpu_fit_points` — which CPU measurements can inform a fit of Amdahl's law at all.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ._validate import check_callable, check_int, check_number
from .claims import Room, claim, quiet
from .interrupts import stopping_workers

#: Waiting needs no core, but each request's Python work (the client's and the local server's) needs
#: some CPU within the wait: the I/O claims need about one core free, or they cannot be shown.
IO_NEEDS_CORES = 1
from .lesson01 import Sweep, process_sweep
from .scaling import amdahl_speedup, fit_amdahl

__all__ = ["IOSweep", "io_sweep", "cpu_counts", "cpu_ranges", "Sweep", "process_sweep",
           "serial_then_parallel", "AmdahlSweep", "amdahl_sweep", "cpu_fit_points",
           "IO_SHARE", "IO_NEEDS_CORES", "P_TOLERANCE", "PREDICTION_TOLERANCE"]

#: Waiting on n threads must reach this share of the ideal speed-up n.
IO_SHARE = 0.7
#: The fitted parallel fraction must be this close to the designed one.
P_TOLERANCE = 0.05
#: The speed-up at the largest worker count must be this close (relatively) to Amdahl's prediction.
PREDICTION_TOLERANCE = 0.15


def _run_on(pool: Callable, n: int, fn: Callable, items) -> tuple[float, list]:
    t0 = time.perf_counter()
    with pool(n) as ex, stopping_workers(ex):
        results = list(ex.map(fn, items))
    return time.perf_counter() - t0, results


@dataclass
class IOSweep:
    """Best seconds of an I/O job on each pool size (``times[1]`` is the baseline)."""

    counts: tuple
    times: dict = field(default_factory=dict)
    attempts: int = 0
    room: Room | None = None

    def speedups(self) -> dict:
        return {n: self.times[1] / self.times[n] for n in self.counts}

    def near_ideal(self) -> tuple[bool, dict]:
        s = self.speedups()
        facts = {f"speedup_{n}": s[n] for n in self.counts}
        facts["share"] = IO_SHARE
        return all(s[n] >= IO_SHARE * n for n in self.counts), facts

    def claim_near_ideal(self, text: str) -> str:
        holds, facts = self.near_ideal()
        return claim(holds, text, needs_cores=IO_NEEDS_CORES, room=self.room, **facts)


def io_sweep(fetch: Callable, ids, counts=(1, 2, 4, 8, 16), *, pool: Callable = ThreadPoolExecutor,
             attempts: int = 3, check: Callable | None = None) -> IOSweep:
    """Fetch ``ids`` with ``fetch`` on ``pool(n)`` for each ``n`` in ``counts`` (which must include 1);
    keep each count's best time; sweep again, up to ``attempts`` times, until every count reaches
    :data:`IO_SHARE` of its ideal speed-up (waiting needs no core, so the bar is ``n`` anywhere) and
    other programs left the room the claim needs (:func:`~futureslab.claims.quiet`)."""
    check_callable("fetch", fetch)
    check_callable("pool", pool)
    ids = list(ids)
    if not ids:
        raise ValueError("ids must not be empty")
    counts = tuple(check_int("counts", n, low=1) for n in counts)
    if 1 not in counts:
        raise ValueError(f"counts must include 1 (the baseline), got {counts!r}")
    attempts = check_int("attempts", attempts, low=1)
    from .cores import LoadMeter

    sweep, load = IOSweep(counts=counts), LoadMeter()
    for attempt in range(1, attempts + 1):
        for n in counts:
            with load:
                seconds, results = _run_on(pool, n, fetch, ids)
            sweep.room = Room.now(load)
            if check is not None:
                check(results)
            sweep.times[n] = min(seconds, sweep.times.get(n, seconds))
        sweep.attempts = attempt
        if sweep.near_ideal()[0] and quiet(sweep.room, IO_NEEDS_CORES):
            break
    return sweep


def cpu_counts(granted: float) -> tuple[int, ...]:
    """The process counts 07 sweeps: 1, 2, 4, the whole granted cores ``G`` and ``2G``."""
    g = max(1, int(check_number("granted", granted, low=0)))
    return tuple(sorted({1, 2, 4, g, 2 * g}))


def cpu_ranges(granted: float, width: int = 15_000, start: int = 2_000_000) -> list:
    """Equal prime-counting ranges, at least as many as the largest count sweeps (and at least 8)."""
    from .tasks import prime_ranges

    chunks = max(8, max(cpu_counts(granted)))
    width = check_int("width", width, low=1)
    return prime_ranges(start + width * chunks, chunks=chunks, start=start)


# ------------------------------------------------------------------------------------ Amdahl's law

def serial_then_parallel(n: int, pool: Callable = ThreadPoolExecutor, posts=range(1, 17)) -> list:
    """The Amdahl job: fetch user 1, then that user's posts (two requests in order), then the
    comments of ``posts`` on ``pool(n)`` (requests that may overlap). Returns the comments."""
    from .tasks import fetch_comments, fetch_user, fetch_user_posts

    check_int("n", n, low=1)
    fetch_user(1)
    fetch_user_posts(1)
    with pool(n) as ex, stopping_workers(ex):
        return list(ex.map(fetch_comments, list(posts)))


@dataclass
class AmdahlSweep:
    """Speed-ups of :func:`serial_then_parallel` on each pool size, and the fits."""

    counts: tuple
    designed_p: float
    times: dict = field(default_factory=dict)
    attempts: int = 0
    room: Room | None = None

    def speedups(self) -> dict:
        return {n: self.times[1] / self.times[n] for n in self.counts}

    def fitted_p(self) -> float:
        return fit_amdahl(self.counts, list(self.speedups().values()))

    def fits_design(self) -> tuple[bool, dict]:
        p = self.fitted_p()
        return abs(p - self.designed_p) <= P_TOLERANCE, {"fitted": p, "designed": self.designed_p,
                                                         "tolerance": P_TOLERANCE}

    def follows_prediction(self) -> tuple[bool, dict]:
        """At the largest count the speed-up is within :data:`PREDICTION_TOLERANCE` of Amdahl's
        prediction for the designed ``p``: far below the ideal ``n``, and not above the law either."""
        n = max(self.counts)
        predicted = amdahl_speedup(self.designed_p, n)
        measured = self.speedups()[n]
        facts = {"workers": n, "measured": measured, "predicted": predicted,
                 "tolerance": PREDICTION_TOLERANCE}
        return abs(measured / predicted - 1) <= PREDICTION_TOLERANCE, facts

    def claim_fits_design(self, text: str) -> str:
        holds, facts = self.fits_design()
        return claim(holds, text, needs_cores=IO_NEEDS_CORES, room=self.room, **facts)

    def claim_follows_prediction(self, text: str) -> str:
        from .timing import fmt_speedup

        holds, facts = self.follows_prediction()
        return claim(holds, text, needs_cores=IO_NEEDS_CORES, room=self.room,
                     show=f"{fmt_speedup(facts['measured'])} against "
                                       f"{fmt_speedup(facts['predicted'])} predicted", **facts)


def amdahl_sweep(counts=(1, 2, 4, 8, 16), *, pool: Callable = ThreadPoolExecutor, serial: int = 2,
                 parallel: int = 16, job: Callable = serial_then_parallel, attempts: int = 2) -> AmdahlSweep:
    """Time ``job(n, pool)`` for each ``n`` in ``counts``; the designed parallel fraction is
    ``parallel / (serial + parallel)`` (requests of equal latency). Best time per count; sweeps again,
    up to ``attempts`` times, until both claims hold and other programs left the room they need
    (:func:`~futureslab.claims.quiet`)."""
    check_callable("pool", pool)
    check_callable("job", job)
    counts = tuple(check_int("counts", n, low=1) for n in counts)
    if 1 not in counts or len(counts) < 2:
        raise ValueError(f"counts must include 1 (the baseline) and another count, got {counts!r}")
    serial = check_int("serial", serial, low=0)
    parallel = check_int("parallel", parallel, low=1)
    attempts = check_int("attempts", attempts, low=1)
    from .cores import LoadMeter

    sweep, load = AmdahlSweep(counts=counts, designed_p=parallel / (serial + parallel)), LoadMeter()
    for attempt in range(1, attempts + 1):
        for n in counts:
            with load:
                t0 = time.perf_counter()
                job(n, pool)
                seconds = time.perf_counter() - t0
            sweep.room = Room.now(load)
            sweep.times[n] = min(seconds, sweep.times.get(n, seconds))
        sweep.attempts = attempt
        if sweep.fits_design()[0] and sweep.follows_prediction()[0] and quiet(sweep.room, IO_NEEDS_CORES):
            break
    return sweep


def cpu_fit_points(counts, granted: float) -> list:
    """The worker counts that can inform a fit of Amdahl's law to CPU speed-ups: more than one worker
    and no more than the granted cores (past them, ``min(n, cores)`` is the same point again). A fit
    needs at least two, or the one parameter passes exactly through one point and tests nothing."""
    g = check_number("granted", granted, low=0)
    return [n for n in counts if 1 < n <= g]
