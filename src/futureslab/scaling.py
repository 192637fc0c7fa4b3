"""Amdahl's law: the speed-up a job can reach, and the serial fraction that fits measured speed-ups.

If a fraction ``p`` of a job's one-worker time can be spread over workers and the rest ``1 - p`` cannot
(start-up, a first request every other one needs, merging results), ``n`` workers give at best::

    S(n) = 1 / ((1 - p) + p / n)

which never exceeds ``1 / (1 - p)``, however many workers. For CPU work, more workers than cores
cannot run at once, so the model uses ``min(n, cores)`` in place of ``n`` (pass ``cores=``).
"""

from __future__ import annotations

from ._validate import check_int, check_number

__all__ = ["amdahl_speedup", "fit_amdahl", "amdahl_limit"]


def amdahl_speedup(p: float, workers: int, cores: int | None = None) -> float:
    """The speed-up Amdahl's law predicts for parallel fraction ``p`` on ``workers`` workers
    (capped at ``cores`` workers running at once, if given)."""
    p = check_number("p", p, low=0.0, high=1.0)
    workers = check_int("workers", workers, low=1)
    n = workers if cores is None else min(workers, check_int("cores", cores, low=1))
    return 1.0 / ((1.0 - p) + p / n)


def amdahl_limit(p: float) -> float:
    """The most any number of workers can give: ``1 / (1 - p)`` (infinite when ``p == 1``)."""
    p = check_number("p", p, low=0.0, high=1.0)
    return float("inf") if p == 1.0 else 1.0 / (1.0 - p)


def fit_amdahl(workers, speedups, cores: int | None = None) -> float:
    """The parallel fraction ``p`` in [0, 1] that best fits measured ``speedups`` at ``workers``.

    Least squares on the time ratios ``1 / S(n) = 1 - p * (1 - 1/n)``, which are linear in ``p``, so
    the fit is closed-form (no SciPy needed); the answer is clipped to [0, 1]. With ``cores``, each
    ``n`` is replaced by ``min(n, cores)``. Needs at least one point with more than one worker.

    >>> round(fit_amdahl([1, 2, 4], [amdahl_speedup(0.75, n) for n in (1, 2, 4)]), 6)
    0.75
    """
    workers, speedups = list(workers), list(speedups)
    if not workers or len(workers) != len(speedups):
        raise ValueError(f"workers and speedups must be non-empty and of equal length, "
                         f"got {len(workers)} and {len(speedups)}")
    ns = [check_int("workers", w, low=1) for w in workers]
    if cores is not None:
        cores = check_int("cores", cores, low=1)
        ns = [min(n, cores) for n in ns]
    ss = [check_number("speedups", s, low=0.0) for s in speedups]
    if any(s == 0 for s in ss):
        raise ValueError("speedups must all be > 0")
    xs = [1.0 - 1.0 / n for n in ns]          # how much of the parallel part n workers remove
    ys = [1.0 - 1.0 / s for s in ss]          # how much of the time they removed
    denom = sum(x * x for x in xs)
    if denom == 0:
        raise ValueError("workers must include at least one count above 1 (after capping at cores)")
    p = sum(x * y for x, y in zip(xs, ys)) / denom
    return min(1.0, max(0.0, p))
