"""Checkers for the exercises of notebook 08 (asyncio and executors).

The learner's answers are coroutine functions. A notebook cell already runs inside the kernel's event
loop, so each checker runs the answer with ``asyncio.run`` in a helper thread that has no loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from concurrent.futures import ProcessPoolExecutor

from futureslab.checks import Wrong, exercise, expect, run_with_timeout
from futureslab.server import LocalAPI
from futureslab.tasks import count_primes, identity

__all__ = ["fetch_posts_to_thread", "count_primes_async", "fetch_posts_bounded"]


def _run(answer, *args, timeout=20.0, **kwargs):
    """Await ``answer(*args, **kwargs)`` in a fresh event loop on a helper thread."""
    if not inspect.iscoroutinefunction(answer):
        raise Wrong(f"{getattr(answer, '__name__', 'your answer')} should be a coroutine function: "
                    f"define it with `async def`.")
    return run_with_timeout(lambda: asyncio.run(answer(*args, **kwargs)), timeout=timeout)


@exercise("08.1", "Blocking calls from async code, overlapped",
          hint="`await asyncio.gather(*(asyncio.to_thread(fetch_post, i) for i in ids))`: each call runs "
               "on a thread, and gather waits for them all, keeping their order.",
          solution="futureslab.solutions.nb08:fetch_posts_to_thread")
def fetch_posts_to_thread(answer):
    ids = list(range(1, 9))
    with LocalAPI(latency=0.1) as api:
        t0 = time.perf_counter()
        posts = _run(answer, ids)
        elapsed = time.perf_counter() - t0
        peak = api.stats()["peak_in_flight"]
    expect(isinstance(posts, (list, tuple)), f"return the list of posts, got {type(posts).__name__}.")
    expect([p.get("id") if isinstance(p, dict) else p for p in posts] == ids,
           f"expected the posts {ids} in that order, got ids "
           f"{[p.get('id') if isinstance(p, dict) else p for p in posts]}.")
    expect(peak >= 4, f"the server saw at most {peak} request(s) at once: the calls ran one after "
                      f"another. Start them all, then await them together (asyncio.gather).")
    expect(elapsed < 0.6, f"8 requests of 0.1 s took {elapsed:.2f} s: they did not overlap enough.")
    return "the blocking calls ran on threads, overlapped, and the event loop stayed free."


class _CountingPool(ProcessPoolExecutor):
    """A process pool that counts what is submitted to it."""

    submitted = 0

    def submit(self, *args, **kwargs):
        self.submitted += 1
        return super().submit(*args, **kwargs)


async def _with_heartbeat(answer, limit, executor, interval=0.01):
    gaps = []
    stop = asyncio.Event()

    async def heartbeat():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(interval)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(5 * interval)
    try:
        result = await answer(limit, executor)
    finally:
        stop.set()
        await beat
    return result, max(gaps)


@exercise("08.2", "CPU work from async code without freezing the loop",
          hint="`loop = asyncio.get_running_loop()`, then `loop.run_in_executor(executor, count_primes_in, "
               "bounds)` for each range from prime_ranges(limit, 4), and `await asyncio.gather(...)`.",
          solution="futureslab.solutions.nb08:count_primes_async")
def count_primes_async(answer):
    if not inspect.iscoroutinefunction(answer):
        raise Wrong("count_primes_async should be a coroutine function: define it with `async def`.")
    limit = 200_000
    with _CountingPool(max_workers=2) as pool:
        pool.submit(identity, 0).result(timeout=30)  # start a worker before the heartbeat starts
        pool.submitted = 0
        total, worst_gap = run_with_timeout(
            lambda: asyncio.run(_with_heartbeat(answer, limit, pool)), timeout=60)
        used = pool.submitted
    expect(total == 17_984, f"there are 17984 primes below {limit}, you counted {total!r}.")
    expect(used > 0, "the executor you were given was never used: pass it to loop.run_in_executor.")
    expect(worst_gap < 0.15, f"the event loop froze for {worst_gap:.2f} s: the counting ran in the "
                             f"loop's own thread. Hand it to the executor and await the result.")
    return "the primes were counted in worker processes while the event loop kept ticking."


@exercise("08.3", "aiohttp with a bounded number of requests in flight",
          hint="One aiohttp.ClientSession(trust_env=False); an asyncio.Semaphore(limit); each request "
               "inside `async with semaphore:`; asyncio.gather over all ids.",
          solution="futureslab.solutions.nb08:fetch_posts_bounded")
def fetch_posts_bounded(answer):
    ids, limit = list(range(1, 21)), 5
    with LocalAPI(latency=0.1) as api:
        t0 = time.perf_counter()
        posts = _run(answer, api.url, ids, limit=limit)
        elapsed = time.perf_counter() - t0
        peak = api.stats()["peak_in_flight"]
    expect(isinstance(posts, (list, tuple)), f"return the list of posts, got {type(posts).__name__}.")
    got = [p.get("id") if isinstance(p, dict) else p for p in posts]
    expect(got == ids, f"expected the posts 1..20 in that order, got ids {got}.")
    expect(peak <= limit, f"the server saw {peak} requests at once, more than limit={limit}: guard each "
                          f"request with an asyncio.Semaphore(limit).")
    expect(peak >= limit - 1, f"the server saw at most {peak} request(s) at once: let up to {limit} "
                              f"overlap.")
    expect(elapsed < 1.2, f"20 requests, 5 at a time, should take about 0.4 s; they took {elapsed:.2f} s.")
    return f"20 posts fetched, never more than {limit} requests in flight."
