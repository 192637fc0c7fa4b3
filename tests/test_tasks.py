"""Every task function: right answers, clear errors, and runs in a process pool under every start method."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest

from futureslab import tasks
from futureslab.server import LocalAPI

START_METHODS = [m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]

PUBLIC = [name for name in dir(tasks) if not name.startswith("_") and callable(getattr(tasks, name))
          and getattr(getattr(tasks, name), "__module__", "") == tasks.__name__]


def test_every_public_task_pickles_by_reference():
    assert len(PUBLIC) >= 25
    for name in PUBLIC:
        fn = getattr(tasks, name)
        assert pickle.loads(pickle.dumps(fn)) is fn


def test_cpu_tasks():
    assert [n for n in range(30) if tasks.is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert tasks.count_primes(0, 1000) == 168
    assert tasks.count_primes_in((0, 100)) == 25
    assert tasks.prime_ranges(100, 4) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert sum(tasks.count_primes_in(r) for r in tasks.prime_ranges(10_000, 7)) == 1229
    assert tasks.prime_ranges(10, 3, start=4) == [(4, 6), (6, 8), (8, 10)]
    assert 0.05 <= tasks.spin(0.05) < 1.0
    assert tasks.burn(1000) == 1000 and tasks.burn(0) == 0
    assert len(tasks.sha256_rounds(0.1, 2)) == 64


def test_tiny_and_failing_tasks():
    assert (tasks.double(4), tasks.square(3), tasks.add(2, 5), tasks.identity("x"), tasks.shout("hi")) == (8, 9, 7, "x", "HI")
    with pytest.raises(ValueError, match="on purpose"):
        tasks.fail()
    assert tasks.fail_on(2) == 4
    with pytest.raises(ValueError, match="3 is unlucky"):
        tasks.fail_on(3)
    assert tasks.unlucky(2, unit=0.001) == 4
    with pytest.raises(ValueError):
        tasks.unlucky(3, unit=0)
    assert tasks.sleep_for(0.01) == 0.01
    assert tasks.sleep_then_return("v", 0) == "v"
    assert len(tasks.make_payload(0.5)) == 512 * 1024
    assert tasks.payload_size(b"abc") == 3
    with pytest.raises(RuntimeError, match="worker process"):
        tasks.crash_worker()


@pytest.mark.parametrize("call,name", [
    (lambda: tasks.is_prime(2.5), "n"), (lambda: tasks.is_prime(True), "n"),
    (lambda: tasks.count_primes(-1, 5), "start"), (lambda: tasks.count_primes(5, 2), "end"),
    (lambda: tasks.count_primes_in(5), "bounds"), (lambda: tasks.prime_ranges(10, 0), "chunks"),
    (lambda: tasks.spin(-1), "seconds"), (lambda: tasks.burn(-1), "loops"), (lambda: tasks.burn(1.5), "loops"), (lambda: tasks.sleep_for("1"), "seconds"),
    (lambda: tasks.fetch_post(0), "post_id"), (lambda: tasks.fetch_user("1"), "user_id"),
    (lambda: tasks.get_json("posts/1"), "path"), (lambda: tasks.fetch_url_size("x"), "url"),
    (lambda: tasks.shout(3), "text"), (lambda: tasks.make_payload(-1), "size_mb"),
    (lambda: tasks.sha256_rounds(1, 0), "rounds"), (lambda: tasks.unlucky(-1), "n"),
])
def test_bad_arguments_name_themselves(call, name):
    with pytest.raises((TypeError, ValueError), match=name):
        call()


def test_fetch_without_a_running_api_explains_the_fix(monkeypatch):
    monkeypatch.delenv("FUTURESLAB_API_URL", raising=False)
    monkeypatch.delenv("FUTURESLAB_REMOTE_API", raising=False)
    with pytest.raises(RuntimeError, match="start the local one"):
        tasks.fetch_post(1)


def test_fetch_url_size_and_timeout():
    import requests

    with LocalAPI(latency=0) as api:
        assert tasks.fetch_url_size(api.url + "/posts/1") > 50
        with pytest.raises(requests.Timeout):
            tasks.get_json("/slow?seconds=2", timeout=0.2)


@pytest.mark.parametrize("method", START_METHODS)
def test_every_kind_of_task_runs_in_a_process_pool(method):
    ctx = multiprocessing.get_context(method)
    with LocalAPI(latency=0) as api, ProcessPoolExecutor(2, mp_context=ctx) as pool:
        jobs = {
            "count_primes": pool.submit(tasks.count_primes, 0, 1000),
            "count_primes_in": pool.submit(tasks.count_primes_in, (0, 100)),
            "is_prime": pool.submit(tasks.is_prime, 97),
            "spin": pool.submit(tasks.spin, 0.01),
            "burn": pool.submit(tasks.burn, 1000),
            "sha": pool.submit(tasks.sha256_rounds, 0.01, 1),
            "fetch_post": pool.submit(tasks.fetch_post, 3),
            "fetch_user": pool.submit(tasks.fetch_user, 3),
            "fetch_user_posts": pool.submit(tasks.fetch_user_posts, 3),
            "fetch_comments": pool.submit(tasks.fetch_comments, 3),
            "fetch_url_size": pool.submit(tasks.fetch_url_size, api.url + "/users/1"),
            "sleep_for": pool.submit(tasks.sleep_for, 0.01),
            "double": pool.submit(tasks.double, 21),
            "payload": pool.submit(tasks.payload_size, tasks.make_payload(0.1)),
            "whoami": pool.submit(tasks.whoami),
        }
        results = {k: f.result(timeout=60) for k, f in jobs.items()}
        mapped = list(pool.map(tasks.count_primes_in, tasks.prime_ranges(1000, 4), timeout=60))
        failing = pool.submit(tasks.fail_on, 3)
        with pytest.raises(ValueError, match="3 is unlucky"):
            failing.result(timeout=60)
        assert api.stats()["requests"] == 5
    assert results["count_primes"] == 168 and results["fetch_post"]["id"] == 3
    assert results["double"] == 42 and results["payload"] == 104857 and results["burn"] == 1000
    assert results["whoami"][0] != multiprocessing.current_process().pid
    assert sum(mapped) == 168


@pytest.mark.parametrize("method", START_METHODS)
def test_crash_worker_breaks_the_pool(method):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
        with pytest.raises(BrokenProcessPool):
            pool.submit(tasks.crash_worker).result(timeout=60)


@pytest.mark.skipif("forkserver" not in START_METHODS, reason="this platform has no forkserver")
def test_forkserver_workers_follow_a_new_local_api():
    """A forkserver started before the API (or before a restart on a new port) must not hand its
    workers a stale URL."""
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        pool.submit(tasks.double, 1).result(timeout=60)  # the forkserver is now running
    for _ in range(2):  # two APIs, two ports, one after the other
        with LocalAPI(latency=0) as api, ProcessPoolExecutor(1, mp_context=ctx) as pool:
            assert pool.submit(tasks.fetch_post, 2).result(timeout=60)["id"] == 2
            assert api.stats()["requests"] == 1
