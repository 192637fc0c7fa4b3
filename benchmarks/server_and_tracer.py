"""Foundation figures: is the local API ever the bottleneck, and what does the tracer cost?

Run: .venv/bin/python benchmarks/server_and_tracer.py   (about 10 s)

1. 200 concurrent requests at 100 ms latency, against the 100 ms ideal, best and median of 5 rounds:
   a) the server's own time: the 200 requests come at once, on 200 connections, from an asyncio
      client (aiohttp) in another process, so the client's work does not compete for the server's GIL;
   b) as a lesson uses it: 200 threads in the same process, each with its own `requests` session
      (here the clients' own Python work shares the GIL with the server).
2. The tracer's overhead per task: a tiny task called directly vs through Tracer.wrap, in this
   process (records kept in memory) and in a process pool (records appended to the spool file).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import requests  # noqa: E402

from futureslab import tasks  # noqa: E402
from futureslab.server import LocalAPI  # noqa: E402
from futureslab.trace import Tracer  # noqa: E402

N_CLIENTS, LATENCY, ROUNDS = 200, 0.1, 5


def one_round(api: LocalAPI) -> tuple[float, int]:
    sessions = []
    for _ in range(N_CLIENTS):
        s = requests.Session()
        s.trust_env = False
        sessions.append(s)
    barrier = threading.Barrier(N_CLIENTS + 1)
    api.reset_stats()

    def client(i):
        barrier.wait()
        r = sessions[i].get(f"{api.url}/posts/{i % 100 + 1}", timeout=30)
        r.raise_for_status()
        return time.perf_counter()

    with ThreadPoolExecutor(N_CLIENTS) as ex:
        futs = [ex.submit(client, i) for i in range(N_CLIENTS)]
        time.sleep(0.5)  # let every client thread reach the barrier
        t0 = time.perf_counter()
        barrier.wait()
        ends = [f.result() for f in futs]
    for s in sessions:
        s.close()
    return max(ends) - t0, api.stats()["peak_in_flight"]


async def _burst(url: str, n: int, start_at: float) -> tuple[float, int]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        # open the n connections first, so the burst measures requests, not TCP handshakes
        await asyncio.gather(*(session.get(f"{url}/health?latency=0") for _ in range(n)))
        while time.time() < start_at:
            await asyncio.sleep(0.001)
        t0 = time.perf_counter()

        async def one(i):
            async with session.get(f"{url}/posts/{i % 100 + 1}") as r:
                await r.read()
                return r.status

        codes = await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0, codes.count(200)


def burst_from_another_process(url: str, n: int, start_at: float):
    return asyncio.run(_burst(url, n, start_at))


def _print(label, results):
    times = [t for t, _ in results]
    print(f"  {label}:")
    print(f"    best   {min(times) * 1000:7.1f} ms  = {min(times) / LATENCY:.2f} x the {LATENCY * 1000:.0f} ms ideal")
    print(f"    median {statistics.median(times) * 1000:7.1f} ms  = {statistics.median(times) / LATENCY:.2f} x ideal")
    print(f"    peak requests in flight on the server: {min(p for _, p in results)}-{max(p for _, p in results)} of {N_CLIENTS}")


def server_figures():
    print(f"Local API, {N_CLIENTS} concurrent requests at {LATENCY * 1000:.0f} ms latency, {ROUNDS} rounds:")
    with LocalAPI(latency=LATENCY) as api, ProcessPoolExecutor(1) as pool:
        alone = []
        for _ in range(ROUNDS):
            api.reset_stats()
            f = pool.submit(burst_from_another_process, api.url, N_CLIENTS, time.time() + 0.3)
            elapsed, ok = f.result()
            assert ok == N_CLIENTS, f"only {ok} of {N_CLIENTS} requests succeeded"
            alone.append((elapsed, api.stats()["peak_in_flight"]))
        _print("a) the server's own time (asyncio client in another process)", alone)
        _print("b) as a lesson uses it (200 threads with requests, same process)",
               [one_round(api) for _ in range(ROUNDS)])


def per_call(fn, n):
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def tracer_figures():
    n = 20_000
    plain = per_call(tasks.double, n)
    with Tracer() as tr:
        traced = per_call(tr.wrap(tasks.double), n)
    print(f"Tracer overhead per task (best of 5 x {n} calls):")
    print(f"  in this process (thread or main): {(traced - plain) * 1e6:6.2f} us per task")

    # In a worker process the record goes to the spool file: time it there.
    with ProcessPoolExecutor(1) as pool:
        pool.submit(tasks.double, 1).result()
        direct = min(pool.submit(_loop, None, 2000).result() for _ in range(3))
        with Tracer() as tr:
            via = min(pool.submit(_loop, tr.wrap(tasks.double), 2000).result() for _ in range(3))
    print(f"  in a worker process (spool file): {(via - direct) * 1e6:6.2f} us per task")
    print("  (for scale: a process pool's own cost per task is ~66-96 us on this kind of machine)")


def _loop(fn, n):
    fn = fn or tasks.double
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n


if __name__ == "__main__":
    server_figures()
    tracer_figures()
