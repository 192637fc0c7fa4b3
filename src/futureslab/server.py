"""An embedded JSON API on 127.0.0.1, so the I/O lessons make real HTTP calls with no internet.

The API is shaped like a public JSON placeholder API::

    GET /posts            GET /posts/<id>          GET /posts/<id>/comments
    GET /users            GET /users/<id>          GET /users/<id>/posts
    GET /comments         GET /comments/<id>       GET /posts?userId=<id>   GET /comments?postId=<id>
    GET /slow?seconds=S   (answers after S seconds)
    GET /flaky?rate=R     (fails with HTTP 503 with probability R)
    GET /health

Every request waits ``latency`` seconds (plus up to ``jitter`` more) before it is answered, and fails
with HTTP 503 with probability ``failure_rate``. Both can be overridden per request with the query
parameters ``latency=`` and ``fail=``. The server counts requests and the peak number in flight, so a
lesson (or an exercise checker) can *see* whether calls really overlapped.

Use it as a context manager::

    with LocalAPI(latency=0.1) as api:
        requests.get(api.url + "/posts/1").json()
        api.stats()["peak_in_flight"]

While it runs, :func:`api_url` (and every task in :mod:`futureslab.tasks`) points at it, in this
process and in any worker process started afterwards, under every start method.

A notebook's set-up cell starts one with ``api = LocalAPI(...).start()`` and its last cell stops it.
Re-running the set-up cell must not leave the first server running: ``start()`` (called directly,
not through ``with``) first stops the API an earlier ``start()`` in this process left running, so
there is at most one such "standing" API at a time. APIs opened with ``with`` (the checkers' own)
nest inside it and are never stopped by it.

Set the environment variable ``FUTURESLAB_REMOTE_API`` to a base URL (for example a public JSON
placeholder API) to aim the lessons at a real remote API instead: ``LocalAPI`` then starts nothing and
hands out that URL; latency, failures and counters are then whatever the remote API gives.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import threading
from urllib.parse import parse_qs, urlsplit

from . import data
from ._config import ENV_REMOTE, ENV_URL, api_url
from ._validate import check_number, check_probability

__all__ = ["LocalAPI", "api_url", "ENV_URL", "ENV_REMOTE"]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error", 503: "Service Unavailable"}


class _Loop:
    """An asyncio HTTP/1.1 server running in one background thread.

    One event loop serves every connection (no thread per connection), so hundreds of requests
    sleeping out their latency at once cost almost nothing, and the listen backlog is large, so a
    burst of clients is not refused or delayed. It speaks just enough HTTP/1.1 for GET with keep-alive.
    """

    def __init__(self, api: "LocalAPI"):
        self.api = api
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port: int | None = None
        self.error: BaseException | None = None
        self._closing: asyncio.Event | None = None
        self._conns: set[asyncio.Task] = set()
        self.thread = threading.Thread(target=self._run, name="futureslab-api", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(30)
        if self.error is not None:
            raise RuntimeError(f"the local API could not start: {self.error}") from self.error
        if self.port is None:
            raise RuntimeError("the local API did not start within 30 s")

    def stop(self, timeout: float) -> None:
        if self.thread.is_alive() and self._closing is not None:
            self.loop.call_soon_threadsafe(self._closing.set)
        self.thread.join(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start() if it happens before ready
            self.error = exc
        finally:
            self.ready.set()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def _main(self) -> None:
        self._closing = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024,
                                            reuse_address=True)
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        try:
            await self._closing.wait()
        finally:
            server.close()
            for task in list(self._conns):
                task.cancel()
            if self._conns:
                await asyncio.wait(list(self._conns), timeout=5)
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._conns.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=60)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                        ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split()
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                if len(parts) != 3:
                    status, body, keep = 400, {"error": "malformed request line"}, False
                else:
                    method, target, version = parts
                    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                    if method != "GET":
                        status, body = 405, {"error": f"only GET is served, got {method}"}
                    else:
                        status, body = await self.api._handle(target)
                payload = json.dumps(body).encode()
                writer.write(
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                    f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode() + payload)
                await writer.drain()
                if not keep:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._conns.discard(task)
            writer.close()


def _refresh_forkserver() -> None:
    """Make worker processes see the current API URL under the forkserver start method.

    Workers learn the URL from the environment. A spawn or fork worker copies the environment of the
    process that creates the pool, but a forkserver worker copies the forkserver's, frozen when the
    forkserver first started. So when the URL changes, stop a running forkserver: the next process
    pool starts a fresh one with the current environment (workers already running are unaffected).
    """
    import sys

    forkserver = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None) is not None:
        stop = getattr(server, "_stop", None)  # present on 3.8-3.14
        if stop is not None:
            try:
                stop()
            except OSError:
                pass


class LocalAPI:
    """A JSON API served on ``127.0.0.1`` at a port the OS chooses.

    Parameters
    ----------
    latency:
        Seconds every request waits before it is answered (default 0.05).
    jitter:
        Up to this many extra seconds, drawn at random per request (default 0).
    failure_rate:
        Probability in [0, 1] that a request fails with HTTP 503 (default 0).
    seed:
        Seed for jitter and failures, so a lesson's "random" failures repeat (default 0).
    """

    def __init__(self, latency: float = 0.05, jitter: float = 0.0, failure_rate: float = 0.0,
                 seed: int | None = 0):
        self.latency = check_number("latency", latency, low=0, high=60)
        self.jitter = check_number("jitter", jitter, low=0, high=60)
        self.failure_rate = check_probability("failure_rate", failure_rate)
        if seed is not None and not isinstance(seed, int):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._server: _Loop | None = None
        self._old_env: str | None = None
        self._remote = os.environ.get(ENV_REMOTE) or None
        self.reset_stats()

    # -- life cycle -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def remote(self) -> bool:
        """True when FUTURESLAB_REMOTE_API aims the lessons at a real API instead."""
        return self._remote is not None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:45123`` (no trailing slash)."""
        if self._remote:
            return self._remote.rstrip("/")
        if self._server is None:
            raise RuntimeError("the LocalAPI is not running: call start() or use `with LocalAPI() as api:`")
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the LocalAPI is not running")
        return self._server.port

    _standing: "LocalAPI | None" = None  # the API the last direct start() left running
    _standing_lock = threading.Lock()

    def start(self) -> "LocalAPI":
        """Start serving in a background thread; returns self. Starting twice is an error.

        The API that an earlier direct ``start()`` in this process left running is stopped first
        (a re-run set-up cell replaces its server instead of adding one); ``with LocalAPI() as api``
        does not do that, so a checker's own API can run inside a notebook's.
        """
        if self._server is not None:
            raise RuntimeError("this LocalAPI is already running")
        with LocalAPI._standing_lock:
            earlier, LocalAPI._standing = LocalAPI._standing, None
        if earlier is not None and earlier is not self:
            earlier.stop()
        self._start()
        with LocalAPI._standing_lock:
            LocalAPI._standing = self
        return self

    def _start(self) -> "LocalAPI":
        if self._server is not None:
            raise RuntimeError("this LocalAPI is already running")
        self._old_env = os.environ.get(ENV_URL)
        if self._remote:
            os.environ[ENV_URL] = self.url
            self._server = None
            _refresh_forkserver()
            return self
        server = _Loop(self)
        server.start()
        self._server = server
        os.environ[ENV_URL] = self.url
        _refresh_forkserver()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and every connection, and join every thread it started."""
        with LocalAPI._standing_lock:
            if LocalAPI._standing is self:
                LocalAPI._standing = None
        if self._remote:
            self._restore_env()
            return
        server, self._server = self._server, None
        if server is None:
            return
        server.stop(timeout)  # closes the socket, ends every connection (sleeping ones too)
        self._restore_env()

    def _restore_env(self):
        if self._old_env is None:
            os.environ.pop(ENV_URL, None)
        else:
            os.environ[ENV_URL] = self._old_env
        _refresh_forkserver()

    def __enter__(self) -> "LocalAPI":
        return self._start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        if self._remote:
            return f"<LocalAPI remote {self.url}>"
        state = f"serving on port {self.port}" if self._server else "stopped"
        return (f"<LocalAPI {state}, latency={self.latency}s, jitter={self.jitter}s, "
                f"failure_rate={self.failure_rate}>")

    # -- settings and counters --------------------------------------------------------------------
    def configure(self, *, latency: float | None = None, jitter: float | None = None,
                  failure_rate: float | None = None) -> "LocalAPI":
        """Change latency, jitter or failure rate while running; returns self."""
        if latency is not None:
            self.latency = check_number("latency", latency, low=0, high=60)
        if jitter is not None:
            self.jitter = check_number("jitter", jitter, low=0, high=60)
        if failure_rate is not None:
            self.failure_rate = check_probability("failure_rate", failure_rate)
        return self

    def reset_stats(self) -> None:
        """Zero the request counters."""
        with getattr(self, "_stats_lock", threading.Lock()):
            self._requests = 0
            self._failures = 0
            self._in_flight = 0
            self._peak = 0

    def stats(self) -> dict:
        """``{"requests", "failures", "in_flight", "peak_in_flight"}`` since the last reset."""
        with self._stats_lock:
            return {"requests": self._requests, "failures": self._failures,
                    "in_flight": self._in_flight, "peak_in_flight": self._peak}

    def _enter(self):
        with self._stats_lock:
            self._requests += 1
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def _leave(self):
        with self._stats_lock:
            self._in_flight -= 1

    # -- answering --------------------------------------------------------------------------------
    async def _handle(self, target: str) -> tuple[int, object]:
        self._enter()
        try:
            return await self._answer(target)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let a bug in the API kill the connection silently
            return 500, {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            self._leave()

    async def _answer(self, raw_path: str) -> tuple[int, object]:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        segs = [s for s in parts.path.split("/") if s]

        if segs == ["health"]:
            return 200, {"ok": True}

        try:
            latency = float(query["latency"]) if "latency" in query else self.latency
            fail = float(query["fail"]) if "fail" in query else self.failure_rate
            if segs == ["slow"]:
                latency = float(query.get("seconds", 1.0))
            if segs == ["flaky"]:
                fail = float(query.get("rate", 0.5))
        except ValueError:
            return 400, {"error": "latency, fail, seconds and rate must be numbers"}
        if not (0 <= latency <= 60) or not (0 <= fail <= 1):
            return 400, {"error": "need 0 <= latency/seconds <= 60 and 0 <= fail/rate <= 1"}

        with self._rng_lock:
            extra = self._rng.uniform(0, self.jitter) if self.jitter else 0.0
            failed = fail > 0 and self._rng.random() < fail
        if latency + extra > 0:
            await asyncio.sleep(latency + extra)
        if failed:
            with self._stats_lock:
                self._failures += 1
            return 503, {"error": "service unavailable (simulated failure)"}
        if segs in (["slow"], ["flaky"]):
            return 200, {"ok": True, "waited": round(latency + extra, 3)}
        return data.route(segs, query)
