"""timing, plots and claims."""

from __future__ import annotations

import time

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from futureslab import claims, plots, timing  # noqa: E402


def test_measure_best_median_and_result():
    calls = []
    t = timing.measure(lambda x: calls.append(x) or x * 2, 5, repeat=4, warmup=1)
    assert len(calls) == 5 and t.result == 10 and len(t.times) == 4
    assert t.best <= t.median
    assert "best" in str(t) and " s" in str(t)


def test_stopwatch_and_speedup():
    with timing.stopwatch() as sw:
        time.sleep(0.02)
        assert sw.lap() > 0
    assert sw.elapsed >= 0.02
    assert timing.speedup(2.0, 0.5) == 4.0
    assert timing.speedup(timing.Timing([2.0, 3.0]), sw) == pytest.approx(2.0 / sw.elapsed)
    with pytest.raises(ValueError, match="other"):
        timing.speedup(1.0, 0)
    with pytest.raises(TypeError, match="baseline"):
        timing.speedup("1", 1.0)


def test_formats_match_the_sanitize_rules():
    import re
    from pathlib import Path

    cfg = (Path(__file__).parent / "nbval-sanitize.cfg").read_text()
    rules = re.findall(r"^regex: (.*)$\n^replace: (.*)$", cfg, flags=re.M)
    text = (f"took {timing.fmt_seconds(0.4123)} and {timing.fmt_speedup(3.914)} speed-up "
            f"on {timing.fmt_cores(1.926)}")
    assert text == "took 0.412 s and 3.91x speed-up on 1.93 free cores"
    for regex, replace in rules:
        text = re.sub(regex, replace, text)
    assert text == "took T.TTT s and N.NNx speed-up on F.FF free cores"


def test_cpu_count_and_ideal():
    n = timing.cpu_count()
    assert 1 <= n <= (__import__("os").cpu_count() or 1)
    assert timing.ideal_speedup(8, "io") == 8
    assert timing.ideal_speedup(10_000, "cpu") == n
    with pytest.raises(ValueError, match="kind"):
        timing.ideal_speedup(2, "gpu")
    with pytest.raises(ValueError, match="workers"):
        timing.ideal_speedup(0, "io")
    assert timing.ideal_speedup(4, "cpu", cores=1.5) == 1.5
    assert timing.ideal_speedup(2, "cpu", cores=3.0) == 2
    assert timing.ideal_speedup(8, "io", cores=1.0) == 8  # waiting does not need cores
    with pytest.raises(ValueError, match="cores"):
        timing.ideal_speedup(2, "cpu", cores=-1)


def test_warm_up_starts_every_spawned_worker():
    """Under spawn a pool starts its workers one at a time as work arrives; warm_up returns only once
    every one of them has answered."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    before = set(multiprocessing.active_children())
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert timing.warm_up(pool, 3) is pool
        started = set(multiprocessing.active_children()) - before
        answered = {pid for pid, _ in pool.map(__import__("futureslab.tasks").tasks.whoami_after, [0.05] * 3)}
    assert len(started) == 3 and answered <= {p.pid for p in started}


def test_warm_up_bad_input_and_too_few_workers():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(TimeoutError, match="only 1 of workers=2"):
            timing.warm_up(pool, 2, timeout=0.3)
        with pytest.raises(ValueError, match="workers"):
            timing.warm_up(pool, 0)
    with pytest.raises(TypeError, match="pool"):
        timing.warm_up("pool", 1)


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_free_cores_sees_two_processes_sharing_one_cpu():
    """Two worker processes confined to the one CPU this process also measures on get about one
    core's worth of work: far below two, however idle the rest of the machine (a measure that just
    counted workers, or capped a wrong ratio at the worker count, would say 2)."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})  # workers inherit it under fork, spawn and forkserver alike...
    try:
        from futureslab.cores import pin_to_cpu

        # ...except that a forkserver started earlier keeps its own: pin each worker explicitly too
        with ProcessPoolExecutor(2, initializer=pin_to_cpu, initargs=(cpu,)) as pool:
            free = timing.free_cores(pool, 2, seconds=0.02, repeat=5)
    finally:
        os.sched_setaffinity(0, before)
    assert 0.5 < free < 1.5, free


def test_free_cores_sees_the_gil_in_a_thread_pool():
    """Threads take turns with the GIL, so two threads get about one core's worth of Python work:
    far below two, however idle the machine (the measure is not just a count of workers)."""
    from concurrent.futures import ThreadPoolExecutor

    if not getattr(__import__("sys"), "_is_gil_enabled", lambda: True)():
        pytest.skip("a free-threaded build has no GIL to see")
    with ThreadPoolExecutor(2) as pool:
        free = timing.free_cores(pool, 2, seconds=0.02)
    assert 0 < free < 1.5


@pytest.mark.parametrize("kwargs,name", [(dict(pool="pool", workers=2), "pool"),
                                         (dict(workers=0), "workers"),
                                         (dict(workers=2, seconds=0), "seconds"),
                                         (dict(workers=2, repeat=0), "repeat")])
def test_free_cores_bad_input(kwargs, name):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        kwargs.setdefault("pool", pool)
        with pytest.raises((TypeError, ValueError), match=name):
            timing.free_cores(**kwargs)
    with pytest.raises(ValueError, match="cores"):
        timing.fmt_cores(-0.5)


@pytest.mark.parametrize("call,name", [(lambda: timing.measure(1), "fn"),
                                       (lambda: timing.measure(print, repeat=0), "repeat"),
                                       (lambda: timing.fmt_seconds(-1), "seconds"),
                                       (lambda: timing.report({}), "timings"),
                                       (lambda: timing.report({"a": 1}, baseline="b"), "baseline")])
def test_timing_bad_input(call, name):
    with pytest.raises((TypeError, ValueError), match=name):
        call()


def test_report_prints_one_line_each(capsys):
    timing.report({"sequential": 1.0, "threads": 0.25}, baseline="sequential")
    out = capsys.readouterr().out.splitlines()
    assert out == ["sequential  1.000 s", "threads     0.250 s  (4.00x vs sequential)"]


def test_runtime_bars_and_speedup_curve():
    ax = plots.runtime_bars({"seq": 1.0, "threads": timing.Timing([0.3])}, baseline="seq", title="t")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["seq", "threads"]
    assert ax.get_title() == "t"
    ax2 = plots.speedup_curve([1, 2, 4], [1.0, 1.9, 2.0], kind="cpu", cores=2)
    lines = ax2.get_lines()
    assert list(lines[0].get_ydata()) == [1, 2, 2]  # the ideal min(workers, cores)
    assert list(lines[1].get_ydata()) == [1.0, 1.9, 2.0]
    ax3 = plots.speedup_curve([1, 2, 4], [1, 2, 3.9], kind="io")
    assert list(ax3.get_lines()[0].get_ydata()) == [1, 2, 4]
    plt.close("all")


def test_speedup_curve_has_integer_ticks_and_a_labelled_cores_line():
    ax = plots.speedup_curve([1, 2, 4, 8], [1.0, 1.8, 1.9, 1.9], kind="cpu", cores=2)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "2 cores granted" in legend
    cores_line = [ln for ln in ax.get_lines() if ln.get_label() == "2 cores granted"]
    assert len(cores_line) == 1 and list(cores_line[0].get_xdata()) == [2, 2]
    far = plots.speedup_curve([1, 2], [1.0, 1.9], kind="cpu", cores=16)
    assert "16 cores granted (beyond this axis)" in [t.get_text() for t in far.get_legend().get_texts()]
    plt.close("all")


def test_style_sets_readable_fonts_without_changing_figure_sizes():
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcParams["font.size"] = 7
        plots.style()
        assert matplotlib.rcParams["figure.dpi"] == 72  # a figure's text repr (its size) stays put
        for key in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize",
                    "ytick.labelsize", "legend.fontsize"):
            assert matplotlib.rcParams[key] >= plots.MIN_FONT, key
        fig, ax = plt.subplots()
        plots.runtime_bars({"a": 1.0, "b": 0.5}, ax=ax, baseline="a")
        sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
        assert sizes and min(sizes) >= plots.MIN_FONT, sizes
    plt.close("all")


def test_log_axis_labels_plain_numbers():
    fig, ax = plt.subplots()
    ax.plot([1, 10, 100, 1000], [4, 3, 2, 1])
    plots.log_axis(ax, [1, 10, 100, 1000])
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "10", "100", "1,000"]
    with pytest.raises(ValueError, match="axis"):
        plots.log_axis(ax, [1, 10], axis="z")
    with pytest.raises(ValueError, match="ticks"):
        plots.log_axis(ax, [0, 10])
    plt.close("all")


@pytest.mark.parametrize("call,name", [(lambda: plots.runtime_bars({}), "runtimes"),
                                       (lambda: plots.runtime_bars({"a": -1}), "runtimes"),
                                       (lambda: plots.runtime_bars({"a": 1}, baseline="z"), "baseline"),
                                       (lambda: plots.speedup_curve([1, 2], [1]), "equal length"),
                                       (lambda: plots.speedup_curve([0], [1]), "workers"),
                                       (lambda: plots.speedup_curve([1], [1], kind="x"), "kind"),
                                       (lambda: plots.speedup_curve([1], [1], cores=0), "cores")])
def test_plots_bad_input(call, name):
    with pytest.raises((TypeError, ValueError), match=name):
        call()


def test_claim_prints_or_raises_with_numbers(capsys):
    claims.claim(True, "threads overlap")
    assert capsys.readouterr().out == "\u2713 threads overlap\n"
    with pytest.raises(claims.ClaimFailed, match=r"threads overlap \(measured: speedup=1.23, workers=4\)"):
        claims.claim(False, "threads overlap", speedup=1.2345, workers=4)
    with pytest.raises(ValueError, match="text"):
        claims.claim(True, "")


def test_measure_until_stops_at_first_success():
    seen = iter([1, 5, 9])
    assert claims.measure_until(lambda: next(seen), lambda v: v > 3) == 5
    seen = iter([1, 2, 3])
    assert claims.measure_until(lambda: next(seen), lambda v: v > 3, attempts=3) == 3
    with pytest.raises(ValueError, match="attempts"):
        claims.measure_until(lambda: 1, bool, attempts=0)
