"""The course's other charts: runtimes as bars, and speed-up against worker count with the ideal.

(The timeline picture lives in :mod:`futureslab.trace`.) Each function draws on ``ax`` if given, else
on a new figure, and returns the Axes; end the notebook cell with ``plt.show()``.

:func:`style` is the one look every figure of the course shares (``futureslab.setup()`` calls it):
no text smaller than :data:`MIN_FONT` points, and in Jupyter PNGs drawn at twice their pixel density
("retina"), so a HiDPI laptop screen shows them sharp. PNG rather than SVG: the test suite compares a
notebook's stored outputs, and an SVG's text differs on every run, while a PNG is never compared.
:func:`log_axis` gives a log-scaled axis plain tick labels (``1, 10, 100``, not ``10^0``).
"""

from __future__ import annotations

from ._validate import check_number
from .timing import Timing, cpu_count, stopwatch

__all__ = ["runtime_bars", "speedup_curve", "style", "log_axis", "MIN_FONT"]

#: The smallest font size (points) in any course figure. Figures keep matplotlib's 72 dpi, at which one
#: point is one CSS pixel, so this is also the smallest text in screen pixels.
MIN_FONT = 10

_RC = {"figure.dpi": 72, "savefig.dpi": "figure", "figure.max_open_warning": 0,
       "font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 11,
       "ytick.labelsize": 11, "legend.fontsize": 11, "figure.titlesize": 13}


def style() -> None:
    """Apply the course's figure style: readable fonts, and crisp PNGs in Jupyter.

    Sets matplotlib's rcParams (figure dpi 72, so a figure's size in the notebook stays what its
    ``figsize`` says at one point per pixel, and no font below :data:`MIN_FONT` points), and, when
    running inside a Jupyter kernel, switches the inline backend to its ``"retina"`` format: each PNG
    is rendered at twice the figure's dpi and displayed at its normal size.
    """
    import sys

    import matplotlib

    matplotlib.rcParams.update(_RC)
    if "IPython" not in sys.modules:
        return
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None or not hasattr(shell, "kernel"):  # a terminal IPython has no inline backend
            return
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")
    except ImportError:  # no matplotlib-inline: the default PNG is still fine, only less sharp
        pass


def log_axis(ax, ticks, axis: str = "x", base: float = 10):
    """Make ``axis`` of ``ax`` logarithmic with a tick, labelled as a plain number, at each of ``ticks``.

    ``log_axis(ax, [1, 10, 100, 1000])`` labels the ticks ``1, 10, 100, 1,000`` (not ``10^0 ...``)
    and hides the unlabelled minor ticks. Returns the Axes.
    """
    from matplotlib.ticker import NullFormatter, NullLocator

    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    ticks = [check_number("ticks", t, low=0) for t in ticks]
    if not ticks or min(ticks) <= 0:
        raise ValueError(f"ticks must be a non-empty list of positive numbers, got {ticks!r}")
    check_number("base", base, low=1.0001)
    labels = [f"{t:,g}" if t < 1e6 else f"{t:.0e}" for t in ticks]
    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    set_scale("log", base=base)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_ticks(ticks, labels)
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())
    return ax


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
        ax.bar_label(bars, labels, padding=3, fontsize=MIN_FONT + 1)
        ax.set_xlim(0, max(secs) * 1.35)
    if title:
        ax.set_title(title)
    return ax


def speedup_curve(workers, speedups, ax=None, title: str | None = None, kind: str = "cpu",
                  label: str = "measured", cores: float | None = None):
    """Speed-up against worker count, with the ideal line and integer worker ticks.

    ``kind="io"``: the ideal is ``workers`` (waits overlap). ``kind="cpu"``: the ideal is
    ``min(workers, cores)``, and a labelled vertical line marks ``cores``: the cores the operating
    system grants this process (default :func:`futureslab.cores.granted_cores`, which counts CPU
    affinity and a container's CPU quota).
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
    if cores is None:
        from .cores import granted_cores

        cores = granted_cores().cores
    else:
        cores = check_number("cores", cores, low=0.01)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ideal = [w if kind == "io" else min(w, cores) for w in workers]
    ax.plot(workers, ideal, "--", color="grey",
            label="ideal: workers" if kind == "io" else "ideal: min(workers, cores)")
    ax.plot(workers, speedups, "o-", label=label)
    if kind == "cpu":
        ticks = sorted(set(workers))
        beyond = "" if cores <= max(ticks) else " (beyond this axis)"
        ax.axvline(cores, color="tab:red", alpha=0.5, linestyle=":",
                   label=f"{cores:g} {'core' if cores == 1 else 'cores'} granted{beyond}")
    ticks = sorted(set(workers))
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlim(0, max(ticks) * 1.05 + 0.5)
    ax.set_xlabel("workers")
    ax.set_ylabel("speed-up over sequential")
    ax.set_ylim(bottom=0, top=max(max(ideal), max(speedups)) * 1.15)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax
