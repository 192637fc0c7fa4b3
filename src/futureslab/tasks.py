"""The work the lessons run: plain module-level functions with plain arguments.

Every function here can be sent to a ``ProcessPoolExecutor`` under the fork, spawn and forkserver
start methods, because a worker process finds it by importing this module. (A function defined in a
notebook cell lives in ``__main__`` and cannot be found that way under spawn or forkserver; a lambda
cannot be pickled at all.) The module imports only the standard library at the top, so a fresh
worker process starts fast; ``requests`` is imported by the I/O tasks when first used.

Groups:

* CPU-bound: :func:`is_prime`, :func:`count_primes`, :func:`count_primes_in`, :func:`prime_ranges`,
  :func:`spin`, :func:`burn`, :func:`sha256_rounds`
* I/O-bound: :func:`get_json`, :func:`fetch_post`, :func:`fetch_user`, :func:`fetch_user_posts`,
  :func:`fetch_comments`, :func:`fetch_url_size`, :func:`sleep_for`
* tiny: :func:`double`, :func:`square`, :func:`add`, :func:`identity`, :func:`shout`
* known time: :func:`sleep_for`, :func:`spin`, :func:`sleep_then_return`
* failing on purpose: :func:`fail`, :func:`fail_on`, :func:`unlucky`, :func:`crash_worker`, :func:`crash_on`
* plumbing: :func:`whoami`, :func:`make_payload`, :func:`payload_size`
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time

from ._validate import check_int, check_number
from ._config import api_url, is_loopback

# --------------------------------------------------------------------------------------- CPU-bound


def is_prime(n: int) -> bool:
    """True if ``n`` is a prime number (trial division: deliberately pure-Python CPU work)."""
    n = check_int("n", n)
    if n < 2:
        return False
    if n < 4:
        return True
    if n % 2 == 0:
        return False
    for d in range(3, math.isqrt(n) + 1, 2):
        if n % d == 0:
            return False
    return True


def count_primes(start: int, end: int) -> int:
    """How many primes lie in ``range(start, end)``."""
    start, end = check_int("start", start, low=0), check_int("end", end, low=0)
    if end < start:
        raise ValueError(f"end must be >= start, got start={start}, end={end}")
    return sum(1 for n in range(start, end) if is_prime(n))


def count_primes_in(bounds: tuple[int, int]) -> int:
    """:func:`count_primes` taking ``(start, end)`` as one argument, for ``executor.map``."""
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(f"bounds must be a (start, end) pair, got {bounds!r}")
    return count_primes(*bounds)


def prime_ranges(limit: int, chunks: int, start: int = 0) -> list[tuple[int, int]]:
    """Split ``range(start, limit)`` into ``chunks`` contiguous ``(start, end)`` pairs."""
    limit = check_int("limit", limit, low=0)
    chunks = check_int("chunks", chunks, low=1)
    start = check_int("start", start, low=0)
    if limit < start:
        raise ValueError(f"limit must be >= start, got start={start}, limit={limit}")
    edges = [start + (limit - start) * i // chunks for i in range(chunks + 1)]
    return list(zip(edges[:-1], edges[1:]))


def spin(seconds: float) -> float:
    """Loop in pure Python until ``seconds`` of wall-clock time have passed; returns the time spun.

    This measures *time*, not *work*: it stops when the clock says so, however much computing it got
    done. Threads that share the GIL each still stop after ``seconds`` (each having done only part of
    the loops), so timing ``spin`` on threads cannot show that the GIL serialises CPU work; to compare
    how fast executors get through CPU work, give them a fixed amount of it (:func:`burn`).
    """
    seconds = check_number("seconds", seconds, low=0, high=600)
    t0 = time.perf_counter()
    x = 0
    while time.perf_counter() - t0 < seconds:
        for i in range(1000):
            x += i * i
    return time.perf_counter() - t0


def burn(loops: int) -> int:
    """A fixed amount of pure-Python work (``loops`` additions, holding the GIL); returns ``loops``.

    Unlike :func:`spin`, which runs for a set *time*, this is a set amount of *work*: on a busy core it
    takes longer. :func:`futureslab.timing.free_cores` uses it to measure how much CPU a pool can get.
    """
    loops = check_int("loops", loops, low=0)
    x = 0
    for i in range(loops):
        x += i
    return loops


def sha256_rounds(size_mb: float = 8.0, rounds: int = 4) -> str:
    """Hash ``size_mb`` MB of zeros ``rounds`` times; hashlib releases the GIL on large buffers."""
    size_mb = check_number("size_mb", size_mb, low=0, high=1024)
    rounds = check_int("rounds", rounds, low=1)
    buf = bytes(int(size_mb * 1024 * 1024))
    digest = b""
    for _ in range(rounds):
        digest = hashlib.sha256(buf + digest).digest()
    return digest.hex()


# ---------------------------------------------------------------------------------------- I/O-bound


def get_json(path: str, base_url: str | None = None, timeout: float = 10.0):
    """GET ``base_url + path`` with ``requests`` and return the decoded JSON.

    ``base_url`` defaults to the running :class:`~futureslab.server.LocalAPI`. Requests to a loopback
    address never go through a proxy from the environment (``HTTP_PROXY`` and friends). An HTTP error
    status raises ``requests.HTTPError``; a slow answer raises ``requests.Timeout``.
    """
    import requests  # imported here so CPU-only worker processes start fast

    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path must be a string starting with '/', got {path!r}")
    timeout = check_number("timeout", timeout, low=0.001)
    url = api_url(base_url) + path
    with requests.Session() as session:
        session.trust_env = not is_loopback(url)  # no proxy, no .netrc for our own server
        response = session.get(url, timeout=timeout)
    response.raise_for_status()
    return response.json()


def fetch_post(post_id: int, base_url: str | None = None, timeout: float = 10.0) -> dict:
    """One post, ``GET /posts/<post_id>``."""
    return get_json(f"/posts/{check_int('post_id', post_id, low=1)}", base_url, timeout)


def fetch_user(user_id: int, base_url: str | None = None, timeout: float = 10.0) -> dict:
    """One user, ``GET /users/<user_id>``."""
    return get_json(f"/users/{check_int('user_id', user_id, low=1)}", base_url, timeout)


def fetch_user_posts(user_id: int, base_url: str | None = None, timeout: float = 10.0) -> list:
    """A user's posts, ``GET /users/<user_id>/posts``."""
    return get_json(f"/users/{check_int('user_id', user_id, low=1)}/posts", base_url, timeout)


def fetch_comments(post_id: int, base_url: str | None = None, timeout: float = 10.0) -> list:
    """A post's comments, ``GET /posts/<post_id>/comments``."""
    return get_json(f"/posts/{check_int('post_id', post_id, low=1)}/comments", base_url, timeout)


def fetch_url_size(url: str, timeout: float = 10.0) -> int:
    """GET an absolute URL and return the size of its body in bytes."""
    import requests

    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"url must be an http(s) URL string, got {url!r}")
    with requests.Session() as session:
        session.trust_env = not is_loopback(url)
        response = session.get(url, timeout=check_number("timeout", timeout, low=0.001))
    response.raise_for_status()
    return len(response.content)


def sleep_for(seconds: float) -> float:
    """Wait ``seconds`` without using the CPU (like waiting on a network); returns ``seconds``."""
    seconds = check_number("seconds", seconds, low=0, high=600)
    time.sleep(seconds)
    return seconds


def sleep_then_return(value, seconds: float):
    """Wait ``seconds``, then return ``value`` unchanged."""
    sleep_for(seconds)
    return value


# -------------------------------------------------------------------------------------------- tiny


def double(n):
    """``n * 2``: a task far too small to be worth a pool."""
    return n * 2


def square(n):
    """``n * n``."""
    return n * n


def add(a, b):
    """``a + b``."""
    return a + b


def identity(x):
    """Return ``x`` unchanged (useful to measure what sending data to a worker costs)."""
    return x


def shout(text: str) -> str:
    """``text.upper()``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {text!r}")
    return text.upper()


# ------------------------------------------------------------------------------ failing on purpose


def fail(message: str = "this task fails on purpose"):
    """Always raise ``ValueError(message)``."""
    raise ValueError(message)


def fail_on(n: int, bad: int = 3):
    """Return ``n * 2``, except raise ``ValueError`` when ``n == bad``."""
    if n == bad:
        raise ValueError(f"{n} is unlucky")
    return n * 2


def unlucky(n: int, unit: float = 0.05):
    """Sleep ``n * unit`` seconds, then return ``n * 2``, or raise ``ValueError`` when ``n == 3``."""
    n = check_int("n", n, low=0)
    sleep_for(n * check_number("unit", unit, low=0, high=10))
    return fail_on(n, bad=3)


def crash_worker(code: int = 1):
    """End the worker process at once (``os._exit``), as a segfault or the OOM killer would.

    Only ever run this in a ``ProcessPoolExecutor``: the pool becomes broken
    (``BrokenProcessPool``). Called in the main process it refuses, since it would kill your kernel.
    """
    import multiprocessing

    if multiprocessing.parent_process() is None:
        raise RuntimeError("crash_worker() must run in a worker process; it would end this one")
    os._exit(check_int("code", code))


def crash_on(n: int, bad: int = 3, seconds: float = 0.05):
    """Sleep ``seconds``, then return ``n * 2``; but when ``n == bad``, end the worker process at
    once (see :func:`crash_worker`): one poisonous input among good ones."""
    n = check_int("n", n)
    seconds = check_number("seconds", seconds, low=0, high=60)
    if n == check_int("bad", bad):
        crash_worker()
    sleep_for(seconds)
    return n * 2


# ---------------------------------------------------------------------------------------- plumbing


def whoami(_=None) -> tuple[int, str]:
    """``(process id, thread name)`` of whoever runs this task. Ignores its argument (for map)."""
    return os.getpid(), threading.current_thread().name


def whoami_after(seconds: float = 0.02) -> tuple[int, str]:
    """Wait ``seconds``, then return :func:`whoami`: mapped over a pool until every worker has
    answered, it tells when all of a pool's (spawned) workers have booted."""
    sleep_for(seconds)
    return whoami()


def make_payload(size_mb: float) -> bytes:
    """A bytes object of ``size_mb`` megabytes, to measure what sending data to a worker costs."""
    return bytes(int(check_number("size_mb", size_mb, low=0, high=1024) * 1024 * 1024))


def payload_size(payload) -> int:
    """``len(payload)``: a task whose argument is big and whose result is small."""
    return len(payload)
