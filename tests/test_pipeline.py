"""Unit tests of futureslab.pipeline: retries, stages, accounting, bad input, picklability, and the
pipelines themselves surviving a worker process that really dies mid-run."""

from __future__ import annotations

import errno
import os
import multiprocessing as mp
import pickle
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial

import pytest

from futureslab import pipeline
from futureslab.data import POSTS
from futureslab.server import LocalAPI
from futureslab.trace import Tracer


@pytest.fixture(scope="module")
def api():
    with LocalAPI(latency=0.01) as server:
        yield server


# ------------------------------------------------------------------------------ get_with_retry

def test_get_returns_json(api):
    assert pipeline.get_with_retry(f"{api.url}/posts/3") == POSTS[2]


def test_503_is_retried_with_doubling_backoff(api):
    api.reset_stats()
    t0 = time.perf_counter()
    with pytest.raises(pipeline.FetchFailed, match=r"gave up after 4 attempts, last: HTTP 503") as info:
        pipeline.get_with_retry(f"{api.url}/posts/1?fail=1", retries=3, backoff=0.04)
    assert time.perf_counter() - t0 >= 0.04 + 0.08 + 0.16 - 0.01
    assert api.stats()["requests"] == 4
    assert info.value.attempts == 4


def test_404_is_not_retried(api):
    api.reset_stats()
    with pytest.raises(pipeline.FetchFailed, match=r"HTTP 404 \(not retried\)") as info:
        pipeline.get_with_retry(f"{api.url}/posts/999", retries=5)
    assert api.stats()["requests"] == 1 and info.value.attempts == 1


def test_timeout_is_retried_then_reported(api):
    api.reset_stats()
    t0 = time.perf_counter()
    with pytest.raises(pipeline.FetchFailed, match=r"timed out \(one socket wait took over 0.1 s\)"):
        pipeline.get_with_retry(f"{api.url}/slow?seconds=2", retries=1, backoff=0.01, timeout=0.1)
    assert time.perf_counter() - t0 < 1.5
    assert api.stats()["requests"] == 2


def test_flaky_endpoint_succeeds_with_retries(api):
    for _ in range(5):
        assert pipeline.get_with_retry(f"{api.url}/flaky?rate=0.3", retries=12, backoff=0.001)["ok"]


def test_refused_connection_is_reported():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(pipeline.FetchFailed, match="connection failed"):
        pipeline.get_with_retry(f"http://127.0.0.1:{port}/x", retries=1, backoff=0.001)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(url="/posts/1"), ValueError, "url"),
    (dict(url="http://127.0.0.1:1/x", retries=-1), ValueError, "retries"),
    (dict(url="http://127.0.0.1:1/x", retries=1.5), TypeError, "retries"),
    (dict(url="http://127.0.0.1:1/x", backoff=-1), ValueError, "backoff"),
    (dict(url="http://127.0.0.1:1/x", timeout=0), ValueError, "timeout"),
])
def test_get_with_retry_bad_input(kwargs, error, words):
    url = kwargs.pop("url")
    with pytest.raises(error, match=words):
        pipeline.get_with_retry(url, **kwargs)


def test_download_uses_running_api(api):
    assert pipeline.download(5) == POSTS[4]
    with pytest.raises(ValueError, match="post_id"):
        pipeline.download(0)


# ------------------------------------------------------------------------------------ sessions

def test_make_session_sizes_pool_and_ignores_proxies(api):
    with pipeline.make_session(pool_maxsize=20) as session:
        assert session.trust_env is False
        assert session.get_adapter(api.url)._pool_maxsize == 20
    with pytest.raises(ValueError, match="pool_maxsize"):
        pipeline.make_session(pool_maxsize=0)


def test_make_session_trusts_env_for_remote_urls():
    with pipeline.make_session(base_url="https://example.org") as session:
        assert session.trust_env is True


def test_thread_session_is_per_thread():
    with ThreadPoolExecutor(max_workers=2) as pool:
        ids = set(pool.map(lambda _: (id(pipeline.thread_session()), id(pipeline.thread_session())), [0, 1]))
    assert all(a == b for a, b in ids)  # the same session within one thread
    assert id(pipeline.thread_session()) == id(pipeline.thread_session())


# ------------------------------------------------------------------------------------- analyse

def test_analyse_is_deterministic_and_summarises():
    out = pipeline.analyse(POSTS[0], rounds=10)
    assert out == pipeline.analyse(POSTS[0], rounds=10)
    assert out["id"] == 1 and out["words"] == len(f"{POSTS[0]['title']} {POSTS[0]['body']}".split())
    assert len(out["fingerprint"]) == 8
    assert pipeline.analyse(POSTS[0], rounds=11)["fingerprint"] != out["fingerprint"]


@pytest.mark.parametrize("post, rounds, error", [
    ({"id": 1}, 10, TypeError), ("post", 10, TypeError), (POSTS[0], 0, ValueError),
])
def test_analyse_bad_input(post, rounds, error):
    with pytest.raises(error, match="post|rounds"):
        pipeline.analyse(post, rounds=rounds)


@pytest.mark.parametrize("method", mp.get_all_start_methods())
def test_analyse_runs_in_process_pools_under_every_start_method(method):
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context(method)) as pool:
        assert pool.submit(pipeline.analyse, POSTS[1], 5).result(timeout=60) == pipeline.analyse(POSTS[1], 5)


def test_traced_analyse_with_item_label_pickles():
    with Tracer() as tracer:
        traced = tracer.wrap(pipeline.analyse, label=pipeline.item_label)
        pickle.dumps(traced)
        traced(POSTS[0], 1)
        assert tracer.records[0].task == "1"


# --------------------------------------------------------------------------------------- Saver

def test_saver_writes_json_and_is_idempotent(tmp_path):
    saver = pipeline.Saver(tmp_path)
    result = pipeline.analyse(POSTS[0], rounds=1)
    assert saver.save(result) == "post_001.json"
    assert saver.save(result) == "post_001.json"
    assert saver.files() == ["post_001.json"]
    import json

    assert json.loads((tmp_path / "post_001.json").read_text()) == result


def test_saver_fails_after_quota_then_recovers(tmp_path):
    saver = pipeline.Saver(tmp_path, fail_after=2)
    results = [pipeline.analyse(p, rounds=1) for p in POSTS[:4]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(saver.save, r) for r in results]
    errors = [f.exception() for f in futures if f.exception() is not None]
    assert len(errors) == 2 and all(e.errno == errno.ENOSPC for e in errors)
    saver.make_room()
    for r in results:
        saver.save(r)
    assert len(saver.files()) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_saver_bad_input(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        pipeline.Saver(tmp_path / "missing")
    with pytest.raises(ValueError, match="fail_after"):
        pipeline.Saver(tmp_path, fail_after=-1)
    with pytest.raises(TypeError, match="result"):
        pipeline.Saver(tmp_path).save({"no": "id"})


# ---------------------------------------------------------------------------------- accounting

def test_tally_counts_and_finds_missing():
    outcomes = {1: ("saved", "post_001.json"), 2: ("failed", "download: HTTP 404"), 9: ("saved", "x")}
    assert pipeline.tally([1, 2, 3], outcomes) == {"inputs": 3, "saved": 2, "failed": 1, "retried": 0,
                                                   "missing": 1, "unexpected": 1, "duplicates": 0}


def test_tally_bad_input():
    with pytest.raises(TypeError, match="outcomes"):
        pipeline.tally([1], "saved")
    with pytest.raises(ValueError, match="pairs"):
        pipeline.tally([1], [("saved", "x", 1)])
    with pytest.raises(ValueError, match=r"outcomes\[1\]"):
        pipeline.tally([1], {1: "saved"})


def test_item_label():
    assert pipeline.item_label({"id": 7, "x": 1}) == "7"
    assert pipeline.item_label(12, retries=3) == "12"


def test_stage_records_rename_rows():
    with Tracer() as tracer:
        fn = tracer.wrap(pipeline.item_label)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="download") as pool:
            pool.submit(fn, 1).result()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="save") as pool:
            pool.submit(fn, 2).result()
        fn(3)
    rows = [r.worker for r in pipeline.stage_records(tracer)]
    assert rows == ["1. download 01", "3. save 01", "main"]


def test_tally_shows_an_item_that_ended_twice():
    pairs = [(1, ("saved", "post_001.json")), (2, ("failed", "analyse: boom")), (1, ("saved", "post_001.json"))]
    assert pipeline.tally([1, 2], pairs)["duplicates"] == 1
    as_dict = dict(pairs)  # the same events in a dict: the duplicate is gone, which is why the ledger is a list
    assert pipeline.tally([1, 2], as_dict)["duplicates"] == 0


def test_ledger_keeps_every_fate_and_counts_duplicates():
    ledger = pipeline.Ledger()
    ledger.retried(1, "download", "HTTP 503")
    ledger.saved(1, "post_001.json")
    ledger.failed(2, "save", "OSError: disk full")
    ledger.reopen(2, "resumed after make_room")
    ledger.saved(2, "post_002.json")  # a failed save resumed: not a duplicate
    ledger.retried(3, "analyse", "BrokenProcessPool")  # retried, never ended: missing
    assert pipeline.tally([1, 2, 3], ledger) == {"inputs": 3, "saved": 2, "failed": 0, "retried": 2,
                                                 "missing": 1, "unexpected": 0, "duplicates": 0}
    assert ledger.history(2) == [("failed", "save: OSError: disk full"), ("reopened", "resumed after make_room"),
                                 ("saved", "post_002.json")]
    ledger.failed(1, "save", "late")  # ended a second time with no reopen: the bug a dict would hide
    assert pipeline.tally([1, 2, 3], ledger)["duplicates"] == 1
    assert ledger.outcomes()[1] == ("failed", "save: late")


# ------------------------------------------------------------------------- Saver: writes, checks

def test_saver_failed_write_leaves_no_temporary_file_and_is_not_counted(tmp_path):
    saver = pipeline.Saver(tmp_path)
    half = {"id": 4, "a": "written first", "z": object()}  # JSON fails on "z", after "a" is in the file
    with pytest.raises(TypeError, match="not JSON serializable"):
        saver.save(half)
    assert list(tmp_path.iterdir()) == [] and saver.saved == 0 and saver.digests == {}
    saver.save({"id": 4, "a": 1})
    assert saver.saved == 1 and saver.files() == ["post_004.json"]


def test_saver_durable_writes_the_same_file(tmp_path):
    saver = pipeline.Saver(tmp_path, durable=True)
    assert saver.save({"id": 2, "x": [1, 2]}) == "post_002.json"
    assert saver.verify()["good"] == 1
    with pytest.raises(TypeError, match="durable"):
        pipeline.Saver(tmp_path, durable="yes")


def test_verify_reads_every_file_back(tmp_path):
    saver = pipeline.Saver(tmp_path)
    for i in (1, 2, 3, 4):
        saver.save({"id": i, "words": i * 10})
    report = saver.verify()
    assert report == {"checked": 4, "good": 4, "bad": [], "missing": [], "unexpected": [], "temporary": []}
    (tmp_path / "post_001.json").write_text('{"id": 1, "words": 11}')  # changed on disk
    (tmp_path / "post_002.json").write_text('{"id": 7, "words": 20}')  # another post's content
    (tmp_path / "post_003.json").unlink()
    (tmp_path / "post_009.json").write_text('{"id": 9}')  # nobody saved this
    (tmp_path / ".post_004.json.x.tmp").write_text("{")
    report = saver.verify({4: ("saved", "post_004.json"), 5: ("saved", "post_005.json")})
    assert report["bad"] == ["post_001.json", "post_002.json"]
    assert report["missing"] == ["post_003.json", "post_005.json"]
    assert report["unexpected"] == ["post_009.json"] and report["temporary"] == [".post_004.json.x.tmp"]
    assert report["checked"] == 3 and report["good"] == 1
    with pytest.raises(TypeError, match="outcomes"):
        saver.verify(["post_001.json"])


def test_fail_after_counts_saves_in_progress(tmp_path):
    saver = pipeline.Saver(tmp_path, fail_after=3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(saver.save, {"id": i}) for i in range(1, 21)]
    assert sum(f.exception() is None for f in futures) == 3 == saver.saved == len(saver.files())


# ---------------------------------------------------------------- the pipelines, a worker killed

INPUTS = list(range(1, 17)) + [999]


@pytest.fixture()
def flaky_api():
    with LocalAPI(latency=0.01, jitter=0.02, failure_rate=0.15, seed=6) as server:
        yield server


def _check_nothing_lost(run, saver):
    count = pipeline.tally(INPUTS, run.ledger)
    assert count["missing"] == count["unexpected"] == count["duplicates"] == 0, count
    assert count["saved"] == 16 and count["failed"] == 1, run.ledger.events
    assert run.outcomes[999] == ("failed", "download: FetchFailed: HTTP 404 (not retried)")
    report = saver.verify(run.ledger)
    assert report["good"] == report["checked"] == 16 and not (report["bad"] or report["missing"]
                                                             or report["unexpected"] or report["temporary"])
    assert saver.saved == 16


@pytest.mark.parametrize("runner", [pipeline.run_streaming, pipeline.run_staged])
@pytest.mark.parametrize("method", mp.get_all_start_methods())
def test_pipeline_survives_a_worker_that_exits(runner, method, flaky_api, tmp_path):
    (tmp_path / "out").mkdir()
    saver = pipeline.Saver(tmp_path / "out")
    crash = pipeline.Crash(5, tmp_path / "crashed", rounds=3000)
    run = runner(INPUTS, saver, analyse=crash, workers=2, mp_context=mp.get_context(method))
    assert (tmp_path / "crashed").exists(), "the worker never crashed: the test proved nothing"
    assert run.restarts >= 1
    retried = [detail for _, status, detail in run.ledger.events if status == "retried" and "analyse" in detail]
    assert retried and all("BrokenProcessPool" in d for d in retried)
    assert any(status == "retried" for status, _ in run.ledger.history(5))
    _check_nothing_lost(run, saver)


def _worker_pids():
    """Pool workers among this process's descendants (not the resource tracker, not the forkserver)."""
    import psutil

    me = os.getpid()
    pids = []
    for p in psutil.Process(me).children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
            if "resource_tracker" in cmd or (p.ppid() == me and "forkserver" in cmd):
                continue
            pids.append(p.pid)
        except psutil.Error:
            pass
    return pids


@pytest.mark.parametrize("method", mp.get_all_start_methods())
def test_streaming_survives_a_worker_killed_from_outside(method, flaky_api, tmp_path):
    """A signal from another process (as the out-of-memory killer would send) in the middle of the run:
    sent once the first file is on disk, while the other posts are still being analysed."""
    import signal
    import threading

    saver = pipeline.Saver(tmp_path)
    killed = []

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not saver.files():
            time.sleep(0.005)
        for pid in _worker_pids()[:1]:
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            killed.append(pid)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        run = pipeline.run_streaming(INPUTS, saver, workers=2, mp_context=mp.get_context(method))
    finally:
        thread.join()
    assert killed, "no worker was found to kill: the test proved nothing"
    assert run.restarts >= 1, run.ledger.events
    _check_nothing_lost(run, saver)


def test_an_item_that_always_kills_its_worker_fails_with_its_reason(flaky_api, tmp_path):
    """After `attempts` tries the item fails with the reason and its post is kept; no item is lost.
    (Items in the pool at the same moment share its fate: they fail too if it broke every time.)"""
    saver = pipeline.Saver(tmp_path)
    crash = pipeline.Crash(3, tmp_path / "crashed", times=5, rounds=500)
    run = pipeline.run_streaming([1, 2, 3, 4], saver, analyse=crash, workers=2, attempts=2)
    count = pipeline.tally([1, 2, 3, 4], run.ledger)
    assert count["missing"] == count["duplicates"] == 0 and crash.crashes() == 2
    assert run.outcomes[3][0] == "failed" and "BrokenProcessPool" in run.outcomes[3][1]
    assert run.kept[3][0] == "analyse" and run.kept[3][1]["id"] == 3  # the downloaded post is kept
    for item, (status, detail) in run.outcomes.items():
        assert status == "saved" or "BrokenProcessPool" in detail, (item, detail)
        assert (status == "saved") == (item not in run.kept)
    assert saver.verify(run.ledger)["good"] == count["saved"]


def test_analysis_error_keeps_the_post(flaky_api, tmp_path):
    saver = pipeline.Saver(tmp_path)
    run = pipeline.run_streaming([1, 2], saver, analyse=partial(pipeline.analyse, rounds=0), workers=1)
    assert {i: o[0] for i, o in run.outcomes.items()} == {1: "failed", 2: "failed"}
    assert "rounds must be >= 1" in run.outcomes[1][1]
    assert run.kept[1] == ("analyse", POSTS[0])


def test_timeout_never_fails_a_task_that_is_still_running(tmp_path):
    """Downloads of 1.0 s, a timeout of 0.3 s: the running downloads cannot be stopped, so they are
    waited for and recorded as what they were (finished, not analysed); queued ones are cancelled."""
    with LocalAPI(latency=1.0) as api:
        saver = pipeline.Saver(tmp_path)
        slow = partial(pipeline.download, base_url=api.url, retries=0, timeout=5)
        ids = list(range(1, 11))  # 8 download threads: 8 start, 2 wait in the queue
        run = pipeline.run_streaming(ids, saver, download=slow, workers=1, timeout=0.3)
    assert run.stalled
    count = pipeline.tally(ids, run.ledger)
    assert count["missing"] == count["duplicates"] == 0 and count["failed"] == 10
    reasons = [o[1] for o in run.outcomes.values()]
    assert sum(r.startswith("download: not started") for r in reasons) == 2
    assert sum(r.startswith("analyse: not started: the run had stopped") for r in reasons) == 8
    assert sorted(i for i, (stage, _) in run.kept.items() if stage == "analyse") == sorted(
        i for i, o in run.outcomes.items() if o[1].startswith("analyse"))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(inputs=[1, 1]), ValueError, "inputs"),
    (dict(saver="folder"), TypeError, "saver"),
    (dict(workers=0), ValueError, "workers"),
    (dict(attempts=0), ValueError, "attempts"),
    (dict(analyse=3), TypeError, "analyse"),
    (dict(timeout=0), ValueError, "timeout"),
])
def test_run_streaming_bad_input(kwargs, error, words, tmp_path):
    args = dict(inputs=[1], saver=pipeline.Saver(tmp_path))
    args.update(kwargs)
    with pytest.raises(error, match=words):
        pipeline.run_streaming(args.pop("inputs"), args.pop("saver"), **args)


def test_crash_once_refuses_to_run_in_its_own_process(tmp_path):
    crash = pipeline.Crash(1, tmp_path / "m")
    with pytest.raises(RuntimeError, match="worker process"):
        crash(POSTS[0])
    (tmp_path / "m").touch()
    with pytest.raises(ValueError, match="marker"):
        pipeline.Crash(1, tmp_path / "m")
    pickle.dumps(crash)


def _legend(ax) -> list:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_plot_pipeline_explains_hatch_and_short_tasks(tmp_path, flaky_api):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with Tracer() as tracer:
        pipeline.run_streaming([1, 2, 999], pipeline.Saver(tmp_path), tracer=tracer, workers=1,
                               analyse=partial(pipeline.analyse, rounds=200))
    ax = pipeline.plot_pipeline(tracer, title="t")
    labels = _legend(ax)
    assert any(label.startswith("red hatch") for label in labels)  # post 999's download: HTTP 404
    # A diamond is drawn (and explained) exactly when some task is shorter than 1/150 of the span:
    # whether a real save is that short depends on the machine, so judge the rule, not the luck.
    records = pipeline.stage_records(tracer)
    short = any(r.duration < max(r.end for r in records) / 150 for r in records)
    assert any(label.startswith("diamond") for label in labels) == short
    assert [t.get_text() for t in ax.get_yticklabels()][0].startswith("1. download")
    plt.close(ax.figure)


def test_plot_pipeline_draws_a_diamond_only_for_a_task_too_short_for_a_bar():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from futureslab.trace import TaskRecord

    long_ones = [TaskRecord("1", "download_0", 1, "download_0", 0.0, 1.0),
                 TaskRecord("1", "analyse_0", 1, "analyse_0", 1.0, 2.0)]
    tiny_save = TaskRecord("1", "save_0", 1, "save_0", 2.0, 2.001)  # 1 ms of a 2 s run
    for records, diamonds in ((long_ones, 0), (long_ones + [tiny_save], 1)):
        ax = pipeline.plot_pipeline(records)
        markers = [line for line in ax.get_lines() if isinstance(line, Line2D) and line.get_marker() == "D"]
        assert len(markers) == diamonds
        assert any(label.startswith("diamond") for label in _legend(ax)) == bool(diamonds)
        assert not any(label.startswith("red hatch") for label in _legend(ax))
        plt.close(ax.figure)


def test_analysers_shutdown_stops_workers_only_when_the_run_ended_early():
    """The pipeline's process pool: after a run whose tasks all finished, shutdown just waits (and the
    workers end normally); with a task still running (the run was interrupted or failed), shutdown
    terminates the workers instead of waiting for it, so an interrupt cannot leave the cell stuck."""
    from futureslab.tasks import sleep_for, square

    done = pipeline._Analysers(1, None)
    future, _ = done.submit(square, 4)
    assert future.result() == 16
    workers = list(done.pool._processes.values())
    done.shutdown()
    assert all(p.exitcode == 0 for p in workers), [p.exitcode for p in workers]  # a normal exit

    early = pipeline._Analysers(1, None)
    future, _ = early.submit(sleep_for, 30)
    deadline = time.monotonic() + 20
    while not future.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.running()
    workers = list(early.pool._processes.values())
    t0 = time.perf_counter()
    early.shutdown()
    assert time.perf_counter() - t0 < 10  # not the 30 s the task would take
    assert all(p.exitcode is not None and p.exitcode < 0 for p in workers), [p.exitcode for p in workers]
