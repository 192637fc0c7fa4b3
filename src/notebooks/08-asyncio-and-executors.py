# Source of notebooks/08-asyncio-and-executors.ipynb (build with: python src/notebooks/build.py 08)

# %% [markdown]
# # 08 · asyncio and executors
#
# **Why this matters.** `asyncio` overlaps waiting on a single thread: an event loop switches between
# coroutines whenever one `await`s. That works only while every coroutine gets out of the way quickly. One
# blocking call (a `requests.get`, a `time.sleep`, a big computation) freezes every other coroutine until
# it returns. Executors are the bridge: they run the blocking call on a thread or a process and hand the
# loop something it can `await`.
#
# **In this notebook you will**
# - see a blocking call freeze the event loop, measured by a heartbeat;
# - use the three bridges: `loop.run_in_executor`, `asyncio.to_thread` and `asyncio.wrap_future`;
# - see what the bridges do not do: a timeout does not stop the thread, `run_in_executor` does not
#   carry context variables, and `asyncio.run` waits for executor jobs you never awaited;
# - run the same I/O job on threads and on asyncio (with the `aiohttp` client), side by side;
# - learn when each one fits.
#
# **Time:** about 60 minutes. **Prerequisites:** notebooks 01–02; `async def` and `await` at the level of
# the Python tutorial.
#
# **Previous:** [07 · Tuning and scaling](07-tuning-and-scaling.ipynb) ·
# **Next:** [09 · Newer Pythons and clusters](09-newer-pythons-and-clusters.ipynb)

# %% [markdown]
# ## Set-up
#
# A Jupyter kernel already runs an event loop, so in a notebook you write `await something()` straight
# in a cell. In a script you would wrap the top-level coroutine in `asyncio.run(main())` instead
# (`asyncio.run` refuses to start inside a running loop, which is why you will not see it here).

# %%
import asyncio
import contextvars
import functools
import inspect
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import aiohttp
import matplotlib.pyplot as plt

import futureslab
from futureslab import checks
from futureslab.checks import nb08 as check
from futureslab.claims import Room, claim
from futureslab.cores import LoadMeter
from futureslab.plots import runtime_bars
from futureslab.server import LocalAPI
from futureslab.tasks import count_primes, count_primes_in, fetch_post, get_json, prime_ranges, sleep_for
from futureslab.timing import fmt_seconds, fmt_speedup, speedup, stopwatch

futureslab.setup()
api = LocalAPI(latency=0.1).start()
# asyncio.to_thread and run_in_executor(None, ...) use the loop's default executor. We give the kernel's
# loop one of our own, so the last cell can stop its threads.
default_pool = ThreadPoolExecutor(thread_name_prefix="asyncio-default")
asyncio.get_running_loop().set_default_executor(default_pool)

# %% [markdown]
# ## 1. A blocking call freezes the loop
#
# **The idea.** A *heartbeat* coroutine wakes up every 20 ms and notes how long it really slept. While
# the loop is free, every gap is about 20 ms. If some coroutine blocks the thread, the heartbeat cannot
# run, and the longest gap shows for how long the loop was frozen.

# %%
async def with_heartbeat(work, interval=0.02):
    """Await ``work`` while a heartbeat ticks; return (work's result, the longest gap between ticks)."""
    gaps, stop = [], asyncio.Event()

    async def heartbeat():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(interval)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(3 * interval)  # let it tick a few times first
    try:
        result = await work
    finally:
        stop.set()
        await beat  # its last tick records the gap that ended with the work
    return result, max(gaps)

# %% [markdown]
# **The smallest example.** `get_json("/slow?seconds=0.3")` is an ordinary blocking HTTP call (it uses
# `requests`) that takes at least 0.3 s. Called straight inside a coroutine, it holds the thread; handed
# to `asyncio.to_thread`, it runs on a worker thread and the coroutine awaits it.

# %%
async def blocking_inside():
    return get_json("/slow?seconds=0.3")  # blocks the event loop's own thread


async def on_a_thread():
    return await asyncio.to_thread(get_json, "/slow?seconds=0.3")


with LoadMeter() as load:
    _, frozen_gap = await with_heartbeat(blocking_inside())
    _, free_gap = await with_heartbeat(on_a_thread())
print(f"longest heartbeat gap, blocking call inside the coroutine: {fmt_seconds(frozen_gap)}")
print(f"longest heartbeat gap, same call via asyncio.to_thread:    {fmt_seconds(free_gap)}")

# %%
claim(frozen_gap >= 0.25, "the blocking call froze the event loop for about 0.3 s", gap=frozen_gap)
for attempt in range(2):  # a busy machine can delay one tick: measure again before concluding
    if free_gap < 0.15:
        break
    with load:
        _, free_gap = await with_heartbeat(on_a_thread())
claim(free_gap < 0.15, "with asyncio.to_thread the heartbeat kept ticking",
      needs_cores=1, room=Room.now(load), gap=free_gap)

# %% [markdown]
# **What it means.** Nothing in the blocking version looks wrong: no error, the right answer, just every
# other coroutine (other requests, a web server's other clients, a UI) stalled for the duration. Any
# function that does not `await` is blocking: `requests`, `time.sleep`, most database drivers, file
# reads, and every CPU-heavy computation.
#
# ## 2. Three bridges between the event loop and an executor
#
# | call | runs `fn` on | gives you | since |
# |---|---|---|---|
# | `await loop.run_in_executor(executor, fn, *args)` | `executor`, or the loop's default thread pool when `None` | an `asyncio.Future` | 3.4 |
# | `await asyncio.to_thread(fn, *args, **kwargs)` | the loop's default thread pool, with the caller's context variables | a coroutine | 3.9 |
# | `await asyncio.wrap_future(cf_future)` | wherever `cf_future` already runs (e.g. `pool.submit(...)`) | an `asyncio.Future` | 3.4 |
#
# `run_in_executor` passes positional arguments only: for keywords use `functools.partial`. The loop's
# default executor is a `ThreadPoolExecutor` with the default size, `min(32, cpu + 4)` threads (notebook
# 07), so more `to_thread` calls than that wait their turn; give `run_in_executor` your own pool to
# choose the size.
#
# **Threads for blocking I/O.** Eight blocking `fetch_post` calls, overlapped with `run_in_executor` on
# our own pool of 8 threads, and gathered in order:

# %%
async def fetch_eight():
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [loop.run_in_executor(pool, functools.partial(fetch_post, i, timeout=5)) for i in range(1, 9)]
        return await asyncio.gather(*jobs)


api.reset_stats()
with stopwatch() as sw:
    posts = await fetch_eight()
print([p["id"] for p in posts], "in", fmt_seconds(sw))
claim(api.stats()["peak_in_flight"] >= 4, "the eight blocking calls overlapped on the pool's threads",
      peak=api.stats()["peak_in_flight"])

# %% [markdown]
# **Processes for CPU work.** A thread does not help a pure-Python computation (the GIL, notebook 01),
# and it would still slow the loop down. A process pool runs it elsewhere. Here the pool's own
# `submit` gives a `concurrent.futures.Future`; `asyncio.wrap_future` makes it awaitable, so the loop
# stays free while four ranges are counted in worker processes.

# %%
RANGES = prime_ranges(300_000, chunks=4)

with ProcessPoolExecutor(max_workers=2) as pool:
    pool.submit(sleep_for, 0).result()  # start a worker first, so the heartbeat measures only the work
    cf_futures = [pool.submit(count_primes_in, r) for r in RANGES]
    with LoadMeter() as load:  # other programs' CPU use while we measure (our workers do not count)
        counts, cpu_gap = await with_heartbeat(asyncio.gather(*map(asyncio.wrap_future, cf_futures)))
print(f"{sum(counts)} primes below 300000; longest heartbeat gap {fmt_seconds(cpu_gap)}")

# %%
claim(sum(counts) == count_primes(0, 300_000), "the worker processes counted the right number of primes")
claim(cpu_gap < 0.15, "the event loop kept ticking while the processes computed",
      needs_cores=1, room=Room.now(load), gap=cpu_gap)

# %% [markdown]
# The bridge also goes the other way: from a plain thread, `asyncio.run_coroutine_threadsafe(coro, loop)`
# schedules a coroutine on a running loop and returns a `concurrent.futures.Future` that the thread can
# wait on with `.result(timeout=...)`.
#
# ## 3. What the bridges do not do
#
# **A timeout does not stop the thread.** `asyncio.wait_for(..., timeout)` cancels what it waits for,
# and for a coroutine that is the end of it. But `to_thread` and `run_in_executor` hand the call to a
# thread; cancelling the awaitable only stops the *waiting*: the thread cannot be interrupted and runs
# the call to its end (as `future.result(timeout=...)` in notebook 02).

# %%
finished = threading.Event()


def slow_job(seconds):
    time.sleep(seconds)
    finished.set()
    return "done"


async def give_up_early():
    try:
        return await asyncio.wait_for(asyncio.to_thread(slow_job, 0.6), timeout=0.2)
    except asyncio.TimeoutError:  # asyncio's name for it works on every version
        return "gave up"


outcome = await give_up_early()
finished_when_we_gave_up = finished.is_set()
finished_later = await asyncio.to_thread(finished.wait, 5)
print(f"wait_for: {outcome!r}; the thread had finished then: {finished_when_we_gave_up}; "
      f"it finished later anyway: {finished_later}")

# %%
claim(outcome == "gave up" and not finished_when_we_gave_up and finished_later,
      "wait_for gave up after 0.2 s, but the thread ran on to the end of its 0.6 s job")

# %% [markdown]
# To really stop such a job, let it cooperate: pass it a `threading.Event` it checks between steps
# (notebook 02), and set the event when you give up.
#
# **Context variables travel with `to_thread`, not with `run_in_executor`.** A `contextvars.ContextVar`
# holds per-request state in async code (a request id for the logs, the current user). `to_thread`
# copies the caller's context into the thread; `run_in_executor` does not, so the function sees the
# thread's own context: the variable's default. Pass a copy yourself with
# `loop.run_in_executor(pool, contextvars.copy_context().run, fn, *args)`.

# %%
request_id = contextvars.ContextVar("request_id", default="(not set)")


def current_request():
    return request_id.get()


async def handle(rid):
    request_id.set(rid)  # set in this task's context only
    loop = asyncio.get_running_loop()
    return {"to_thread": await asyncio.to_thread(current_request),
            "run_in_executor": await loop.run_in_executor(None, current_request),
            "run_in_executor + copy_context": await loop.run_in_executor(
                None, contextvars.copy_context().run, current_request)}


seen = await asyncio.create_task(handle("request-42"))  # a task gets its own copy of the context
for bridge, value in seen.items():
    print(f"{bridge:<31} saw request_id = {value}")

# %%
claim(seen == {"to_thread": "request-42", "run_in_executor": "(not set)",
               "run_in_executor + copy_context": "request-42"},
      "to_thread carried the context variable into the thread; run_in_executor did not")

# %% [markdown]
# **`asyncio.run` waits for the default executor.** In a script, `asyncio.run(main())` does not end
# when `main()` returns: it first cancels the tasks still running, then shuts down the loop's default
# executor and waits for its threads (since Python 3.9, with `loop.shutdown_default_executor()`). So a
# blocking call started with `to_thread` or `run_in_executor(None, ...)` and never awaited still
# delays the exit until it has finished. Since 3.12 that wait has a timeout (5 minutes); after it,
# `asyncio.run` warns and returns while the thread still runs. A notebook cell cannot call
# `asyncio.run` (the kernel's loop is running), so we call it on a helper thread:

# %%
def background_job():
    time.sleep(0.5)
    return "finished"


async def main_forgets_a_job():
    asyncio.get_running_loop().run_in_executor(None, background_job)  # started, never awaited
    return "main returned"


with stopwatch() as whole_run:
    returned = await asyncio.to_thread(asyncio.run, main_forgets_a_job())
print(f"asyncio.run gave {returned!r} after {fmt_seconds(whole_run)}")

# %%
claim(returned == "main returned" and whole_run.elapsed >= 0.45,
      "main() returned at once, yet asyncio.run waited for the executor job it never awaited",
      seconds=whole_run.elapsed)
join_has_timeout = "timeout" in inspect.signature(
    asyncio.get_running_loop().shutdown_default_executor).parameters
claim(join_has_timeout == (sys.version_info >= (3, 12)),
      "shutdown_default_executor() takes a timeout exactly from Python 3.12 on",
      python=sys.version.split()[0])

# %% [markdown]
# ## 4. The same I/O job on threads and on asyncio
#
# **The job.** Fetch 64 posts from the local API (0.1 s each). Threads: `requests` on a pool of 64
# threads. asyncio: `aiohttp`, one `ClientSession`, one coroutine per post, `asyncio.gather`. Both
# overlap all 64 waits; the difference is what it costs to do so.
#
# (`trust_env=False` keeps aiohttp from sending our `127.0.0.1` requests to a proxy from the
# environment. It is already aiohttp's default; saying so makes it visible. A real client keeps one
# session for all its requests, as here.)

# %%
IDS = list(range(1, 65))


def with_threads():
    with ThreadPoolExecutor(max_workers=len(IDS)) as pool:
        posts = list(pool.map(fetch_post, IDS))
        threads = threading.active_count()
    return posts, threads


async def with_asyncio():
    async with aiohttp.ClientSession(api.url, trust_env=False) as session:
        async def one(post_id):
            async with session.get(f"/posts/{post_id}") as response:
                response.raise_for_status()
                return await response.json()

        posts = await asyncio.gather(*(one(i) for i in IDS))
        threads = threading.active_count()
    return posts, threads


before = threading.active_count()
api.reset_stats()
with stopwatch() as thread_time:
    thread_posts, thread_count = with_threads()
thread_peak = api.stats()["peak_in_flight"]
api.reset_stats()
with stopwatch() as async_time:
    async_posts, async_count = await with_asyncio()
async_peak = api.stats()["peak_in_flight"]
print(f"64 threads: {fmt_seconds(thread_time)}   asyncio + aiohttp: {fmt_seconds(async_time)}")
print(f"one after another would take at least {fmt_seconds(len(IDS) * 0.1)}")

# %%
claim(thread_posts == async_posts, "both ways fetched the same 64 posts")
claim(min(thread_peak, async_peak) >= 32, "both had at least 32 requests in flight at once",
      thread_peak=thread_peak, async_peak=async_peak)
claim(thread_count - before >= 32 and async_count - before <= 2,
      "the thread pool needed dozens of threads for that; asyncio needed no new ones (at most 2)",
      pool_threads=thread_count - before, asyncio_threads=async_count - before)

# %%
runtime_bars({"sequential (estimate)": len(IDS) * 0.1, "64 threads + requests": thread_time,
              "asyncio + aiohttp": async_time}, baseline="sequential (estimate)",
             title="64 requests of 0.1 s")
plt.show()

# %% [markdown]
# *Compare the threads bar with the asyncio bar, and read the labels at their ends: both ways
# overlapped the 64 waits, so each is many times shorter than the estimate for one after another
# (64 × 0.1 s); which of the two wins by a little varies from run to run.*
#
# **What it means.** For a few dozen waits both are fine, and the thread version reuses every blocking
# library you already have. Each thread costs memory (its stack) and a little scheduling; a coroutine
# costs a small object. At thousands of connections, or when one program also serves requests
# (websockets, a web API), asyncio scales where threads do not. The price: every library on the path
# must be async (`aiohttp` instead of `requests`), and one forgotten blocking call freezes everything,
# which is exactly what section 1 showed and `to_thread` fixes.
#
# | the job | use |
# |---|---|
# | a few to a few hundred blocking calls, existing sync code | `ThreadPoolExecutor` |
# | thousands of connections, servers, websockets, async libraries | asyncio |
# | async code that must call a blocking function | `asyncio.to_thread` / `run_in_executor(thread pool)` |
# | async code that must do heavy CPU work | `run_in_executor(process pool)` or `wrap_future(pool.submit(...))` |
# | sync code that must call into a running loop | `asyncio.run_coroutine_threadsafe` |
#
# ## Your turn
#
# Answers are `async def` functions. The checkers run them in a fresh event loop of their own.
#
# **Exercise 08.1 — Blocking calls from async code, overlapped.** Write `fetch_posts_to_thread(ids)` that
# fetches every post with the blocking `fetch_post`, without blocking the loop and with all calls
# overlapped, and returns the posts in the order of `ids`. The checker runs a heartbeat beside your
# coroutine, so it sees whether the loop stayed free.

# %%
async def fetch_posts_to_thread(ids):
    raise NotImplementedError


check.fetch_posts_to_thread(fetch_posts_to_thread)

# %% [markdown]
# **Exercise 08.2 — CPU work without freezing the loop.** Write `count_primes_async(limit, executor)`
# that counts the primes below `limit` by sending ranges (`prime_ranges`, `count_primes_in`) to the
# process pool `executor` the checker gives you. The checker runs a heartbeat beside your coroutine.

# %%
async def count_primes_async(limit, executor):
    raise NotImplementedError


check.count_primes_async(count_primes_async)

# %% [markdown]
# **Exercise 08.3 — aiohttp with a bound.** Write `fetch_posts_bounded(base_url, ids, limit=5)` that
# fetches `base_url + "/posts/<id>"` for every id with aiohttp, at most `limit` requests in flight at any
# moment (real services throttle clients that open hundreds of connections), and returns the posts in
# order.

# %%
async def fetch_posts_bounded(base_url, ids, limit=5):
    raise NotImplementedError


check.fetch_posts_bounded(fetch_posts_bounded)

# %%
# Stuck? Uncomment a line to see a worked solution (try first!).
# checks.solution("08.1")
# checks.solution("08.2")
# checks.solution("08.3")

# %% [markdown]
# ## Recap
#
# - A blocking call inside a coroutine freezes the whole event loop; a heartbeat makes it visible.
# - `to_thread` / `run_in_executor` move blocking calls to threads (or processes); `wrap_future` awaits any `concurrent.futures.Future`.
#   A timeout stops the waiting, never the thread; only `to_thread` carries context variables.
# - Threads fit existing blocking code; asyncio fits many connections and async libraries.
#
# **Next:** [09 · Newer Pythons and clusters](09-newer-pythons-and-clusters.ipynb)

# %%
api.stop()  # every notebook stops what it started
default_pool.shutdown(wait=True)  # the default executor's threads, too; a fresh one for later cells:
asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(thread_name_prefix="asyncio-default"))
