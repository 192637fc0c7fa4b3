"""futureslab.explorer: the plain-function path, argument checks, and the widget and its Run button."""

from __future__ import annotations

import multiprocessing

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
