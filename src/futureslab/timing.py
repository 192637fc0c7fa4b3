"""Measuring: run something several times, keep the best and the median, compute speed-ups.

Every duration a notebook prints goes through :func:`fmt_seconds` (``"0.412 s"``) and every speed-up
through :func:`fmt_speedup` (``"3.91x"``), one recognisable format each, so the test suite can mask
exactly those numbers and keep comparing the rest of the text.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ._validate import check_callable, check_int, check_number

__all__ = ["Timing", "measure", "stopwatch", "speedup", "fmt_seconds", "fmt_us", "fmt_speedup",
           "fmt_cores", "cpu_count", "warm_up", "free_cores", "ideal_speedup", "report"]


@dataclass
class Timing:
    """The wall-clock times of repeated runs, in seconds, and the last run's result."""

    times: list[float]
    result: Any = field(default=None, repr=False)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def __str__(self) -> str:
        return f"best {fmt_seconds(self.best)}, median {fmt_seconds(self.median)} of {len(self.times)}"


def measure(fn: Callable, *args, repeat: int = 3, warmup: int = 0, **kwargs) -> Timing:
    """Call ``fn(*args, **kwargs)`` ``warmup + repeat`` times; time the last ``repeat`` calls.

    >>> t = measure(sum, range(1000), repeat=5)
    >>> t.best <= t.median
    True
    """
    check_callable("fn", fn)
    repeat = check_int("repeat", repeat, low=1)
    warmup = check_int("warmup", warmup, low=0)
    for _ in range(warmup):
        fn(*args, **kwargs)
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return Timing(times, result)


class stopwatch:
    """``with stopwatch() as sw: ...`` then ``sw.elapsed`` (seconds); ``sw.lap()`` while running."""

    def __enter__(self) -> "stopwatch":
        self.start = time.perf_counter()
        self.elapsed = None
        return self

    def lap(self) -> float:
        return time.perf_counter() - self.start

    def __exit__(self, *exc) -> None:
        self.elapsed = time.perf_counter() - self.start

    def __str__(self) -> str:
        return fmt_seconds(self.elapsed if self.elapsed is not None else self.lap())


def _seconds(name: str, value) -> float:
    if isinstance(value, Timing):
        return value.best
    if isinstance(value, stopwatch):
        value = value.elapsed
    return check_number(name, value, low=0)


def speedup(baseline, other) -> float:
    """How many times faster ``other`` ran than ``baseline``.

    Each may be seconds, a :class:`Timing` (its best run is used) or a finished :class:`stopwatch`.
    """
    b, o = _seconds("baseline", baseline), _seconds("other", other)
    if o <= 0:
        raise ValueError(f"other must take more than 0 seconds, got {o}")
    return b / o


def fmt_seconds(seconds) -> str:
    """``"0.412 s"``: the one format every printed duration uses."""
    return f"{_seconds('seconds', seconds):.3f} s"


def fmt_us(seconds) -> str:
    """``"12.3 µs"``: how a duration shorter than a millisecond is printed (``fmt_seconds`` would
    show ``0.000 s``)."""
    return f"{check_number('seconds', seconds, low=0) * 1e6:.1f} \u00b5s"


def fmt_speedup(factor) -> str:
    """``"3.91x"``: the one format every printed speed-up uses."""
    return f"{check_number('factor', factor, low=0):.2f}x"


def fmt_cores(cores) -> str:
    """``"1.93 free cores"``: the one format every printed :func:`free_cores` figure uses."""
    return f"{check_number('cores', cores, low=0):.2f} free cores"


def cpu_count() -> int:
    """CPUs this process may use (affinity-aware where the OS tells), at least 1."""
    if hasattr(os, "process_cpu_count"):  # 3.13+
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


def ideal_speedup(workers: int, kind: str, cores: float | None = None) -> float:
    """The best speed-up this machine can give ``workers`` workers.

    ``kind="io"``: waiting overlaps, so ``workers``. ``kind="cpu"``: at most one task per core, so
    ``min(workers, cores)``, where ``cores`` defaults to :func:`cpu_count`; pass the measured
    :func:`free_cores` to get what a busy machine can give right now.
    """
    workers = check_int("workers", workers, low=1)
    if cores is None:
        cores = cpu_count()
    else:
        cores = check_number("cores", cores, low=0)
    if kind == "io":
        return float(workers)
    if kind == "cpu":
        return float(min(workers, cores))
    raise ValueError(f"kind must be 'io' or 'cpu', got {kind!r}")


_LOOPS_PER_SECOND: list[float] = []


def _loops_for(seconds: float) -> int:
    """How many :func:`~futureslab.tasks.burn` loops take about ``seconds`` in this process."""
    from .tasks import burn

    if not _LOOPS_PER_SECOND:
        best = min(measure(burn, 200_000, repeat=3).times)
        _LOOPS_PER_SECOND.append(200_000 / best)
    return max(10_000, int(seconds * _LOOPS_PER_SECOND[0]))


def warm_up(pool, workers: int, timeout: float = 60.0):
    """Return ``pool`` once ``workers`` different workers of it have each run a task.

    Call it before timing anything on a pool. A pool starts its workers when work first arrives
    (under spawn and forkserver one at a time, each taking a moment to boot), and that start-up must
    not be timed as if it were the work. Works for thread pools too (each thread counts as a worker).
    """
    from concurrent.futures import Executor

    from .tasks import whoami_after

    if not isinstance(pool, Executor):
        raise TypeError(f"pool must be a running executor such as ProcessPoolExecutor, got {pool!r}")
    workers = check_int("workers", workers, low=1)
    timeout = check_number("timeout", timeout, low=0.1)
    deadline = time.perf_counter() + timeout
    seen: set = set()
    while len(seen) < workers:  # a worker that boots late may miss a round: ask again
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {len(seen)} of workers={workers} answered within {timeout} s: "
                               f"does the pool have that many workers?")
        seen |= set(pool.map(whoami_after, [0.02] * workers))
    return pool


def free_cores(pool, workers: int, seconds: float = 0.1, repeat: int = 3) -> float:
    """How many cores a CPU job on ``pool`` can get *right now*: measured, not counted.

    Runs the same fixed amount of pure-Python work (:func:`~futureslab.tasks.burn`, about ``seconds``
    long on a quiet core) once in this process and ``workers`` times at once on ``pool`` (a
    ``ProcessPoolExecutor`` with at least ``workers`` workers, started first with :func:`warm_up`),
    and returns ``workers * one / all``, at most ``workers``. On a quiet machine that is about
    ``min(workers, cpu_count())``; when other programs keep the cores busy it drops, because the
    pool's workers get only their share of each core. Each try measures one, then all together, back
    to back; the result is the median of the tries, since on a busy machine a single short try can be
    lucky or unlucky by a factor of two.
    """
    from .tasks import burn

    seconds = check_number("seconds", seconds, low=0.001, high=5)
    repeat = check_int("repeat", repeat, low=1)
    warm_up(pool, workers)  # checks pool and workers; start-up must not count as busy cores
    loops = _loops_for(seconds)
    ratios = []
    for _ in range(repeat):  # one, then all together, back to back: both see about the same load
        one = measure(burn, loops, repeat=1).best
        together = measure(lambda: list(pool.map(burn, [loops] * workers)), repeat=1).best
        ratios.append(min(float(workers), workers * one / together))
    return statistics.median(ratios)


def report(timings: dict, baseline: str | None = None) -> None:
    """Print one line per run: name, best time, and speed-up over ``baseline`` (a key of timings)."""
    if not isinstance(timings, dict) or not timings:
        raise ValueError("timings must be a non-empty dict of name -> seconds or Timing")
    if baseline is not None and baseline not in timings:
        raise ValueError(f"baseline must be one of {list(timings)}, got {baseline!r}")
    width = max(len(str(k)) for k in timings)
    for name, value in timings.items():
        line = f"{str(name):<{width}}  {fmt_seconds(value)}"
        if baseline is not None and name != baseline:
            line += f"  ({fmt_speedup(speedup(timings[baseline], value))} vs {baseline})"
        print(line)
