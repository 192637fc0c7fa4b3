"""The course's other charts: runtimes as bars, and speed-up against worker count with the ideal.

(The timeline picture lives in :mod:`futureslab.trace`.) Each function draws on ``ax`` if given, else
on a new figure, and returns the Axes; end the notebook cell with ``plt.show()``.
"""

from __future__ import annotations

from ._validate import check_number
from .timing import Timing, cpu_count, stopwatch

__all__ = ["runtime_bars", "speedup_curve"]


def _secs(name, value) -> float:
    if isinstance(value, Timing):
        return value.best
    if isinstance(value, stopwatch):
        value = value.elapsed
    return check_number(name, value, low=0)


def runtime_bars(runtimes: dict, ax=None, title: str | None = None, baseline: str | None = None):
    """Horizontal bars of ``{name: seconds or Timing}``; with ``baseline``, each bar is labelled
    with its speed-up over that entry."""
    import matplotlib.pyplot as plt

    if not isinstance(runtimes, dict) or not runtimes:
        raise ValueError("runtimes must be a non-empty dict of name -> seconds")
    if baseline is not None and baseline not in runtimes:
        raise ValueError(f"baseline must be one of {list(runtimes)}, got {baseline!r}")
    names = [str(k) for k in runtimes]
    secs = [_secs(f"runtimes[{k!r}]", v) for k, v in runtimes.items()]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.2), layout="constrained")
    bars = ax.barh(names, secs, color=plt.get_cmap("tab10")(range(len(names))))
    ax.invert_yaxis()
    ax.set_xlabel("seconds (lower is faster)")
    if baseline is not None:
        base = _secs("baseline", runtimes[baseline])
        labels = [f"{s:.2f} s" + ("" if n == str(baseline) or s == 0 else f"  ({base / s:.1f}x)")
                  for n, s in zip(names, secs)]
        ax.bar_label(bars, labels, padding=3, fontsize=8)
        ax.set_xlim(0, max(secs) * 1.35)
    if title:
        ax.set_title(title)
    return ax


def speedup_curve(workers, speedups, ax=None, title: str | None = None, kind: str = "cpu",
                  label: str = "measured"):
    """Speed-up against worker count, with the ideal line.

    ``kind="io"``: the ideal is ``workers`` (waits overlap). ``kind="cpu"``: the ideal is
    ``min(workers, cores)``, drawn with this machine's core count marked.
    """
    import matplotlib.pyplot as plt

    workers, speedups = list(workers), list(speedups)
    if not workers or len(workers) != len(speedups):
        raise ValueError(f"workers and speedups must be non-empty and of equal length, "
                         f"got {len(workers)} and {len(speedups)}")
    for w in workers:
        check_number("workers", w, low=1)
    for s in speedups:
        check_number("speedups", s, low=0)
    if kind not in ("cpu", "io"):
        raise ValueError(f"kind must be 'cpu' or 'io', got {kind!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    cores = cpu_count()
    ideal = [w if kind == "io" else min(w, cores) for w in workers]
    ax.plot(workers, ideal, "--", color="grey", label="ideal" + (f" (min(workers, {cores} cores))" if kind == "cpu" else ""))
    ax.plot(workers, speedups, "o-", label=label)
    if kind == "cpu" and min(workers) <= cores <= max(workers):
        ax.axvline(cores, color="grey", alpha=0.3)
    ax.set_xlabel("workers")
    ax.set_ylabel("speed-up over sequential")
    ax.set_ylim(bottom=0)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax
