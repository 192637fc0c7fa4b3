"""Which worker ran which task, from when to when, and the picture of it.

Wrap a task function with a :class:`Tracer`, run it however you like (directly, on threads, on
processes), then draw the timeline: one row per worker, one bar per task, time on the x axis::

    with Tracer() as tracer:
        traced = tracer.wrap(count_primes_in)
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(traced, ranges))
    tracer.plot(title="2 processes")

How it works: the wrapped function records ``(task, pid, thread, start, end)`` around each call.
In the process that made the tracer the record goes to a list in memory; in a worker process (fork,
spawn or forkserver alike) it is appended as one JSON line to a spool file in a private temporary
folder that :meth:`Tracer.close` deletes. Times come from ``time.perf_counter()``, which on Linux,
macOS and Windows reads one system-wide monotonic clock, so bars from different processes line up.
The wrapper is picklable whenever the function it wraps is.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass

from ._validate import check_callable, check_number

__all__ = ["Tracer", "TaskRecord", "plot_timeline", "plot_timelines", "max_concurrency"]

_LIVE: "weakref.WeakValueDictionary[int, Tracer]" = weakref.WeakValueDictionary()
_ids = itertools.count(1)


@dataclass(frozen=True)
class TaskRecord:
    """One task's run: its label, who ran it, and start/end in seconds since the tracer started."""

    task: str
    worker: str
    pid: int
    thread: str
    start: float
    end: float
    error: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


def _label(args, kwargs, fn) -> str:
    if args:
        text = repr(args[0]) if not isinstance(args[0], str) else args[0]
    elif kwargs:
        text = repr(next(iter(kwargs.values())))
    else:
        text = getattr(fn, "__name__", "task")
    return text if len(text) <= 24 else text[:21] + "..."


class _Traced:
    """The picklable wrapper :meth:`Tracer.wrap` returns."""

    def __init__(self, fn, tracer_id: int, owner_pid: int, spool: str, label):
        self.fn, self.tracer_id, self.owner_pid, self.spool, self.label = (
            fn, tracer_id, owner_pid, spool, label)
        self.__name__ = getattr(fn, "__name__", "traced")
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, *args, **kwargs):
        label = self.label(*args, **kwargs) if self.label else _label(args, kwargs, self.fn)
        start = time.perf_counter()
        error = None
        try:
            return self.fn(*args, **kwargs)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            end = time.perf_counter()
            raw = (str(label), os.getpid(), threading.current_thread().name, start, end, error)
            tracer = _LIVE.get(self.tracer_id) if os.getpid() == self.owner_pid else None
            if tracer is not None:
                tracer._raw.append(raw)  # list.append is atomic: safe from many threads
            else:
                try:
                    # never O_CREAT: the Tracer made the file. A worker still running when the tracer
                    # closes (an interrupted cell whose pool runs on) must not make it again between
                    # rmtree's unlink and its rmdir, which would leave the folder behind.
                    fd = os.open(self.spool, os.O_WRONLY | os.O_APPEND)
                    with open(fd, "a", encoding="utf-8") as f:
                        f.write(json.dumps(raw) + "\n")
                except OSError:
                    pass  # the tracer was closed: a record is not worth failing the task for

    def __repr__(self):
        return f"<traced {self.__name__}>"


class Tracer:
    """Records task runs for a timeline. Use as a context manager, or call :meth:`close` at the end."""

    def __init__(self):
        self._id = next(_ids)
        self._pid = os.getpid()
        self._dir = tempfile.mkdtemp(prefix="futureslab-trace-")
        self._spool = os.path.join(self._dir, "records.jsonl")
        open(self._spool, "x").close()  # the only place it is created (see _Traced.__call__)
        self._raw: list[tuple] = []
        self._spool_cache: list[tuple] = []
        self._spool_offset = 0
        self.t0 = time.perf_counter()
        _LIVE[self._id] = self
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)

    def wrap(self, fn, label=None):
        """Return ``fn`` wrapped so each call is recorded; ``label(*args, **kwargs)`` names a task
        (default: its first argument)."""
        check_callable("fn", fn)
        if label is not None:
            check_callable("label", label)
        if not self._finalizer.alive:
            raise RuntimeError("this Tracer is closed: make a new one")
        return _Traced(fn, self._id, self._pid, self._spool, label)

    def reset(self) -> None:
        """Forget the records so far and restart the clock."""
        self._raw.clear()
        self._read_spool()
        self._spool_cache.clear()
        self.t0 = time.perf_counter()

    def _read_spool(self) -> None:
        try:
            with open(self._spool, "r", encoding="utf-8") as f:
                f.seek(self._spool_offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind("\n") + 1]  # a line still being written waits for next time
        self._spool_offset += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            if line.strip():
                self._spool_cache.append(tuple(json.loads(line)))

    @property
    def records(self) -> list[TaskRecord]:
        """Every task recorded so far, ordered by start time, with readable worker names."""
        if self._finalizer.alive:
            self._read_spool()
        raw = sorted(list(self._raw) + self._spool_cache, key=lambda r: r[3])
        names: dict[tuple[int, str], str] = {}
        n_threads = n_procs = 0
        out = []
        for label, pid, thread, start, end, error in raw:
            key = (pid, thread)
            if key not in names:
                if pid != self._pid:
                    n_procs += 1
                    names[key] = f"process-{n_procs}"
                elif thread == "MainThread":
                    names[key] = "main"
                elif re.fullmatch(r"ThreadPoolExecutor-\d+_\d+|Thread-\d+.*", thread):
                    n_threads += 1
                    names[key] = f"thread-{n_threads}"
                else:
                    names[key] = thread
            out.append(TaskRecord(label, names[key], pid, thread, start - self.t0, end - self.t0, error))
        return out

    @property
    def workers(self) -> list[str]:
        """Readable names of the workers that ran at least one task, in order of first start."""
        return list(dict.fromkeys(r.worker for r in self.records))

    def max_concurrency(self) -> int:
        """The largest number of recorded tasks that were running at the same moment."""
        return max_concurrency(self.records)

    def plot(self, ax=None, title: str | None = None):
        """Draw the timeline (see :func:`plot_timeline`) and return the matplotlib Axes."""
        return plot_timeline(self.records, ax=ax, title=title)

    def close(self) -> None:
        """Read the last records, then delete the spool folder. Records stay readable."""
        if self._finalizer.alive:
            self._read_spool()
            self._finalizer()
        _LIVE.pop(self._id, None)

    def __enter__(self) -> "Tracer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"<Tracer: {len(self)} tasks>"


def max_concurrency(records) -> int:
    """The largest number of tasks in ``records`` running at one moment (touching ends don't count)."""
    events = []
    for r in records:
        events.append((r.start, 1))
        events.append((r.end, -1))
    events.sort(key=lambda e: (e[0], e[1]))  # an end sorts before a start at the same instant
    best = cur = 0
    for _, step in events:
        cur += step
        best = max(best, cur)
    return best


def _worker_order(name: str):
    """main, then thread-1, thread-2, ..., then process-1, ..., then custom names in natural order
    (``download_2`` before ``download_10``)."""
    kind, _, num = name.partition("-")
    rank = {"main": 0, "thread": 1, "process": 2}.get(kind, 3)
    natural = tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                    for part in re.split(r"(\d+)", name) if part)
    return (rank, int(num) if rank < 3 and num.isdigit() else 0, natural)


def _task_namer(labels):
    """A function task label -> displayed text, from None, a dict or a callable."""
    if labels is None:
        return lambda task: task
    if isinstance(labels, dict):
        return lambda task: str(labels.get(task, task))
    check_callable("labels", labels)
    return lambda task: str(labels(task))


def plot_timeline(records, ax=None, title: str | None = None, labels=None):
    """One row per worker, one bar per task, time on the x axis; failed tasks hatched in red.

    ``records`` is a :class:`Tracer` or a list of :class:`TaskRecord`. ``labels`` renames the tasks
    on the bars: a dict ``{recorded label: shown text}`` or a function of the recorded label (the
    recorded label is the task's first argument, e.g. ``"(2000000, 2030000)"``; ``"slice 1"`` reads
    better). A bar too short for its text is left blank. Returns the Axes.
    """
    import matplotlib.pyplot as plt

    from .plots import MIN_FONT

    if isinstance(records, Tracer):
        records = records.records
    records = list(records)
    if not all(isinstance(r, TaskRecord) for r in records):
        raise TypeError("records must be a Tracer or a list of TaskRecord")
    name = _task_namer(labels)
    workers = sorted({r.worker for r in records}, key=_worker_order)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * max(len(workers), 1) + 1.3), layout="constrained")
    row = {w: i for i, w in enumerate(workers)}
    tasks = list(dict.fromkeys(r.task for r in records))
    # tab20 without its two reds (indices 6 and 7): red means "failed" in these pictures
    palette = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (6, 7)]
    span = max((r.end for r in records), default=1.0) or 1.0
    # roughly how many characters fit per second of the x axis (at 72 dpi, one point is one pixel)
    fig_w_pt = ax.figure.get_size_inches()[0] * 72 * ax.get_position().width
    chars_per_second = fig_w_pt / (0.62 * MIN_FONT) / (1.02 * span)
    for r in records:
        color = "#d62728" if r.error else palette[tasks.index(r.task) % len(palette)]
        ax.barh(row[r.worker], max(r.duration, span / 1000), left=r.start, height=0.7,
                color=color, edgecolor="black", linewidth=0.5, hatch="//" if r.error else None)
        text = name(r.task)
        if r.duration * chars_per_second >= len(text) + 1:
            ax.text(r.start + r.duration / 2, row[r.worker], text, ha="center", va="center",
                    fontsize=MIN_FONT, clip_on=True)
    ax.set_yticks(range(len(workers)), workers)
    ax.invert_yaxis()
    # Axes made with sharex=True share one x range: widen it to fit every timeline drawn on them,
    # never crop an earlier one to a later, shorter one.
    ax._futureslab_span = span
    siblings = ax.get_shared_x_axes().get_siblings(ax)
    ax.set_xlim(0, 1.02 * max(getattr(a, "_futureslab_span", 0.0) for a in siblings))
    ax.set_xlabel("seconds since start")
    if title:
        ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_timelines(runs: dict, labels=None, width: float = 8.0):
    """Several timelines one above the other, on one shared time scale; returns the Figure.

    ``runs`` maps a title to a :class:`Tracer` (or a list of :class:`TaskRecord`, or anything with a
    ``records`` attribute); ``labels`` renames tasks as in :func:`plot_timeline`. The x axes are
    shared, so equal lengths mean equal durations in every row: compare the bars' lengths.
    """
    import matplotlib.pyplot as plt

    if not isinstance(runs, dict) or not runs:
        raise ValueError("runs must be a non-empty dict of title -> Tracer or records")
    check_number("width", width, low=1)
    recs = {}
    for title, run in runs.items():
        records = run.records if hasattr(run, "records") else run
        records = list(records)
        if not all(isinstance(r, TaskRecord) for r in records):
            raise TypeError(f"runs[{title!r}] must be a Tracer or a list of TaskRecord")
        recs[title] = records
    rows = [len({r.worker for r in records}) + 1.6 for records in recs.values()]
    fig, axes = plt.subplots(len(recs), 1, figsize=(width, 0.42 * sum(rows) + 0.5), sharex=True,
                             layout="constrained", gridspec_kw={"height_ratios": rows}, squeeze=False)
    for ax, (title, records) in zip(axes[:, 0], recs.items()):
        plot_timeline(records, ax=ax, title=title, labels=labels)
    for ax in axes[:-1, 0]:
        ax.set_xlabel("")
    return fig
