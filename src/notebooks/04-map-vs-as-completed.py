# Source of notebooks/04-map-vs-as-completed.ipynb (build with: python src/notebooks/build.py 04)

# %% [markdown]
# # 04 · map vs as_completed
#
# **Why this matters.** Once you have many tasks, you have to collect many results, and the way you
# collect them decides when your program can start using the first one, how much memory it holds, and
# what happens when one task fails or takes too long. `executor.map` hands results back in the order
# of your inputs; `as_completed` hands them back in the order they finish; `wait` lets you keep a
# steady number of tasks running over an input that never ends.
#
# **In this notebook you will**
# - see what `map` promises (input order), what it does behind your back (submits everything at once,
#   cancels what is pending when it stops early), how it reports an exception, and what its `timeout`
#   measures;
# - measure `chunksize` on a process pool and draw the curve;
# - collect results with `as_completed` and a future→input dictionary, and see what its timeout does to
#   tasks still running;
# - compare the two on a timeline and on time to the first result;
# - keep a bounded number of tasks in flight with `wait(..., return_when=FIRST_COMPLETED)`.
#
# **Time:** about 70 minutes. **Prerequisites:** [02 · Futures](02-futures.ipynb) and
# [03 · Callbacks](03-callbacks.ipynb).
#
# **Previous:** [03 · Callbacks](03-callbacks.ipynb) · **Next:** [05a · Pitfalls with processes](05a-pitfalls-processes.ipynb)

# %% [markdown]
# ## Set-up
#
# One cell imports what this notebook uses and starts the local API (0.05 s per request plus up to
# 0.15 s of random extra, so requests finish in a jumbled order).

# %%
import concurrent.futures
import itertools
import time
from concurrent.futures import (FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, as_completed,
                                wait)

import matplotlib.pyplot as plt

import futureslab
from futureslab import checks
from futureslab.checks import nb04 as check
from futureslab.claims import Room, claim, measure_until
from futureslab.cores import LoadMeter
from futureslab.lessons import mark_received
from futureslab.plots import log_axis
from futureslab.data import USERS
from futureslab.server import LocalAPI
from futureslab.tasks import fetch_post, fetch_user, sleep_then_return, square, unlucky
from futureslab.timing import fmt_seconds, fmt_speedup, measure, speedup, stopwatch
from futureslab.trace import Tracer

futureslab.setup()
api = LocalAPI(latency=0.05, jitter=0.15, seed=4).start()
print("ready")

# %% [markdown]
# ## 1. `executor.map`: results in input order
#
# `executor.map(fn, items)` runs `fn(item)` for every item on the pool and gives you an iterator over
# the results **in the order of the items**, whatever order the tasks finish in. To see what that
# costs, give six tasks durations that *decrease*: item 0 takes 0.30 s, item 5 only 0.05 s. We note
# when each result reaches us.

# %%
ITEMS = list(range(6))
DURATIONS = [0.30, 0.25, 0.20, 0.15, 0.10, 0.05]


def map_arrivals():
    """Run the six tasks with map on 6 threads; return [(item, seconds when we received it)]."""
    arrivals = []
    with ThreadPoolExecutor(max_workers=6) as executor, stopwatch() as sw:
        for item in executor.map(sleep_then_return, ITEMS, DURATIONS):  # map(fn, *iterables)
            arrivals.append((item, sw.lap()))
    return arrivals


arrivals = map_arrivals()
print("order received:", [item for item, _ in arrivals])
print(f"first result received after {fmt_seconds(arrivals[0][1])}, although item 5 "
      f"was ready after about {fmt_seconds(DURATIONS[5])}")

# %%
arrivals = measure_until(map_arrivals, lambda a: a[0][1] >= 0.9 * max(DURATIONS))
claim([item for item, _ in arrivals] == ITEMS, "map gave the results in input order")
claim(arrivals[0][1] >= 0.9 * max(DURATIONS),
      "map held back every result until the slowest task, item 0, had finished",
      first_result=arrivals[0][1], slowest=max(DURATIONS))

# %% [markdown]
# **Every task is submitted at once.** `map` does not wait for you to ask for a result: it reads the
# *whole* input and submits one task per item before it returns its iterator. We count how many items a
# generator has handed out before we ask for the first result.

# %%
handed_out = []


def numbers(n):
    for i in range(n):
        handed_out.append(i)
        yield i


with ThreadPoolExecutor(max_workers=2) as executor:
    results = executor.map(square, numbers(1000))
    print("items read from the input before we asked for any result:", len(handed_out))
    print("first result:", next(results))

# %% [markdown]
# For 1000 items that is fine. For a million it holds a million futures in memory; for an endless
# input (a stream, a queue, `itertools.count()`), `map` never returns at all. Section 5 shows the fix.
# (Python 3.14 adds `executor.map(..., buffersize=n)`, which reads only `n` items ahead.)
#
# **An exception is raised when you reach that result, and `map` cancels what is still waiting.**
# If task 3 fails, you still get the results of tasks 0, 1 and 2; the exception comes out of the
# iterator at position 3, and after it the iterator is finished. On its way out, `map` cancels every
# task that is still *pending* (queued, not started), so those never run. To see it we run six tasks
# on **one** worker: `unlucky(n, 0.1)` sleeps `n` × 0.1 s and returns `n * 2`, but raises
# `ValueError` for `n == 3`.

# %%
with Tracer() as tracer:
    traced = tracer.wrap(unlucky)
    with ThreadPoolExecutor(max_workers=1) as executor:
        results = executor.map(traced, range(6), [0.1] * 6)
        received = []
        try:
            for value in results:
                received.append(value)
        except ValueError as exc:
            print(f"received {received}, then ValueError: {exc}")
        print("what the iterator gives after the error:", list(results))
ran = sorted(int(r.task) for r in tracer.records)
print("task 5 ran:", 5 in ran)

# %%
claim(received == [0, 2, 4] and 5 not in ran,
      "map gave results 0-2, raised at task 3, and cancelled task 5, which never ran",
      received=received, tasks_run=ran)

# %% [markdown]
# Task 4 is a race: the worker takes it from the queue the moment task 3 fails, and if it gets there
# before `map` cancels it, it runs to its end with nobody to read its result (a running task cannot be
# cancelled). Task 5 is still queued at that moment, so it is always cancelled.
#
# **Dropping the iterator cancels too.** If you stop reading, say after the first result, and the
# iterator goes away (`del`, or the function that held it returns), `map` cancels the pending tasks
# the same way. CPython does it at once; other Pythons when the iterator is garbage-collected, so call
# `results.close()` to be sure.

# %%
with Tracer() as tracer:
    traced = tracer.wrap(sleep_then_return)
    with ThreadPoolExecutor(max_workers=1) as executor:
        results = executor.map(traced, range(6), [0.2] * 6)
        first = next(results)
        del results  # we stop reading: the iterator is dropped
dropped_ran = sorted(int(r.task) for r in tracer.records)
print("first result:", first, "| tasks 2 to 5 ran:", any(n >= 2 for n in dropped_ran))

# %%
claim(first == 0 and max(dropped_ran) <= 1,
      "after the iterator was dropped, only the task already running finished; the rest were cancelled",
      tasks_run=dropped_ran)

# %% [markdown]
# If you need every result, failures included, `map` is the wrong tool: submit each task and collect
# each future's outcome (`as_completed`, below), or catch the error inside the task function and return
# it as a value.
#
# **`timeout` counts from the `map()` call**, not per result. Four tasks of 0.4 s on two threads with
# `timeout=0.6`: no single task is slower than 0.6 s, yet the deadline passes while the second pair is
# running. Before Python 3.11, `concurrent.futures.TimeoutError` is a different class from the builtin
# `TimeoutError`, so `except TimeoutError:` would not catch it there; `except
# concurrent.futures.TimeoutError:` works on every version.

# %%
def map_with_deadline():
    received, error = [], None
    with stopwatch() as sw:
        with ThreadPoolExecutor(max_workers=2) as executor:
            try:
                for value in executor.map(sleep_then_return, range(4), [0.4] * 4, timeout=0.6):
                    received.append(value)
            except concurrent.futures.TimeoutError:
                error = "TimeoutError"
                raised_at = sw.lap()
    return received, error, raised_at if error else None, sw.elapsed


with LoadMeter() as load:
    received, error, raised_at, total = measure_until(map_with_deadline, lambda r: r[0] == [0, 1])
print(f"received {received}, then {error} after {fmt_seconds(raised_at)}")
print(f"the with block still waited for the two running tasks: {fmt_seconds(total)} in all")

# %%
claim(received == [0, 1] and 0.55 <= raised_at < 0.8,
      "map's timeout ran out 0.6 s after the map() call, while results 2 and 3 were still running",
      needs_cores=1, room=Room.now(load), received=received, raised_at=raised_at)
claim(total >= 0.75, "leaving the with block waited for the running tasks anyway", total=total)

# %% [markdown]
# ## 2. `chunksize`: for process pools only
#
# A process pool sends every task to a worker process and every result back, and each trip costs tens
# of microseconds, far more than `square(n)` itself. `executor.map(fn, items, chunksize=k)` packs `k`
# items into one trip. (Thread pools ignore `chunksize`: there is no trip to save.)
#
# We time a 2-process pool on tiny tasks for chunksize 1, 10, 100 and 1000 (20,000 items; 2,000 for
# chunksize 1, which is slow) and compare the cost *per item* with a plain loop. The pool is started
# before timing, so we measure only the trips.

# %%
CHUNKSIZES = [1, 10, 100, 1000]
N_ITEMS = {1: 2_000, 10: 20_000, 100: 20_000, 1000: 20_000}


def seconds_per_item(executor, chunksize, repeat=2):
    n = N_ITEMS[chunksize]
    timing = measure(lambda: sum(executor.map(square, range(n), chunksize=chunksize)), repeat=repeat)
    assert timing.result == sum(i * i for i in range(n))
    return timing.best / n


with ProcessPoolExecutor(max_workers=2) as executor:
    list(executor.map(square, range(8)))  # start both workers before timing
    per_item = {c: seconds_per_item(executor, c) for c in CHUNKSIZES}
plain_loop = measure(lambda: sum(map(square, range(20_000))), repeat=3).best / 20_000

for c in CHUNKSIZES:
    print(f"chunksize {c:>4}: {fmt_seconds(per_item[c] * 100_000)} per 100,000 items")
print(f"plain loop:     {fmt_seconds(plain_loop * 100_000)} per 100,000 items")

# %%
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
ax.plot(CHUNKSIZES, [per_item[c] * 1e6 for c in CHUNKSIZES], "o-", label="ProcessPoolExecutor.map")
ax.axhline(plain_loop * 1e6, color="grey", linestyle="--", label="plain loop, no pool")
log_axis(ax, CHUNKSIZES)
ax.set_yscale("log")
ax.set_xlabel("chunksize (items per trip)")
ax.set_ylabel("microseconds per item")
ax.set_title("Tiny tasks on 2 processes: cost per item")
ax.legend()
plt.show()

# %% [markdown]
# *Look at:* how far the blue line falls as the chunks grow, and how far above the grey line (no
# pool at all) it still stays.

# %%
claim(per_item[100] * 5 <= per_item[1],
      "chunksize 100 cost at least 5x less per item than chunksize 1",
      chunksize_1=per_item[1], chunksize_100=per_item[100])
claim(plain_loop < min(per_item.values()),
      "for work this tiny, a plain loop still beat the pool at every chunksize",
      plain=plain_loop, best_pool=min(per_item.values()))

# %% [markdown]
# **What it means:** the curve falls steeply and then flattens once the trips are rare; past that point
# a bigger chunk only makes the pool balance work less evenly (one slow chunk keeps one worker busy
# while the other idles). For real work, pick a chunksize that makes one chunk take at least a few
# milliseconds. And if each item is as cheap as `square`, do not use a pool at all.

# %% [markdown]
# ## 3. `as_completed`: results in finish order
#
# `as_completed(futures)` gives you each future **as it finishes**. Since a future does not say which
# input it belongs to, the usual pattern keeps a dictionary `{future: input}`. Here are ten users
# fetched on five threads from the local API, whose random extra latency jumbles the finish order.

# %%
def users_as_completed():
    arrival = []
    with ThreadPoolExecutor(max_workers=5) as executor:
        user_of = {executor.submit(fetch_user, user_id): user_id for user_id in range(1, 11)}
        for future in as_completed(user_of):
            user_id = user_of[future]
            try:
                arrival.append((user_id, future.result()["name"]))
            except Exception as exc:  # one failed request should not end the loop
                arrival.append((user_id, f"failed: {exc!r}"))
    return arrival


arrival = users_as_completed()
for user_id, name in sorted(arrival)[:3]:
    print(f"user {user_id}: {name}")
print("...")

# %%
arrival = measure_until(users_as_completed, lambda a: [u for u, _ in a] != sorted(u for u, _ in a))
claim([u for u, _ in arrival] != list(range(1, 11)), "the users arrived in an order other than 1 to 10")
claim(all(name == USERS[user_id - 1]["name"] for user_id, name in arrival),
      "the dictionary matched every result to the right user")

# %% [markdown]
# **`as_completed`'s timeout, and the stragglers.** `as_completed(futures, timeout=t)` raises
# `TimeoutError` *from the iterator* (the `for` line itself) if the next future is not done `t`
# seconds after the call. A `try` *inside* the loop body does not catch it. A common version of this
# loop runs ten tasks of up to 2 s each on four threads with `timeout=5`; that looks generous, but the
# tasks run in three rounds (4 + 4 + 2), so the worst case is 6 s, and then it raises. Scaled down by
# ten and made worst-case on purpose: ten tasks of 0.2 s on four threads, `timeout=0.5`.

# %%
def as_completed_with_deadline():
    received, stragglers = [], []
    with stopwatch() as sw:
        with ThreadPoolExecutor(max_workers=4) as executor:
            item_of = {executor.submit(sleep_then_return, i, 0.2): i for i in range(10)}
            try:
                for future in as_completed(item_of, timeout=0.5):
                    received.append(item_of[future])
            except concurrent.futures.TimeoutError:
                stragglers = sorted(item for f, item in item_of.items() if not f.done())
    finished = sorted(item_of[f] for f in item_of if f.done() and not f.cancelled())
    return sorted(received), stragglers, finished, sw.elapsed


received, stragglers, finished, total = measure_until(
    as_completed_with_deadline, lambda r: len(r[0]) == 8 and r[1] == [8, 9])
print(f"received {len(received)} results, then TimeoutError; still running then: {stragglers}")
print(f"after the with block, finished: {finished}  ({fmt_seconds(total)} in all)")

# %%
claim(len(received) == 8 and stragglers == [8, 9] and finished == list(range(10)) and total >= 0.55,
      "the timeout fired after two rounds; the two stragglers kept running and the with block waited "
      "for them", received=len(received), stragglers=stragglers, total=total)

# %% [markdown]
# The stragglers are not stopped: a running task cannot be cancelled, and leaving the `with` block
# waits for it. Your choices:
#
# - **a timeout that fits the worst case**: rounds × the longest task, plus slack
#   (here ⌈10 / 4⌉ × 0.2 s = 0.6 s, so at least 0.7 s);
# - **catch `concurrent.futures.TimeoutError` around the loop** and decide what to do with what is
#   left: `executor.shutdown(wait=False, cancel_futures=True)` cancels what has not started and
#   returns at once, while the running ones finish in the background. It lets you move on only if you
#   are not inside a `with` block for that executor: leaving the block calls `shutdown(wait=True)`,
#   which still waits for the running tasks. Exercise 04.2 creates the executor without `with` for
#   that reason;
# - **`wait(futures, timeout=t)`**, which never raises: it returns the sets `(done, not_done)`.

# %% [markdown]
# ## 4. Side by side: when does the first result arrive?
#
# The same twelve tasks, with a mix of durations in no particular order, on four threads: once with
# `map`, once with `as_completed`. The timelines below show the workers' bars, and one more row,
# *received*, marking when the main thread got each result (labelled with its item).

# %%
MIXED = [0.35, 0.10, 0.25, 0.05, 0.30, 0.15, 0.20, 0.05, 0.10, 0.30, 0.15, 0.25]


def collect(how):
    """Run the MIXED tasks on 4 threads; return the tracer and [(item, seconds received)]."""
    received = []
    with Tracer() as tracer:
        traced = tracer.wrap(sleep_then_return, label=lambda item, seconds: str(item))
        with ThreadPoolExecutor(max_workers=4) as executor:
            if how == "map":
                for item in executor.map(traced, range(len(MIXED)), MIXED):
                    received.append((item, time.perf_counter() - tracer.t0))
            else:
                item_of = {executor.submit(traced, i, s): i for i, s in enumerate(MIXED)}
                for future in as_completed(item_of):
                    received.append((item_of[future], time.perf_counter() - tracer.t0))
    return tracer, received


with LoadMeter() as load:
    map_trace, map_got = collect("map")
    ac_trace, ac_got = collect("as_completed")
print("map received:         ", [item for item, _ in map_got])
print(f"as_completed received first: item {ac_got[0][0]}, a {MIXED[ac_got[0][0]]} s task; the rest in finish order")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharex=True, layout="constrained")
for ax, tracer, got, title in [(axes[0], map_trace, map_got, "executor.map"),
                               (axes[1], ac_trace, ac_got, "as_completed")]:
    tracer.plot(ax=ax, title=title)
    mark_received(ax, tracer, got)  # the extra "received" row (futureslab.lessons)
plt.show()

# %% [markdown]
# The workers did exactly the same thing both times; only the *received* row differs. With `map`,
# nothing arrives until item 0 (0.35 s) is done, and then results come in bursts as each next item in
# line finishes. With `as_completed`, each result arrives the moment its bar ends. Below: time to the
# first result, and how many results you hold over time.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 2.8), layout="constrained")
firsts = {"map": map_got[0][1], "as_completed": ac_got[0][1]}
left.barh(list(firsts), list(firsts.values()), color=["tab:blue", "tab:orange"])
left.invert_yaxis()
left.set_xlabel("seconds to the first result")
for name, got in [("map", map_got), ("as_completed", ac_got)]:
    right.step([0] + [t for _, t in got], range(len(got) + 1), where="post", label=name)
right.set_xlabel("seconds since start")
right.set_ylabel("results received")
right.legend()
plt.show()

# %% [markdown]
# *Look at:* the orange line starts climbing while the blue one is still flat at zero; both reach
# the top at about the same time.

# %%
print(f"first result: map {fmt_seconds(firsts['map'])}, as_completed {fmt_seconds(firsts['as_completed'])} "
      f"({fmt_speedup(speedup(firsts['map'], firsts['as_completed']))} sooner)")

# %%
ends = {int(r.task): r.end for r in ac_trace.records}
ac_order = [item for item, _ in ac_got]
claim([item for item, _ in map_got] == list(range(len(MIXED))), "map delivered in input order")
claim(all(ends[a] <= ends[b] + 0.015 for a, b in zip(ac_order, ac_order[1:])),
      "as_completed delivered in finish order")
room = Room.now(load)  # the timing claims need our threads run on time: at least one free core
claim(firsts["as_completed"] <= 0.5 * firsts["map"],
      "as_completed's first result came in at most half the time of map's",
      needs_cores=1, room=room, **firsts)
claim(abs(map_got[-1][1] - ac_got[-1][1]) < 0.1,
      "both had every result at about the same time: the order changes, not the total",
      needs_cores=1, room=room, map_last=map_got[-1][1], as_completed_last=ac_got[-1][1])

# %% [markdown]
# **Which to use?** `map` when you want the results lined up with the inputs and will use them all
# together; it is short and clear. `as_completed` (with the future→input dictionary) when you want to
# act on each result as soon as it exists: show progress, stop at the first good answer, handle each
# failure on its own. Neither limits how much work is submitted at once; that is next.

# %% [markdown]
# ## 5. A bounded number of tasks in flight
#
# For a long or endless input (lines of a huge file, messages from a queue, `itertools.count()`) you
# want at most, say, four tasks in flight, and a new item read only when one finishes. `wait(pending,
# return_when=FIRST_COMPLETED)` blocks until at least one future is done and returns `(done,
# not_done)`; each finished task makes room for one new one.
#
# Here the input is an endless stream of post ids. We stop after 40 results, and ask the local API how
# many requests it saw at once.

# %%
LIMIT, WANTED = 4, 40
read_from_input = []


def endless_post_ids():
    for n in itertools.count():
        read_from_input.append(n)
        yield n % 100 + 1


api.reset_stats()
titles = []
stream = endless_post_ids()
with ThreadPoolExecutor(max_workers=LIMIT) as executor:
    pending = {executor.submit(fetch_post, post_id) for post_id in itertools.islice(stream, LIMIT)}
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        titles.extend(future.result()["title"] for future in done)
        room = min(len(done), WANTED - len(titles) - len(pending))  # stop submitting near the end
        for post_id in itertools.islice(stream, max(room, 0)):
            pending.add(executor.submit(fetch_post, post_id))

stats = api.stats()
print(f"{len(titles)} results; {len(read_from_input)} items read from the endless input")

# %%
claim(len(titles) == WANTED and len(read_from_input) <= WANTED + LIMIT,
      "the endless input was read only as far as needed", results=len(titles), read=len(read_from_input))
claim(stats["peak_in_flight"] == LIMIT, "the server never saw more than 4 requests at once, and did see 4",
      peak=stats["peak_in_flight"])

# %% [markdown]
# Memory stays flat however long the input is, and the pool is kept busy: the moment one request
# finishes, the next one starts. Exercise 04.3 asks you to write this pattern as a function.

# %% [markdown]
# ## Your turn
#
# Each checker calls your function with a *task* of its own, a function of one item, and watches when
# each task ran, so it can tell whether your answer is right *and* whether it really ran concurrently.
# Stuck? `checks.solution("04.1")` prints a worked solution.
#
# ### Exercise 04.1: results in the order they finish
#
# Write `in_finish_order(task, items)`: run `task(item)` for every item on a thread pool and return a
# list of `(item, result)` pairs **in the order the tasks finished**.

# %%
def in_finish_order(task, items):
    raise NotImplementedError


# %%
check.in_finish_order(in_finish_order)

# %% [markdown]
# ### Exercise 04.2: the first result, then stop
#
# Write `first_result(task, items)`: run `task(item)` for every item on a pool of 4 threads and return
# `(item, result)` for the **first task to finish**, as soon as you have it: do not wait for the slow
# ones, and make sure the tasks that have not started never start.

# %%
def first_result(task, items):
    raise NotImplementedError


# %%
check.first_result(first_result)

# %% [markdown]
# ### Exercise 04.3: a bounded number of tasks in flight
#
# Write `bounded_run(task, items, limit)`: `items` is an iterator that may be very long. Run
# `task(item)` for every item with **at most `limit` tasks in flight**, taking a new item from `items`
# only when a task finishes, and return the list of results (any order).

# %%
def bounded_run(task, items, limit):
    raise NotImplementedError


# %%
check.bounded_run(bounded_run)

# %%
# Stuck? Uncomment a line to see a worked solution.
# checks.solution("04.1")
# checks.solution("04.2")
# checks.solution("04.3")

# %% [markdown]
# ## Recap
#
# - `map` yields in input order, submits everything at once, raises a task's error at its position
#   (cancelling what is still pending, as it does when you drop the iterator), and its timeout counts
#   from the call; on process pools, give tiny tasks a `chunksize`.
# - `as_completed` yields in finish order (keep a future→input dict); its timeout raises from the
#   iterator and leaves running stragglers running.
# - `wait(..., return_when=FIRST_COMPLETED)` keeps a bounded number of tasks in flight over any input.
#
# **Next:** [05a · Pitfalls with processes](05a-pitfalls-processes.ipynb) and [05b · Pitfalls with threads, stopping and errors](05b-pitfalls-threads-and-errors.ipynb): the ways concurrent code goes wrong, and how to see it.

# %%
api.stop()  # stop what this notebook started
