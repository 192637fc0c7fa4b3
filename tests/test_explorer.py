"""futureslab.explorer: the plain-function path, argument checks, and the widget and its Run button."""

from __future__ import annotations

import base64
import multiprocessing
import os
import sys

import matplotlib

matplotlib.use("Agg")

import pytest

from futureslab import explorer
from futureslab.explorer import Run, draw, explore, run_job


def test_plain_path_runs_once_and_draws(capsys):
    run = explore(kind="io", executor="thread", workers=4, tasks=8, seconds=0.05, widgets=False)
    assert isinstance(run, Run)
    assert len(run.records) == 8 and {r.task for r in run.records} == {str(i) for i in range(1, 9)}
    assert len({r.worker for r in run.records}) == 4
    out = capsys.readouterr().out
    assert "8 io tasks: ThreadPoolExecutor(max_workers=4):" in out and " s " in out


def test_io_on_threads_overlaps():
    # best of three: a busy machine may delay one run, never all three
    best = min(run_job("io", "thread", workers=4, tasks=8, seconds=0.1).elapsed for _ in range(3))
    assert best < 0.8 * 8 * 0.1 / 2  # at least 2x faster than one after another (ideal 4x)


def test_none_runs_in_the_main_thread():
    run = run_job("cpu", "none", workers=3, tasks=3, seconds=0.01)
    assert {r.worker for r in run.records} == {"main"}
    assert "one after another" in run.title


def _best_elapsed(*executors, rounds=3, tasks=8, seconds=0.05):
    """The best wall time of each ``(executor, workers)``, measured in interleaved rounds (so a busy
    moment of the shared machine falls on all of them alike, not on one)."""
    best = [float("inf")] * len(executors)
    for _ in range(rounds):
        for i, (executor, workers) in enumerate(executors):
            best[i] = min(best[i], run_job("cpu", executor, workers=workers, tasks=tasks,
                                           seconds=seconds).elapsed)
    return best


def _cores_granted():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def test_cpu_kind_is_a_fixed_amount_of_work():
    # the same number of burn loops for every task, whatever the executor: work, not a time
    assert explorer.cpu_loops(0.05) == explorer.cpu_loops(0.05) > 0
    assert explorer.cpu_loops(0.1) >= 1.9 * explorer.cpu_loops(0.05)
    with pytest.raises(ValueError, match="seconds"):
        explorer.cpu_loops(-1)


@pytest.mark.skipif(not getattr(sys, "_is_gil_enabled", lambda: True)(),
                    reason="a free-threaded build runs pure-Python threads in parallel")
def test_cpu_on_threads_is_no_faster_than_one_after_another():
    """Notebook 01's lesson: under the GIL, 8 threads do not shorten pure-Python CPU work. They never
    keep more than one core busy (CPU time / wall time, which a change in the machine's speed does not
    move), and their best time is no better than 0.8 of the loop's in one of up to 3 measurements: on
    3.12.1 (`make test-pythons` at 93b2532) one measurement had the threads at 0.31 s and the loop at
    0.41 s, while the threads still used one core: the machine ran faster during their runs."""
    from futureslab.cores import BusyCores

    seen = []
    for _ in range(3):
        best, cores = {"none": float("inf"), "thread": float("inf")}, []
        for _ in range(3):  # interleaved rounds: a busy moment falls on both alike
            for executor, workers in (("none", 1), ("thread", 8)):
                with BusyCores() as busy:
                    run = run_job("cpu", executor, workers=workers, tasks=8, seconds=0.05)
                best[executor] = min(best[executor], run.elapsed)
                if executor == "thread":
                    cores.append(busy.cores)
        seen.append((best["thread"], best["none"], max(cores)))
        assert max(cores) < 1.3, f"the threads kept {max(cores):.2f} cores busy: they ran in parallel"
        if best["thread"] >= 0.8 * best["none"]:
            return
    pytest.fail(f"the threads beat the loop in 3 measurements (threads s, loop s, cores): {seen}")


def test_cpu_on_processes_is_capped_by_the_granted_cores():
    """8 processes cannot beat the cores the OS grants (the old time-based task let them)."""
    sequential, processes = _best_elapsed(("none", 1), ("process", 8))
    cores = min(8, _cores_granted())
    assert processes >= 0.8 * sequential / cores, (processes, sequential, cores)


def test_process_pool_works_under_the_start_method_in_force():
    run = run_job("cpu", "process", workers=2, tasks=4, seconds=0.05)
    assert len(run.records) == 4
    assert all(r.worker.startswith("process-") for r in run.records), multiprocessing.get_start_method()


@pytest.mark.parametrize("kwargs, error, words", [
    ({"kind": "disk"}, ValueError, "kind"),
    ({"executor": "async"}, ValueError, "executor"),
    ({"workers": 0}, ValueError, "workers"),
    ({"workers": 9}, ValueError, "workers"),
    ({"workers": 2.5}, TypeError, "workers"),
    ({"tasks": 0}, ValueError, "tasks"),
    ({"seconds": -1}, ValueError, "seconds"),
    ({"seconds": "0.1"}, TypeError, "seconds"),
])
def test_bad_arguments_are_named(kwargs, error, words):
    with pytest.raises(error, match=words):
        run_job(**kwargs)
    with pytest.raises(error, match=words):
        explore(widgets=False, **kwargs)


def test_widgets_flag_is_checked():
    with pytest.raises(TypeError, match="widgets"):
        explore(widgets="yes")


def test_draw_checks_its_argument():
    with pytest.raises(TypeError, match="run"):
        draw("not a run")


def test_without_ipython_the_plain_path_is_taken(capsys):
    # plain pytest is not an IPython kernel: widgets=None falls back to the plain function
    assert isinstance(explore(tasks=2, seconds=0.01), Run)


def test_widget_is_built_and_its_run_button_reruns_the_job():
    pytest.importorskip("ipywidgets")
    box = explore(kind="io", executor="thread", workers=2, tasks=4, seconds=0.05, widgets=True)
    first = box.last
    assert isinstance(first, Run) and first.workers == 2  # drawn once when built
    controls = box.controls
    assert (controls["workers"].min, controls["workers"].max) == (1, explorer.MAX_WORKERS)
    assert [v for _, v in controls["kind"].options] == ["io", "cpu"]
    assert list(controls["executor"].options) == ["none", "thread", "process"]

    controls["workers"].value = 4
    controls["kind"].value = "cpu"
    controls["executor"].value = "process"
    box.run_button.click()  # what a learner's click does
    second = box.last
    assert second is not first
    assert (second.kind, second.executor, second.workers) == ("cpu", "process", 4)
    assert all(r.worker.startswith("process-") for r in second.records)
    assert not box.run_button.disabled

    controls["executor"].value = "none"
    assert controls["workers"].disabled  # no pool, no worker count
    box.run_button.click()
    assert {r.worker for r in box.last.records} == {"main"}


def test_widget_shows_a_failure_instead_of_dying(monkeypatch):
    pytest.importorskip("ipywidgets")
    box = explore(tasks=2, seconds=0.01, widgets=True)

    def broken(*args, **kwargs):
        raise RuntimeError("simulated")

    monkeypatch.setattr(explorer, "run_job", broken)
    before = box.last
    box.run_button.click()
    assert box.last is before and not box.run_button.disabled
    assert [o["text"] for o in box.output.outputs] == ["The run failed: RuntimeError: simulated\n"]


def test_widget_fills_its_output_without_capturing(monkeypatch):
    """The summary and the timeline go straight into Output.outputs; the widget never captures.

    Capturing (`with output:`) makes nbclient send a message to the kernel on the shell socket while
    it awaits the cell's reply there, which hung notebook 00 under nbclient on a busy machine
    (benchmarks/explorer_hang.py). Any capture would set the widget's msg_id: it must stay empty.
    """
    ipywidgets = pytest.importorskip("ipywidgets")
    captured = []
    real_enter = ipywidgets.Output.__enter__

    def spy(self):
        captured.append(self)
        return real_enter(self)

    monkeypatch.setattr(ipywidgets.Output, "__enter__", spy)
    box = explore(kind="cpu", executor="thread", workers=2, tasks=4, seconds=0.01, widgets=True)
    box.run_button.click()
    assert not captured and box.output.msg_id == ""
    text, picture = box.output.outputs
    assert text["output_type"] == "stream" and text["text"].startswith("4 cpu tasks: ThreadPoolExecutor")
    assert picture["output_type"] == "display_data"
    assert base64.b64decode(picture["data"]["image/png"]).startswith(b"\x89PNG")


def test_widget_output_carries_a_static_picture_for_renderings_without_a_kernel():
    """The cell's output bundle holds the live widget view *and* a PNG of the first run (GitHub,
    nbviewer and course websites cannot show a widget; JupyterLab ranks the widget view first)."""
    pytest.importorskip("ipywidgets")
    from IPython.core.formatters import DisplayFormatter

    box = explore(kind="io", executor="thread", workers=2, tasks=4, seconds=0.02, widgets=True)
    data, _ = DisplayFormatter().format(box)  # what IPython stores as the cell's output
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == box.model_id
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert data["text/plain"].startswith(box.last.summary())
    box.last = None  # no run to show (the first run failed): the widget alone, no stale picture
    data, _ = DisplayFormatter().format(box)
    assert "image/png" not in data and "application/vnd.jupyter.widget-view+json" in data
