"""The notebook plumbing of futureslab.pitfalls (05a/05b) and futureslab.lessons (03/04), on real processes
and threads: results and errors, argument checks that name the argument, and nothing left running."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from checker_support import child_pids, nothing_left_behind, os_threads  # noqa: E402
from futureslab import tasks  # noqa: E402
from futureslab.claims import Room  # noqa: E402
from futureslab.lessons import callback_errors, mark_received  # noqa: E402
from futureslab.pitfalls import (WorkerDeath, fmt_us, run_in_fresh_pool, worker_last_words,  # noqa: E402
                                 workers_per_core)
from futureslab.trace import Tracer  # noqa: E402

METHODS = multiprocessing.get_all_start_methods()
NON_FORK = [m for m in METHODS if m != "fork"]


def assert_nothing_left(threads_before: set, children_before: set) -> None:
    threads, children = nothing_left_behind(threads_before, children_before)
    assert not threads, f"threads left running: {threads}"
    assert not children, f"processes left running: {children}"


# ------------------------------------------------------------------------------------------- fmt_us


@pytest.mark.parametrize("seconds, text", [(1.23e-5, "12.3 \u00b5s"), (0, "0.0 \u00b5s"),
                                           (0.00025, "250.0 \u00b5s"), (2e-7, "0.2 \u00b5s"),
                                           (1, "1000000.0 \u00b5s")])
def test_fmt_us_prints_microseconds_with_one_decimal(seconds, text):
    assert fmt_us(seconds) == text


@pytest.mark.parametrize("bad, error", [(-1e-6, ValueError), (float("nan"), ValueError), ("1e-5", TypeError),
                                        (None, TypeError), (True, TypeError)])
def test_fmt_us_rejects_bad_durations_naming_seconds(bad, error):
    with pytest.raises(error, match=r"^seconds must"):
        fmt_us(bad)


# -------------------------------------------------------------------------------- run_in_fresh_pool


@pytest.mark.parametrize("method", METHODS)
def test_run_in_fresh_pool_returns_result_or_exception_and_leaves_nothing(method):
    """A module-level task gives its result; a raising task and a dying worker give their exception
    as a value (not raised); every pool is shut down before the call returns."""
    threads, children = os_threads(), child_pids()
    assert run_in_fresh_pool(method, tasks.double, 21) == 42
    assert run_in_fresh_pool(method, tasks.add, 2, 3) == 5
    failed = run_in_fresh_pool(method, tasks.fail, "on purpose")
    assert type(failed) is ValueError and str(failed) == "on purpose"
    assert isinstance(run_in_fresh_pool(method, tasks.crash_worker), BrokenProcessPool)
    assert_nothing_left(threads, children)


TRIPLE = lambda n: n * 3  # noqa: E731  (a lambda at module level, as a notebook cell makes it)


@pytest.mark.parametrize("method", METHODS)
def test_run_in_fresh_pool_returns_a_pickling_error_for_a_lambda(method):
    """Under every start method a lambda cannot be sent to a worker (the call is always pickled, even
    under fork): the error comes back as a value, and no worker or pool thread is left behind. A
    module-level lambda gives PicklingError; a local one fails earlier before 3.14 (AttributeError:
    "Can't pickle local object" on 3.10-3.12, "Can't get local object" on 3.13)."""
    from futureslab.checks import is_pickling_error

    threads, children = os_threads(), child_pids()
    outcome = run_in_fresh_pool(method, TRIPLE, 3)
    assert isinstance(outcome, pickle.PicklingError), repr(outcome)
    assert "lambda" in str(outcome)
    local = run_in_fresh_pool(method, lambda n: n * 3, 3)
    assert isinstance(local, (pickle.PicklingError, AttributeError)), repr(local)
    assert is_pickling_error(local) and "lambda" in str(local), repr(local)
    assert_nothing_left(threads, children)


def test_run_in_fresh_pool_checks_its_arguments_before_starting_anything():
    threads, children = os_threads(), child_pids()
    with pytest.raises(ValueError, match=r"^method must be one of .*'bogus'"):
        run_in_fresh_pool("bogus", tasks.double, 1)
    with pytest.raises(TypeError, match=r"^fn must be callable"):
        run_in_fresh_pool(METHODS[0], 42, 1)
    with pytest.raises(ValueError, match=r"^timeout must be >= 0.1"):
        run_in_fresh_pool(METHODS[0], tasks.double, 1, timeout=0.01)
    with pytest.raises(TypeError, match=r"^timeout must be a number"):
        run_in_fresh_pool(METHODS[0], tasks.double, 1, timeout="30")
    assert child_pids() - children == set() and os_threads() - threads == set()


# -------------------------------------------------------------------------------- worker_last_words


@pytest.mark.skipif("fork" not in METHODS, reason="fork is not available on this platform")
def test_worker_last_words_under_fork_finds_cube():
    """A forked worker is a copy of __main__: it finds `cube` and answers 27; no error line."""
    death = worker_last_words("fork")
    assert isinstance(death, WorkerDeath)
    assert (death.method, death.outcome, death.cause) == ("fork", "27", None), death.stderr


@pytest.mark.parametrize("method", NON_FORK)
def test_worker_last_words_under_spawn_and_forkserver_capture_the_real_cause(method):
    """The parent only sees BrokenProcessPool; the worker's stderr holds the AttributeError about cube."""
    death = worker_last_words(method)
    assert death.method == method
    assert death.outcome == "BrokenProcessPool", death.stderr
    assert death.cause is not None and death.cause.startswith("AttributeError: "), death.stderr
    assert "cube" in death.cause
    assert death.cause in death.stderr


def test_worker_last_words_rejects_a_bad_method_and_timeout():
    with pytest.raises(ValueError, match=r"^method must be one of .*'bogus'"):
        worker_last_words("bogus")
    with pytest.raises(ValueError, match=r"^timeout must be >= 1"):
        worker_last_words(METHODS[0], timeout=0.5)


# --------------------------------------------------------------------------------- workers_per_core


def test_workers_per_core_times_both_pools_and_reports_the_room():
    """Sleeping work is not CPU work: twice the workers per core finish it about twice as fast (the
    wrong mechanism 05a's claim must reject). Both pools are timed, and gone afterwards."""
    threads, children = os_threads(), child_pids()
    # 0.1 s sleeps: with 0.05 s, a busy 2-core machine's pool overhead brought the ratio near 1.5
    best, room = workers_per_core(tasks.sleep_for, [0.1] * 8, cores=2, rounds=1)
    assert set(best) == {2, 4}
    assert all(0 < s < 10 for s in best.values()), best
    assert best[2] >= 4 * 0.1 and best[4] >= 2 * 0.1, best  # 8 sleeps on 2 workers, then on 4
    assert best[2] / best[4] > 1.5, best
    assert isinstance(room, Room) and room.granted > 0 and room.other >= 0
    assert_nothing_left(threads, children)


def _mark(path: str) -> None:
    """One call, one byte: how many times a pool ran it (module level, so it pickles)."""
    with open(path, "a") as f:
        f.write("x")


@pytest.mark.skipif(sys.platform != "linux", reason="starts detached busy loops with sh")
def test_workers_per_core_measures_extra_rounds_only_while_other_programs_are_busy(tmp_path):
    """05a's "too many workers" bound needs every granted core: after ``rounds`` rounds it measures
    up to ``extra_rounds`` more while other programs kept them busy, and stops as soon as they did
    not. Rounds are counted by the calls the pools made (4 items on each of the 2 pools per round)."""
    from futureslab.claims import quiet
    from load_support import busy_outside, stop

    def rounds_run(path):
        return len(path.read_text()) // 8 if path.exists() else 0

    calm_path, busy_path = tmp_path / "calm", tmp_path / "busy"
    _, calm_room = workers_per_core(_mark, [str(calm_path)] * 4, cores=2, rounds=1, extra_rounds=3)
    if rounds_run(calm_path) < 4:  # stopped early: only because the room was quiet
        assert quiet(calm_room, calm_room.granted), (rounds_run(calm_path), calm_room)
    else:
        print(f"other programs were busy ({calm_room}): every extra round was taken, as it must be")
    hogs = [busy_outside(10.0) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        _, busy_room = workers_per_core(_mark, [str(busy_path)] * 4, cores=2, rounds=1, extra_rounds=3)
    finally:
        for pid in hogs:
            stop(pid)
    assert not quiet(busy_room, busy_room.granted), busy_room
    assert rounds_run(busy_path) == 4, (rounds_run(busy_path), busy_room)  # 1 round + all 3 extra


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(fn=42), TypeError, "fn"),
    (dict(items=[]), ValueError, "items"),
    (dict(items=iter(())), ValueError, "items"),
    (dict(cores=0), ValueError, "cores"),
    (dict(cores=1.5), TypeError, "cores"),
    (dict(rounds=0), ValueError, "rounds"),
    (dict(extra_rounds=-1), ValueError, "extra_rounds"),
])
def test_workers_per_core_rejects_bad_arguments_naming_them(kwargs, error, name):
    threads, children = os_threads(), child_pids()
    args = dict(fn=tasks.sleep_for, items=[0.01], cores=1, rounds=1) | kwargs
    with pytest.raises(error, match=rf"^{name} must"):
        workers_per_core(**args)
    assert child_pids() - children == set() and os_threads() - threads == set()  # no pool was started


# ---------------------------------------------------------------------------------- callback_errors


def _raise_lookup(future):
    raise LookupError(f"callback for {future.result()}")


def test_callback_errors_collects_records_instead_of_printing(capsys, caplog):
    """Inside the block a raising done-callback (on a bare Future, and on a real worker thread) is
    collected with its exc_info, and neither reaches stderr nor the root logger's handlers."""
    logger = logging.getLogger("concurrent.futures")
    handlers, propagate = list(logger.handlers), logger.propagate
    with caplog.at_level(logging.DEBUG), callback_errors() as caught:
        assert logger.propagate is False
        future = Future()
        future.add_done_callback(_raise_lookup)
        future.set_result(1)  # runs the callback here, which raises
        with ThreadPoolExecutor(2) as pool:
            for n in (2, 3):
                pool.submit(tasks.double, n).add_done_callback(_raise_lookup)
    assert len(caught) == 3
    assert all(isinstance(r, logging.LogRecord) for r in caught)
    assert [r.exc_info[0] for r in caught] == [LookupError] * 3
    assert sorted(str(r.exc_info[1]) for r in caught) == ["callback for 1", "callback for 4",
                                                          "callback for 6"]
    assert all(r.name == "concurrent.futures" and r.getMessage().startswith("exception calling callback")
               for r in caught)
    assert not [r for r in caplog.records if r.name == "concurrent.futures"]
    assert capsys.readouterr().err == ""
    assert logger.handlers == handlers and logger.propagate is propagate


def test_callback_errors_restores_the_logger_after_the_block(caplog):
    """After the block the collecting handler is gone and records propagate again as before."""
    logger = logging.getLogger("concurrent.futures")
    handlers, propagate = list(logger.handlers), logger.propagate
    with callback_errors() as caught:
        assert len(logger.handlers) == len(handlers) + 1
    assert logger.handlers == handlers and logger.propagate is propagate
    future = Future()
    future.add_done_callback(_raise_lookup)
    with caplog.at_level(logging.ERROR):
        future.set_result(7)
    assert caught == []
    assert [r.exc_info[0] for r in caplog.records if r.name == "concurrent.futures"] == [LookupError]


def test_callback_errors_restores_propagate_false_even_when_the_block_raises():
    logger = logging.getLogger("concurrent.futures")
    handlers, propagate = list(logger.handlers), logger.propagate
    logger.propagate = False
    try:
        with pytest.raises(RuntimeError, match="inside"), callback_errors():
            raise RuntimeError("inside")
        assert logger.propagate is False and logger.handlers == handlers
    finally:
        logger.propagate = propagate


# ------------------------------------------------------------------------------------ mark_received


def test_mark_received_adds_a_received_row_under_a_real_timeline():
    """Three tasks on three threads through executor.map: item 1 (short) is received right after item 0
    (long), in one burst labelled "0,1"; item 2 (longer) arrives alone later."""
    seconds = {0: 0.2, 1: 0.02, 2: 0.4}
    with Tracer() as tracer:
        traced = tracer.wrap(tasks.sleep_then_return)
        received = []
        with ThreadPoolExecutor(3) as pool:
            for item in pool.map(traced, seconds, seconds.values()):
                received.append((item, time.perf_counter() - tracer.t0))
    assert [item for item, _ in received] == [0, 1, 2]
    fig, ax = plt.subplots()
    try:
        tracer.plot(ax=ax)
        rows = [t.get_text() for t in ax.get_yticklabels()]
        assert mark_received(ax, tracer, received) is ax
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == rows + ["received"] and labels[-1] == "received"
        assert labels[:-1] == ["thread-1", "thread-2", "thread-3"]
        points = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert len(points) == 1 and len(points[0].get_offsets()) == len(received)
        assert [tuple(p) for p in points[0].get_offsets()] == [(t, 3) for _, t in received]
        notes = [t for t in ax.texts if isinstance(t, Annotation)]
        assert [n.get_text() for n in notes] == ["0,1", "2"]
        assert [n.xy for n in notes] == [(received[0][1], 3), (received[2][1], 3)]
    finally:
        plt.close(fig)


def test_mark_received_burst_groups_results_close_in_time():
    """Labels group by `burst`: with burst=0 every result gets its own label; a wide burst joins all."""
    with Tracer() as tracer:
        traced = tracer.wrap(tasks.sleep_for)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(traced, [0.01, 0.01]))
    received = [("a", 0.1), ("b", 0.105), ("c", 0.3)]
    for burst, texts in ((0.01, ["a,b", "c"]), (0, ["a", "b", "c"]), (1.0, ["a,b,c"])):
        fig, ax = plt.subplots()
        try:
            tracer.plot(ax=ax)
            mark_received(ax, tracer, received, burst=burst)
            assert [t.get_text() for t in ax.texts if isinstance(t, Annotation)] == texts, burst
        finally:
            plt.close(fig)


@pytest.mark.parametrize("prefix", ["my-pool", "dl"])
def test_mark_received_keeps_the_rows_plot_timeline_drew(prefix):
    """Custom thread names (``my-pool_0``, ``dl_2`` before ``dl_10``): the labels stay on the rows the
    timeline drew, in its order, and a name with a dash and no number does not crash it."""
    with Tracer() as tracer:
        traced = tracer.wrap(tasks.sleep_for)
        with ThreadPoolExecutor(11, thread_name_prefix=prefix) as pool:
            list(pool.map(traced, [0.05] * 11))
    fig, ax = plt.subplots()
    try:
        tracer.plot(ax=ax)
        rows = [t.get_text() for t in ax.get_yticklabels()]
        assert len(rows) == 11
        mark_received(ax, tracer, [("x", 0.1)])
        assert [t.get_text() for t in ax.get_yticklabels()] == rows + ["received"]
    finally:
        plt.close(fig)


def test_run_in_fresh_pool_stops_a_task_that_runs_past_its_timeout():
    """A 30 s task with timeout=0.5: a TimeoutError after about 0.5 s (the worker is terminated, not
    waited for), and no process or thread left behind."""
    threads, children = os_threads(), child_pids()
    t0 = time.perf_counter()
    outcome = run_in_fresh_pool(METHODS[0], tasks.sleep_for, 30, timeout=0.5)
    took = time.perf_counter() - t0
    assert isinstance(outcome, FuturesTimeout), outcome  # builtins.TimeoutError from 3.11 on
    assert took < 5, f"returned after {took:.1f} s: the 30 s task was waited for"
    left_threads, left_children = nothing_left_behind(threads, children)
    assert not left_threads and not left_children, (left_threads, left_children)
