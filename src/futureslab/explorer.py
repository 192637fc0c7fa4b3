"""An interactive explorer: pick a worker count, a task kind and an executor, run, see the timeline.

In a notebook with ipywidgets::

    from futureslab.explorer import explore
    explore()                      # sliders and buttons; "Run" re-runs the job and redraws it

Anywhere else (or with ``widgets=False``) the same call runs the job once, prints the time and draws
the timeline, and returns the :class:`Run`::

    explore(kind="cpu", executor="process", workers=2, widgets=False)

The job is ``tasks`` equal tasks from :mod:`futureslab.tasks`. An ``"io"`` task waits ``seconds``
(``sleep_for``): waiting overlaps on threads and on processes alike. A ``"cpu"`` task does a *fixed
amount* of pure-Python work (``burn``), the number of loops that takes about ``seconds`` on one free
core of this machine (measured once per process). Because the amount of work is fixed, the explorer
shows what notebook 01 measures: threads do not finish pure-Python CPU work sooner (they take turns
holding the GIL), processes do, up to the number of cores the machine grants. The work function lives
in this module, at module level, so process pools run it under every start method.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

from . import tasks as _tasks
from ._validate import check_int, check_number
from .timing import fmt_seconds
from .trace import TaskRecord, Tracer, plot_timeline

__all__ = ["explore", "run_job", "draw", "cpu_loops", "Run", "KINDS", "EXECUTORS", "MAX_WORKERS"]

KINDS = {"io": "waiting (sleep_for)", "cpu": "fixed pure-Python work (burn, needs the GIL)"}
"""The task kinds: ``"io"`` waits for a set time; ``"cpu"`` does a set amount of pure-Python work."""
EXECUTORS = {"none": "one after another", "thread": "ThreadPoolExecutor", "process": "ProcessPoolExecutor"}
MAX_WORKERS = 8


_LOOPS_PER_SECOND: list[float] = []


def cpu_loops(seconds: float) -> int:
    """How many :func:`~futureslab.tasks.burn` loops take about ``seconds`` on one free core here.

    Measured once per process (the best of three short runs, so a busy moment does not shrink it) and
    then fixed: a ``"cpu"`` task is the same amount of work however it is run.
    """
    seconds = check_number("seconds", seconds, low=0, high=60)
    if not _LOOPS_PER_SECOND:
        sample = 200_000
        best = min(_timed_burn(sample) for _ in range(3))
        _LOOPS_PER_SECOND.append(sample / best)
    return max(1, int(seconds * _LOOPS_PER_SECOND[0]))


def _timed_burn(loops: int) -> float:
    t0 = time.perf_counter()
    _tasks.burn(loops)
    return max(time.perf_counter() - t0, 1e-9)


def work(job: tuple) -> float:
    """One task of the explorer's job: ``(kind, number, amount)``; returns the seconds it took.

    ``amount`` is seconds to wait for ``"io"`` and a number of :func:`~futureslab.tasks.burn` loops
    (a fixed amount of work) for ``"cpu"``.
    """
    kind, _, amount = job
    if kind == "io":
        return _tasks.sleep_for(amount)
    t0 = time.perf_counter()
    _tasks.burn(amount)
    return time.perf_counter() - t0


def task_label(job: tuple) -> str:
    """The label of a task on the timeline: its number."""
    return str(job[1])


@dataclass
class Run:
    """What one run of the job did: its settings, its wall time and its task records."""

    kind: str
    executor: str
    workers: int
    tasks: int
    seconds: float
    elapsed: float
    records: list[TaskRecord] = field(repr=False)

    @property
    def sequential_estimate(self) -> float:
        """What the same tasks take one after another on one free core: ``tasks * seconds``."""
        return self.tasks * self.seconds

    @property
    def title(self) -> str:
        how = EXECUTORS[self.executor] + ("" if self.executor == "none" else f"(max_workers={self.workers})")
        return f"{self.tasks} {self.kind} tasks: {how}"

    def summary(self) -> str:
        return (f"{self.title}: {fmt_seconds(self.elapsed)} "
                f"(one after another would take about {fmt_seconds(self.sequential_estimate)})")


def _check(kind, executor, workers, tasks, seconds):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {sorted(EXECUTORS)}, got {executor!r}")
    workers = check_int("workers", workers, low=1, high=MAX_WORKERS)
    tasks = check_int("tasks", tasks, low=1, high=64)
    seconds = check_number("seconds", seconds, low=0.001, high=2.0)
    return kind, executor, workers, tasks, seconds


def run_job(kind: str = "io", executor: str = "thread", workers: int = 4, tasks: int = 8,
            seconds: float = 0.1) -> Run:
    """Run ``tasks`` tasks of ``kind`` ("io" or "cpu") on ``executor`` ("none", "thread" or
    "process") with ``workers`` workers (1-8); return the :class:`Run`.

    An "io" task waits ``seconds``; a "cpu" task does the fixed amount of work that takes about
    ``seconds`` on one free core (:func:`cpu_loops`), so on a busy core, or sharing the GIL, it takes longer.
    """
    kind, executor, workers, tasks, seconds = _check(kind, executor, workers, tasks, seconds)
    amount = seconds if kind == "io" else cpu_loops(seconds)
    jobs = [(kind, i, amount) for i in range(1, tasks + 1)]
    with Tracer() as tracer:
        traced = tracer.wrap(work, label=task_label)
        start = time.perf_counter()
        if executor == "none":
            for job in jobs:
                traced(job)
        else:
            pool_class = ThreadPoolExecutor if executor == "thread" else ProcessPoolExecutor
            with pool_class(max_workers=workers) as pool:
                list(pool.map(traced, jobs))
        elapsed = time.perf_counter() - start
    return Run(kind, executor, workers, tasks, seconds, elapsed, tracer.records)


def draw(run: Run, ax=None):
    """Print the run's time and draw its timeline (one row per worker); returns the Axes."""
    if not isinstance(run, Run):
        raise TypeError(f"run must be a Run (from run_job), got {run!r}")
    import matplotlib.pyplot as plt

    print(run.summary())
    show = ax is None
    if ax is None:
        rows = len({r.worker for r in run.records})
        _, ax = plt.subplots(figsize=(8, 0.45 * rows + 1.3), layout="constrained")
    plot_timeline(run.records, ax=ax, title=run.title)
    if show:
        plt.show()
    return ax


def _widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def explore(kind: str = "io", executor: str = "thread", workers: int = 4, tasks: int = 8,
            seconds: float = 0.1, widgets: bool | None = None):
    """Explore a job interactively (ipywidgets) or, without widgets, run it once and draw it.

    ``widgets=None`` uses widgets when ipywidgets is installed and this runs in IPython/Jupyter;
    ``True`` requires them; ``False`` always takes the plain path. Returns the widget box (its
    ``.run_button``, ``.controls``, ``.output`` and ``.last`` run are there to script it), or, on
    the plain path, the :class:`Run`.
    """
    kind, executor, workers, tasks, seconds = _check(kind, executor, workers, tasks, seconds)
    if widgets not in (None, True, False):
        raise TypeError(f"widgets must be None, True or False, got {widgets!r}")
    use_widgets = _widgets_available() if widgets is None else widgets
    if not use_widgets:
        run = run_job(kind, executor, workers, tasks, seconds)
        draw(run)
        return run
    try:
        import ipywidgets as w
    except ImportError as exc:
        raise ImportError("explore(widgets=True) needs ipywidgets: pip install ipywidgets "
                          "(or call explore(widgets=False))") from exc
    return _build_widget(w, kind, executor, workers, tasks, seconds)


def _figure_output(run: Run) -> dict:
    """The run's timeline as a ``display_data`` output (a PNG), drawn on a figure pyplot never sees."""
    import base64
    import io

    from matplotlib.figure import Figure

    rows = len({r.worker for r in run.records})
    fig = Figure(figsize=(8, 0.45 * rows + 1.3), layout="constrained")
    plot_timeline(run.records, ax=fig.add_subplot(), title=run.title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                     "text/plain": f"<timeline: {run.title}>"}}


def _stdout(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text + "\n"}


def _build_widget(w, kind, executor, workers, tasks, seconds):
    """The explorer's widget box.

    The output area is filled by setting the ``Output`` widget's ``outputs`` directly, never by
    capturing (``with output:``). Capturing works in JupyterLab, but under nbclient (nbval, the test
    suite) it made a cell hang: nbclient imitates a capturing Output widget by sending a message back
    to the kernel on the shell socket for every captured output, while it awaits the cell's reply on
    that same socket, and that send can swallow the wake-up for the reply (a busy CPU widens the
    window). Setting ``outputs`` sends widget state only; nbclient has nothing to imitate.
    """
    workers_slider = w.IntSlider(value=workers, min=1, max=MAX_WORKERS, description="workers",
                                 disabled=executor == "none")
    kind_dropdown = w.Dropdown(options=[(f"{k}: {v}", k) for k, v in KINDS.items()], value=kind,
                               description="task kind")
    executor_buttons = w.ToggleButtons(options=list(EXECUTORS), value=executor, description="executor",
                                       tooltips=list(EXECUTORS.values()))
    run_button = w.Button(description="Run", button_style="primary", icon="play")
    output = w.Output()
    box = w.VBox([w.HBox([workers_slider, kind_dropdown]), w.HBox([executor_buttons, run_button]), output])
    box.controls = {"workers": workers_slider, "kind": kind_dropdown, "executor": executor_buttons}
    box.run_button = run_button
    box.output = output
    box.last = None

    def on_executor(change):
        workers_slider.disabled = change["new"] == "none"

    def on_run(_button=None):
        run_button.disabled = True
        try:
            run = run_job(kind_dropdown.value, executor_buttons.value, workers_slider.value, tasks, seconds)
            box.last = run
            output.outputs = (_stdout(run.summary()), _figure_output(run))
        except Exception as exc:  # show the problem where the learner looks, keep the widget alive
            output.outputs = (_stdout(f"The run failed: {type(exc).__name__}: {exc}"),)
        finally:
            run_button.disabled = False

    executor_buttons.observe(on_executor, names="value")
    run_button.on_click(on_run)
    on_run()  # draw the first run at once
    _with_picture(box)
    return box


def _with_picture(box) -> None:
    """Give the widget's output a static picture of its first run, beside the widget view.

    The cell's output then carries both: JupyterLab (and anything with a widget manager) shows the
    live widget, which it ranks first; a rendering without a kernel (GitHub, nbviewer, a course
    website) shows the PNG of the first run instead of an empty box.
    """
    widget_bundle = box._repr_mimebundle_

    def bundle(**kwargs):
        data = widget_bundle(**kwargs)
        if box.last is not None and isinstance(data, dict):
            data = dict(data)
            data["image/png"] = _figure_output(box.last)["data"]["image/png"]
            data["text/plain"] = (f"{box.last.summary()}\n(the explorer's first run; run the notebook "
                                  "in Jupyter to change it and press Run)")
        return data

    box._repr_mimebundle_ = bundle
