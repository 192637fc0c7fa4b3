"""Unit tests of futureslab.pipeline: retries, stages, accounting, bad input, picklability."""

from __future__ import annotations

import errno
import multiprocessing as mp
import pickle
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

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
    with pytest.raises(pipeline.FetchFailed, match=r"timed out after 0.1 s"):
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
    assert pipeline.tally([1, 2, 3], outcomes) == {"inputs": 3, "saved": 2, "failed": 1, "missing": 1,
                                                   "unexpected": 1}


def test_tally_bad_input():
    with pytest.raises(TypeError, match="outcomes"):
        pipeline.tally([1], [("saved", "x")])
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
