"""The embedded local API: real HTTP on 127.0.0.1, real threads, real requests."""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from futureslab import data
from futureslab.server import ENV_REMOTE, ENV_URL, LocalAPI, api_url
from futureslab.tasks import fetch_comments, fetch_post, fetch_user, fetch_user_posts, get_json


def _session():
    s = requests.Session()
    s.trust_env = False
    return s


@pytest.fixture
def api():
    with LocalAPI(latency=0) as a:
        yield a


def test_endpoints_shaped_like_placeholder_api(api):
    s = _session()
    assert len(s.get(api.url + "/posts").json()) == 100
    assert len(s.get(api.url + "/users").json()) == 10
    assert len(s.get(api.url + "/comments").json()) == 500
    post = s.get(api.url + "/posts/7").json()
    assert set(post) == {"userId", "id", "title", "body"} and post["id"] == 7
    user = s.get(api.url + "/users/3").json()
    assert user["id"] == 3 and user["name"] == "Grace Hopper"
    assert [p["userId"] for p in s.get(api.url + "/users/3/posts").json()] == [3] * 10
    assert [c["postId"] for c in s.get(api.url + "/posts/7/comments").json()] == [7] * 5
    assert s.get(api.url + "/posts", params={"userId": 2}).json() == [p for p in data.POSTS if p["userId"] == 2]
    assert len(s.get(api.url + "/comments", params={"postId": 4}).json()) == 5
    assert s.get(api.url + "/health").json() == {"ok": True}


@pytest.mark.parametrize("path,status", [("/posts/0", 404), ("/posts/101", 404), ("/nope", 404),
                                         ("/posts/abc", 400), ("/posts?userId=x", 400),
                                         ("/users/1/comments", 404), ("/posts/1?latency=-1", 400),
                                         ("/posts/1?fail=2", 400), ("/slow?seconds=abc", 400)])
def test_bad_requests_get_clear_json_errors(api, path, status):
    r = _session().get(api.url + path)
    assert r.status_code == status
    assert "error" in r.json()


def test_tasks_fetch_from_the_running_api(api):
    assert fetch_post(1)["id"] == 1
    assert fetch_user(2)["username"] == "alan"
    assert len(fetch_user_posts(2)) == 10
    assert len(fetch_comments(1)) == 5
    assert get_json("/posts/5", base_url=api.url)["id"] == 5
    assert api.stats()["requests"] == 5


def test_latency_is_applied_per_server_and_per_request():
    with LocalAPI(latency=0.2) as a:
        s = _session()
        t0 = time.perf_counter()
        s.get(a.url + "/posts/1")
        assert time.perf_counter() - t0 >= 0.2
        t0 = time.perf_counter()
        s.get(a.url + "/posts/1", params={"latency": 0})
        assert time.perf_counter() - t0 < 0.2
        t0 = time.perf_counter()
        assert s.get(a.url + "/slow", params={"seconds": 0.3}).json()["ok"] is True
        assert time.perf_counter() - t0 >= 0.3


def test_jitter_adds_at_most_jitter():
    with LocalAPI(latency=0.0, jitter=0.05, seed=1) as a:
        s = _session()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            s.get(a.url + "/posts/1")
            times.append(time.perf_counter() - t0)
        assert max(times) < 0.05 + 0.5  # never more than jitter plus generous overhead
        assert len({round(t, 4) for t in times}) > 1


def test_failure_rate_all_none_and_per_request():
    with LocalAPI(latency=0, failure_rate=1.0) as a:
        s = _session()
        r = s.get(a.url + "/posts/1")
        assert r.status_code == 503 and "simulated" in r.json()["error"]
        assert s.get(a.url + "/posts/1", params={"fail": 0}).status_code == 200
        with pytest.raises(requests.HTTPError):
            fetch_post(1)
        assert a.stats()["failures"] == 2
    with LocalAPI(latency=0, failure_rate=0.0) as a:
        s = _session()
        assert s.get(a.url + "/flaky", params={"rate": 1}).status_code == 503
        assert s.get(a.url + "/flaky", params={"rate": 0}).status_code == 200


def test_failure_rate_is_roughly_honoured_and_seeded():
    def failures(seed):
        with LocalAPI(latency=0, failure_rate=0.3, seed=seed) as a:
            s = _session()
            return [s.get(a.url + "/posts/1").status_code == 503 for _ in range(200)]
    first = failures(7)
    assert 30 <= sum(first) <= 90
    assert failures(7) == first  # sequential requests with one seed fail the same way


def test_configure_and_reset_stats(api):
    api.configure(latency=0.01, jitter=0.0, failure_rate=0.5)
    assert (api.latency, api.failure_rate) == (0.01, 0.5)
    _session().get(api.url + "/posts/1")
    assert api.stats()["requests"] == 1
    api.reset_stats()
    assert api.stats() == {"requests": 0, "failures": 0, "in_flight": 0, "peak_in_flight": 0}
    with pytest.raises(ValueError, match="failure_rate"):
        api.configure(failure_rate=1.5)


def test_counts_peak_in_flight_under_real_concurrency():
    with LocalAPI(latency=0.2) as a:
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(fetch_post, range(1, 9)))
        st = a.stats()
    assert st["requests"] == 8 and st["in_flight"] == 0
    assert st["peak_in_flight"] >= 4
    with LocalAPI(latency=0.01) as a:
        for i in range(1, 4):
            fetch_post(i)
        assert a.stats()["peak_in_flight"] == 1


def test_200_concurrent_requests_all_served():
    """Correctness under load; its speed is measured in benchmarks/server_and_tracer.py."""
    with LocalAPI(latency=0.1) as a:
        barrier = threading.Barrier(200)

        def one(i):
            with _session() as s:
                barrier.wait(timeout=30)
                return s.get(f"{a.url}/posts/{i % 100 + 1}", timeout=30).status_code

        t0 = time.perf_counter()
        with ThreadPoolExecutor(200) as ex:
            codes = list(ex.map(one, range(200)))
        elapsed = time.perf_counter() - t0
        st = a.stats()
    assert codes == [200] * 200
    assert st["requests"] == 200
    assert st["peak_in_flight"] >= 100  # they really overlapped on the server
    assert elapsed < 10  # far from the 20 s a one-at-a-time server would need


def _threads_named(prefix):
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_clean_stop_leaves_no_thread_socket_or_port():
    before = set(threading.enumerate())
    a = LocalAPI(latency=0.5).start()
    port = a.port
    # one idle keep-alive connection and one request still sleeping out its latency
    s = requests.Session()
    s.trust_env = False
    s.get(a.url + "/posts/1", params={"latency": 0})
    pending = threading.Thread(target=lambda: _ignore(lambda: _session().get(a.url + "/posts/2", timeout=5)))
    pending.start()
    time.sleep(0.1)
    t0 = time.perf_counter()
    a.stop()
    assert time.perf_counter() - t0 < 3, "stop() must not wait out every request's latency"
    pending.join(5)
    s.close()
    time.sleep(0.05)
    assert not _threads_named("futureslab-api"), "server threads left running"
    assert set(threading.enumerate()) <= before | {threading.current_thread()}
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the port still accepts connections"
    assert ENV_URL not in os.environ
    a.stop()  # stopping twice is harmless


def _ignore(fn):
    try:
        fn()
    except Exception:
        pass


def test_rerunning_a_setup_cell_replaces_the_earlier_api():
    """`api = LocalAPI().start()` run three times leaves one server, not three."""
    first = LocalAPI(latency=0).start()
    first_port = first.port
    try:
        second = LocalAPI(latency=0).start()
        third = LocalAPI(latency=0).start()
        assert not first.running and not second.running and third.running
        assert len(_threads_named("futureslab-api")) == 1, _threads_named("futureslab-api")
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", first_port)) != 0, "the first server still listens"
        assert api_url() == third.url and fetch_post(1)["id"] == 1
        # a checker's own API (`with`) nests inside the standing one and leaves it running
        with LocalAPI(latency=0) as checker_api:
            assert third.running and api_url() == checker_api.url
        assert third.running and api_url() == third.url
        first.stop()  # stopping a replaced API is harmless and does not touch the current one
        assert api_url() == third.url
    finally:
        third.stop()
    assert ENV_URL not in os.environ
    assert not _threads_named("futureslab-api")


def test_start_twice_and_url_before_start_are_clear_errors():
    a = LocalAPI()
    with pytest.raises(RuntimeError, match="not running"):
        a.url
    with a:
        with pytest.raises(RuntimeError, match="already running"):
            a.start()
        assert "serving on port" in repr(a)
    assert "stopped" in repr(a)


@pytest.mark.parametrize("kwargs,name", [({"latency": -1}, "latency"), ({"latency": "fast"}, "latency"),
                                         ({"jitter": -0.1}, "jitter"), ({"failure_rate": 2}, "failure_rate"),
                                         ({"failure_rate": float("nan")}, "failure_rate"),
                                         ({"seed": "x"}, "seed")])
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        LocalAPI(**kwargs)


def test_api_url_resolution(monkeypatch):
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_REMOTE, raising=False)
    with pytest.raises(RuntimeError, match="LocalAPI"):
        api_url()
    assert api_url("http://example.invalid/") == "http://example.invalid"
    with pytest.raises(ValueError, match="base_url"):
        api_url("ftp://x")
    with LocalAPI() as a:
        assert api_url() == a.url
    assert ENV_URL not in os.environ


def test_remote_setting_aims_lessons_elsewhere(monkeypatch):
    monkeypatch.setenv(ENV_REMOTE, "http://remote.invalid:9/")
    a = LocalAPI()
    assert a.remote
    with a:
        assert a.url == "http://remote.invalid:9"
        assert api_url() == "http://remote.invalid:9"
        assert not _threads_named("futureslab-api")  # nothing local was started
    assert ENV_URL not in os.environ


def test_requests_to_loopback_ignore_a_configured_proxy(monkeypatch, api):
    # A proxy that refuses every connection: if requests used it, the fetch would fail.
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(requests.exceptions.ProxyError):
        requests.get(api.url + "/posts/1", timeout=5)  # plain requests does go through the proxy
    assert fetch_post(1)["id"] == 1  # the course's tasks do not


@pytest.mark.parametrize("url,expected", [("http://127.0.0.1:8000/x", True), ("http://127.9.9.9/", True),
                                          ("http://localhost:1", True), ("http://[::1]:80/", True),
                                          ("https://example.org/", False), ("http://10.0.0.1/", False),
                                          ("not a url", False)])
def test_is_loopback(url, expected):
    from futureslab._config import is_loopback

    assert is_loopback(url) is expected
