"""Checkers for the exercises of notebook 08 (asyncio and executors).

The learner's answers are coroutine functions. A notebook cell already runs inside the kernel's event
loop, so each checker awaits the answer in a fresh event loop on a helper thread
(:func:`~futureslab.checks.run_coroutine_with_timeout`), with a *heartbeat* beside it: a coroutine
that wakes every 10 ms, so the longest gap between its ticks shows whether the answer blocked the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from concurrent.futures import ProcessPoolExecutor

from futureslab.checks import (Wrong, describe, exercise, expect, owned_pool,
                               run_coroutine_with_timeout)
from futureslab.server import LocalAPI
from futureslab.tasks import identity

__all__ = ["fetch_posts_to_thread", "count_primes_async", "fetch_posts_bounded"]


def _require_coroutine_function(answer, name: str) -> None:
    if not inspect.iscoroutinefunction(answer):
        if callable(answer):
            raise Wrong(f"{name} should be a coroutine function: define it with `async def`.")
        raise Wrong(f"expected an `async def` function, got {describe(answer)}.")


async def _with_heartbeat(answer, *args, interval=0.01, **kwargs):
    """Await ``answer(*args, **kwargs)`` while a heartbeat ticks; return (result, longest gap)."""
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
        result = await answer(*args, **kwargs)
    finally:
        stop.set()
        await beat  # its last tick records the gap that ended with the answer
    return result, max(gaps)


def _ids_of(posts):
    return [p.get("id") if isinstance(p, dict) else p for p in posts]


@exercise("08.1", "Blocking calls from async code, overlapped",
          hint="Which asyncio function runs a blocking function on a thread and gives you something to "
               "await? Start one per id, then await them all together, keeping their order.",
          solution="futureslab.solutions.nb08:fetch_posts_to_thread")
def fetch_posts_to_thread(answer):
    _require_coroutine_function(answer, "fetch_posts_to_thread")
    ids, latency = list(range(1, 9)), 0.2
    with LocalAPI(latency=latency) as api:
        t0 = time.perf_counter()
        posts, worst_gap = run_coroutine_with_timeout(_with_heartbeat, answer, ids, timeout=20)
        elapsed = time.perf_counter() - t0
        stats = api.stats()
    expect(isinstance(posts, (list, tuple)), f"return the list of posts, got {describe(posts)}.")
    expect(stats["requests"] > 0, f"no request reached the server: your coroutine returned "
                                  f"{describe(posts)} without calling fetch_post.")
    expect(_ids_of(posts) == ids,
           f"expected the posts {ids} in that order, got ids {_ids_of(posts)}.")
    expect(worst_gap < latency / 2,
           f"the event loop froze for {worst_gap:.2f} s while your coroutine ran: a blocking call "
           f"(fetch_post itself, or waiting for a pool's results with list(pool.map(...)) or "
           f".result()) ran in the loop's own thread. Hand each call to a thread and `await` it.")
    expect(stats["peak_in_flight"] >= 4,
           f"the server saw at most {stats['peak_in_flight']} request(s) at once: the calls ran one "
           f"after another. Start them all, then await them together.")
    expect(elapsed < 1.0, f"8 requests of {latency} s took {elapsed:.2f} s: they did not overlap enough.")
    return (f"the blocking calls ran on threads, up to {stats['peak_in_flight']} at once, and the event "
            f"loop stayed free (its longest pause was {worst_gap * 1000:.0f} ms).")


class _CountingPool(ProcessPoolExecutor):
    """A process pool that counts what is submitted to it."""

    submitted = 0

    def submit(self, *args, **kwargs):
        self.submitted += 1
        return super().submit(*args, **kwargs)


@exercise("08.2", "CPU work from async code without freezing the loop",
          hint="The running loop has a method that runs a function on a given executor and returns "
               "something awaitable. One call per range from prime_ranges, then await them together.",
          solution="futureslab.solutions.nb08:count_primes_async")
def count_primes_async(answer):
    _require_coroutine_function(answer, "count_primes_async")
    limit = 200_000
    with owned_pool(_CountingPool(max_workers=2)) as pool:
        pool.submit(identity, 0).result(timeout=30)  # start a worker before the heartbeat starts
        pool.submitted = 0
        total, worst_gap = run_coroutine_with_timeout(_with_heartbeat, answer, limit, pool, timeout=20)
        used = pool.submitted
    expect(isinstance(total, int) and not isinstance(total, bool),
           f"count_primes_async should return the number of primes, got {describe(total)}.")
    expect(used > 0, f"the executor you were given was never used (your coroutine returned "
                     f"{describe(total)}): pass it to loop.run_in_executor.")
    expect(total == 17_984, f"there are 17984 primes below {limit}, you counted {total!r}.")
    expect(worst_gap < 0.15, f"the event loop froze for {worst_gap:.2f} s: the counting (or the "
                             f"waiting for it) ran in the loop's own thread. Hand it to the executor "
                             f"and await the result.")
    return (f"the primes were counted in worker processes while the event loop kept ticking (its "
            f"longest pause was {worst_gap * 1000:.0f} ms).")


@exercise("08.3", "aiohttp with a bounded number of requests in flight",
          hint="One aiohttp.ClientSession for all requests. Which asyncio primitive lets at most "
               "`limit` coroutines into a block at once?",
          solution="futureslab.solutions.nb08:fetch_posts_bounded")
def fetch_posts_bounded(answer):
    _require_coroutine_function(answer, "fetch_posts_bounded")
    ids, limit = list(range(1, 21)), 5
    with LocalAPI(latency=0.1) as api:
        t0 = time.perf_counter()
        posts = run_coroutine_with_timeout(answer, api.url, ids, limit=limit, timeout=20)
        elapsed = time.perf_counter() - t0
        stats = api.stats()
    expect(isinstance(posts, (list, tuple)), f"return the list of posts, got {describe(posts)}.")
    expect(stats["requests"] > 0, f"no request reached the server: your coroutine returned "
                                  f"{describe(posts)} without fetching anything.")
    got = _ids_of(posts)
    expect(got == ids, f"expected the posts 1..20 in that order, got ids {got}.")
    peak = stats["peak_in_flight"]
    expect(peak <= limit, f"the server saw {peak} requests at once, more than limit={limit}: guard each "
                          f"request with an asyncio.Semaphore(limit).")
    expect(peak >= limit - 1, f"the server saw at most {peak} request(s) at once: let up to {limit} "
                              f"overlap.")
    return (f"20 posts fetched in {elapsed:.2f} s, {peak} requests in flight at the busiest moment and "
            f"never more than {limit}.")
