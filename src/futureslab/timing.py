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

__all__ = ["Timing", "measure", "stopwatch", "speedup", "fmt_seconds", "fmt_speedup",
           "cpu_count", "ideal_speedup", "report"]


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


def fmt_speedup(factor) -> str:
    """``"3.91x"``: the one format every printed speed-up uses."""
    return f"{check_number('factor', factor, low=0):.2f}x"


def cpu_count() -> int:
    """CPUs this process may use (affinity-aware where the OS tells), at least 1."""
    if hasattr(os, "process_cpu_count"):  # 3.13+
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


def ideal_speedup(workers: int, kind: str) -> float:
    """The best speed-up this machine can give ``workers`` workers.

    ``kind="io"``: waiting overlaps, so ``workers``. ``kind="cpu"``: at most one task per core, so
    ``min(workers, cpu_count())``.
    """
    workers = check_int("workers", workers, low=1)
    if kind == "io":
        return float(workers)
    if kind == "cpu":
        return float(min(workers, cpu_count()))
    raise ValueError(f"kind must be 'io' or 'cpu', got {kind!r}")


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
