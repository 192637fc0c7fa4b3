# Source of notebooks/05b-pitfalls-threads-and-errors.ipynb (build with: python src/notebooks/build.py 05b)

# %% [markdown]
# # 05b · Pitfalls with threads, stopping and errors
#
# **Why this matters.** Threads share everything, which is what makes them cheap and what makes them
# dangerous. A thread pool can wait for itself forever, lose an update between two threads, swallow an
# exception without a word, or keep running after you asked it to stop. This notebook makes each of
# those happen on purpose (safely: every wait has a timeout, nothing is left hanging), explains it and
# fixes it. It starts with a warning you may have read, that too many threads "thrash", and measures
# what really happens.
#
# **In this notebook you will**
# - see how many threads a `ThreadPoolExecutor` really starts, and what each task costs;
# - provoke a deadlock, a lost update and a lost exception, and fix each one;
# - stop a pool early, and know exactly which queued tasks still run;
# - share an HTTP session between threads without throwing connections away.
#
# **Time:** about 60 minutes (reading, running and the exercises). **Prerequisites:** notebooks 01
# to 04, and [05a · Pitfalls with processes](05a-pitfalls-processes.ipynb).
#
# **Previous:** [05a · Pitfalls with processes](05a-pitfalls-processes.ipynb) ·
# **Next:** [06 · A real-world pipeline](06-real-world-pipeline.ipynb)

# %% [markdown]
# ## Set-up
#
# One cell imports everything and starts the local API (0.05 s per request).

# %%
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait

import requests
from requests.adapters import HTTPAdapter

import futureslab
from futureslab import checks, tasks
from futureslab.checks import nb05 as check
from futureslab.claims import claim, measure_until
from futureslab.pitfalls import fmt_us
from futureslab.server import LocalAPI
from futureslab.timing import fmt_seconds, measure, stopwatch
from futureslab.trace import Tracer

futureslab.setup()
api = LocalAPI(latency=0.05).start()
print("ready:", api.url)

# %% [markdown]
# ## 1. Too many threads?
#
# A common warning says that a pool of 100 threads "thrashes": the threads fight over the CPU and
# everything slows down. Let us look at what a `ThreadPoolExecutor` really does with a large
# `max_workers`.
#
# `max_workers` is a ceiling, not a number of threads started up front. On each `submit`, the pool
# starts a new thread only if no thread is idle and fewer than `max_workers` exist (in CPython,
# `ThreadPoolExecutor._adjust_thread_count` asks a semaphore, `_idle_semaphore`, that worker threads
# release when they become idle). A thread, once started, stays until `shutdown` and takes task after
# task from the pool's queue. (Up to Python 3.11 a thread counts itself idle after every task it
# finishes; from 3.12, only when it finds the queue empty.)
#
# First, tasks handed over one at a time: submit one, wait for its result, submit the next.
# `threading.active_count()` counts the threads of this process, so its growth while the pool is open
# is the number of threads the pool started.

# %%
def threads_started(run, max_workers):
    """Run run(pool) on a fresh thread pool; return (seconds, threads the pool started)."""
    before = threading.active_count()
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        with stopwatch() as sw:
            run(pool)
        started = threading.active_count() - before
    return sw.elapsed, started


def one_at_a_time(pool):
    for n in range(200):
        pool.submit(tasks.double, n).result()


_, reused = threads_started(one_at_a_time, max_workers=100)
print(f"200 tasks, one at a time, max_workers=100: {reused} thread(s) started")

# %%
claim(reused <= 2, "handed over one at a time, 200 tasks started at most 2 of the 100 allowed threads: "
                   "an idle thread is reused", started=reused)

# %% [markdown]
# Now a burst: `map` submits all 2,000 tiny tasks at once. While the queue is full of work, a `submit`
# rarely finds an idle thread, so the pool starts threads up to its ceiling, or close to it. For each
# ceiling we time the burst (best of three) and divide by the number of tasks; durations under a
# millisecond are printed in microseconds (µs). The number of threads started varies from run to run,
# so the tests do not compare this cell's output.

# %% tags=["nbval-ignore-output"]
ITEMS = list(range(2000))


def burst(pool):
    return list(pool.map(tasks.double, ITEMS))


plain = measure(lambda: [tasks.double(n) for n in ITEMS], repeat=5).best / len(ITEMS)
per_task, started = {}, {}
for workers in (4, 32, 100):
    runs = [threads_started(burst, workers) for _ in range(3)]
    per_task[workers] = min(seconds for seconds, _ in runs) / len(ITEMS)
    started[workers] = max(n for _, n in runs)
print(f"plain loop:       {fmt_us(plain)} per task")
for workers in per_task:
    print(f"max_workers={workers:<4} {fmt_us(per_task[workers])} per task, {started[workers]} threads started")

# %%
claim(min(per_task.values()) >= 10 * plain,
      "every pool spent at least 10x longer per task than the plain loop: the cost is the hand-over",
      plain=plain, fastest_pool=min(per_task.values()))
claim(started[100] > started[4], "a burst started more threads when more were allowed",
      started=started)
claim(per_task[100] < 10 * per_task[4],
      "allowing 100 threads instead of 4 cost less than 10x per task: no collapse",
      per_task_4=per_task[4], per_task_100=per_task[100])

# %% [markdown]
# **What it means.** Compare the per-task times: a few microseconds to a few tens, whatever the
# ceiling. Which ceiling comes out fastest changes from run to run and between Python versions (an
# earlier run of this notebook showed 32 threads beating 4): the hand-over of each task (a `Future`,
# a lock, a queue, waking a thread) costs about the same, and the GIL lets one thread run Python at a
# time however many there are. What a large ceiling really costs is paid per thread actually started
# (its start-up, microseconds, and memory for its stack) and, in a burst, more threads taking turns at
# each hand-over. Nothing "thrashes"; but nothing gets faster either: for pure-Python work, threads do
# not help at any count (notebook 01).
#
# Where many threads *are* right is waiting: 100 tasks that each wait 0.2 s (like 100 slow requests)
# start all 100 threads, and all the waits overlap.

# %%
def sleepers(pool):
    return list(pool.map(tasks.sleep_for, [0.2] * 100))


waited_s, all_started = measure_until(lambda: threads_started(sleepers, 100),
                                    lambda r: r[1] == 100 and r[0] < 1.0)
print(f"100 tasks that each wait 0.2 s, max_workers=100: {all_started} threads started, "
      f"{fmt_seconds(waited_s)} in all")
claim(all_started == 100 and waited_s < 1.0,
      "100 waiting tasks started 100 threads and took well under a second, not 100 x 0.2 s",
      started=all_started, seconds=waited_s)

# %% [markdown]
# So choose `max_workers` for threads by how many tasks *wait at the same time* and how many the
# other side can take (a server, a database: section 6 shows one limit), not by the CPU count; and
# measure, as notebook 07 does.
#
# ## 2. Deadlock: a task that waits for the pool it runs in
#
# A task may submit more work to its own pool and wait for it. That works until the pool is full:
# when every worker is busy *waiting*, the work they wait for sits in the queue and no one is left to
# run it. Below, two workers each run an `outer` task that submits an `inner` task and waits (a
# barrier makes sure both workers are busy first; in real programs, load does that for you). We give
# it half a second, look, and then break the deadlock by cancelling the inner tasks, which can never
# start (`cancel()` works on pending futures).

# %%
inner_futures = []
both_busy = threading.Barrier(2)  # makes the timing certain: both workers are busy before either asks


def outer(n):
    both_busy.wait(timeout=5)
    inner = stuck_pool.submit(tasks.double, n)  # asks its own pool for help...
    inner_futures.append(inner)
    return inner.result()  # ...and holds a worker while it waits


stuck_pool = ThreadPoolExecutor(max_workers=2)
outers = [stuck_pool.submit(outer, n) for n in range(2)]
done, not_done = wait(outers, timeout=0.5)
print(f"after 0.5 s: {len(done)} of 2 outer tasks done, "
      f"{sum(not f.running() and not f.done() for f in inner_futures)} inner tasks still queued")

for f in inner_futures:
    f.cancel()  # the only way out: the inner tasks never started, so they can be cancelled
done, not_done = wait(outers, timeout=5)
stuck_pool.shutdown()
print("after cancelling the inner tasks, the outer tasks ended with:",
      sorted({type(f.exception()).__name__ for f in outers}))

# %% [markdown]
# Nothing raised, nothing printed an error: a real program would simply hang. Worse, the same code runs
# fine with a bigger pool or fewer tasks, so it passes tests and hangs under load.
#
# **The fixes.** Do not wait inside a task for work queued behind it:
# - call the helper directly inside the task (it is already running concurrently);
# - or give the inner work its own pool, so waiting outer tasks cannot starve it;
# - or restructure: submit the first stage from the main thread, and submit the second stage when
#   the first one's result arrives (notebook 06 does exactly that).
#
# (Process pools cannot be passed to their own workers at all, so this is a thread-pool trap.)

# %%
with ThreadPoolExecutor(max_workers=2) as helpers, ThreadPoolExecutor(max_workers=2) as main_pool:

    def outer_fixed(n):
        return helpers.submit(tasks.double, n).result(timeout=5)

    fixed = [main_pool.submit(outer_fixed, n) for n in range(6)]
    done, not_done = wait(fixed, timeout=5)
claim(not not_done and [f.result() for f in fixed] == [0, 2, 4, 6, 8, 10],
      "with a separate pool for the inner work, all 6 outer tasks finished")

# %% [markdown]
# ## 3. Shared mutable state: the lost update
#
# `counter += 1` is three steps: read the value, add one, write it back. If another thread writes in
# between, one of the two updates is lost. With CPython's GIL the window is small and the bug may hide
# for months; anything that lets another thread run between the read and the write (I/O, logging,
# a long computation, or a free-threaded Python) opens it wide. `time.sleep(0)` below stands in for
# that: it lets another thread run right there.

# %%
counter = 0


def add_one_unsafely(_):
    global counter
    value = counter  # read
    time.sleep(0)  # another thread may run here
    counter = value + 1  # write: overwrites what other threads wrote meanwhile


def count_unsafely(n=2000, workers=8):
    global counter
    counter = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(add_one_unsafely, range(n)))
    return counter


unsafe_total = measure_until(count_unsafely, lambda total: total < 2000)
claim(unsafe_total < 2000, "8 threads adding 1 each 2,000 times lost some of the updates",
      total=unsafe_total)

# %% [markdown]
# **Fix 1: a lock** makes the read-and-write one step that only one thread at a time may take.
# **Fix 2, usually better: share nothing.** Each task *returns* its contribution; the main thread
# combines the results. Futures were made for that.

# %%
lock = threading.Lock()


def add_one_with_lock(_):
    global counter
    with lock:
        value = counter
        time.sleep(0)
        counter = value + 1


counter = 0
with ThreadPoolExecutor(max_workers=8) as pool:
    list(pool.map(add_one_with_lock, range(2000)))
locked_total = counter


def contribution(_):
    time.sleep(0)
    return 1


with ThreadPoolExecutor(max_workers=8) as pool:
    returned_total = sum(pool.map(contribution, range(2000)))
print("with a lock:", locked_total, "  returning results:", returned_total)

# %% [markdown]
# ## 4. The exception nobody looks at
#
# A task that raises does not crash anything: the exception is stored in its future and raised again
# only when someone calls `result()` (or `exception()`). If nobody does, it is gone. The cell below runs
# five tasks; the one for `3` fails. Watch the output.

# %%
with ThreadPoolExecutor(max_workers=2) as pool:
    forgotten = [pool.submit(tasks.fail_on, n, 3) for n in range(5)]
print("the cell ended normally")

# %% [markdown]
# Not a word about the failure. It is still there, in the future we happened to keep:

# %%
print([repr(f.exception()) for f in forgotten if f.exception() is not None])

# %% [markdown]
# **The fixes.** Read every future (`for f in as_completed(fs): f.result()` inside `try`), or consume
# `executor.map`'s iterator completely (it raises at the first failed item), or attach a
# done-callback that records failures as they happen, as below. A callback that only logs must not
# raise: an exception in a callback is logged and ignored.

# %%
failures = []


def record_failure(future):
    if not future.cancelled() and future.exception() is not None:
        failures.append(repr(future.exception()))  # list.append is safe from any thread


with ThreadPoolExecutor(max_workers=2) as pool:
    for n in range(5):
        pool.submit(tasks.fail_on, n, 3).add_done_callback(record_failure)
print("failures seen by the callback:", failures)

# %% [markdown]
# ## 5. Stopping work
#
# Two ways of stopping early look as if they stop a pool and do not, quite. Here is precisely what
# each does (read `shutdown` in CPython's `concurrent/futures/thread.py` and `process.py`, and
# `Executor.map` in `_base.py`).
#
# - **Leaving a `with` block** (at its end, by `break` or `return`, or by an exception) calls
#   `shutdown(wait=True)` and nothing else: it cancels nothing, so every task submitted and not
#   cancelled, running or still queued, runs to the end before the line after the block runs.
# - **`shutdown(cancel_futures=True)`** (Python 3.9+) first cancels every task still queued, then (with
#   `wait=True`) waits for the running ones: a running task cannot be stopped from outside (a thread
#   cannot be killed). With `wait=False` it returns at once, and the running tasks go on in the
#   background.
#
# The first cell compares the two shutdowns on one worker with ten 0.05 s tasks, one running and nine
# queued.

# %%
def ten_tasks_then(stop):
    pool = ThreadPoolExecutor(max_workers=1)
    futures = [pool.submit(tasks.sleep_for, 0.05) for _ in range(10)]
    time.sleep(0.02)  # the first task is running, nine are queued
    with stopwatch() as sw:
        stop(pool)
    return sw.elapsed, sum(f.cancelled() for f in futures)


waited, cancelled_none = ten_tasks_then(lambda pool: pool.shutdown(wait=True))
stopped, cancelled_some = ten_tasks_then(lambda pool: pool.shutdown(wait=True, cancel_futures=True))
print(f"shutdown(wait=True):                      {fmt_seconds(waited)}")
print(f"shutdown(wait=True, cancel_futures=True): {fmt_seconds(stopped)}")
claim(cancelled_none == 0 and cancelled_some >= 7,
      "plain shutdown ran every queued task; cancel_futures=True cancelled the queued ones",
      cancelled=cancelled_some)
claim(stopped * 3 < waited, "so it returned at least 3x sooner", waited=waited, stopped=stopped)

# %% [markdown]
# - **`map`'s iterator** holds the futures whose results it has not handed you yet. When it stops
#   early (a task's exception is raised from it, its `timeout` expires, or the iterator is closed:
#   by `.close()`, or in CPython as soon as its last reference goes, as after a `break` out of
#   `for x in pool.map(...)`), a `finally` block calls `cancel()` on each of them. `cancel()` only
#   works on a task that has not started: queued tasks are cancelled, running ones finish anyway and
#   their results are dropped. (A process pool also counts as running the few tasks it has already
#   sent towards its workers, up to `max_workers + 1`.) One catch: an iterator you never asked for a
#   result has not entered that `try` block yet, so dropping it cancels nothing, and every task runs.
#
# Below, one worker and ten 0.05 s tasks; we take the first result and `break`, once dropping the
# iterator and once keeping a reference to it until the `with` block ends. A `Tracer` records every
# task that ran.

# %% tags=["nbval-ignore-output"]
def first_result_then_break(keep_iterator):
    with Tracer() as tracer:
        with ThreadPoolExecutor(max_workers=1) as pool:
            results = pool.map(tracer.wrap(tasks.sleep_then_return), range(10), [0.05] * 10)
            for first in results:
                break
            if not keep_iterator:
                del results  # the last reference: the iterator is closed and cancels what is queued
        return len(tracer.records)


ran_dropped = first_result_then_break(keep_iterator=False)
ran_kept = first_result_then_break(keep_iterator=True)
print(f"iterator dropped after the first result: {ran_dropped} of 10 tasks ran")
print(f"iterator kept until the with block ended: {ran_kept} of 10 tasks ran")

# %%
claim(ran_dropped <= 2, "dropping map's iterator cancelled the queued tasks: only the first one and the "
                        "one already running ran", ran=ran_dropped)
claim(ran_kept == 10, "while the iterator was alive nothing was cancelled, and the with block waited for "
                      "all 10 tasks", ran=ran_kept)

# %% [markdown]
# **Interrupting a running cell** (the ■ button, or *Kernel → Interrupt*) raises `KeyboardInterrupt`
# in the main thread of the kernel. What happens next depends on the pool:
#
# - **Thread pool**: the main thread stops waiting, but the worker threads go on, and if the
#   interrupt lands inside a `with` block, leaving it waits for every queued task: the cell seems to
#   ignore you. Catch the interrupt and cancel the queue, as below.
# - **Process pool**: Jupyter sends the interrupt signal to the kernel's whole process group, so the
#   worker processes get it too. A worker that is running a task raises `KeyboardInterrupt` inside
#   it, and the pool hands that back as the task's exception. A worker that is waiting for its next
#   task exits, printing its own traceback (`Process ForkProcess-1:` ... `KeyboardInterrupt`), under
#   the cell or in the terminal that started Jupyter. Its pool is then broken: the pool's unfinished
#   tasks fail with `BrokenProcessPool`, and so does a later `submit`. A pool created inside the cell
#   with `with` goes away with the cell, so re-running the cell makes a fresh one; a pool you keep
#   open across cells may have to be created again.
#
# The cell's own error is one line, `KeyboardInterrupt: you interrupted this cell at line N ...`:
# `futureslab.setup()` replaces IPython's long traceback through `concurrent.futures` with it. The
# cell still counts as failed, so *Run all* stops there; re-run it before the cells below.
#
# We do not press the real button here (a notebook must run unattended); instead the loop raises
# `KeyboardInterrupt` itself after three results, exactly where the button would have.

# %%
def fetch_until_interrupted(n_items=20, interrupt_after=3):
    pool = ThreadPoolExecutor(max_workers=2)
    futures = [pool.submit(tasks.sleep_then_return, n, 0.05) for n in range(n_items)]
    got = []
    try:
        for f in as_completed(futures, timeout=30):
            got.append(f.result())
            if len(got) == interrupt_after:
                raise KeyboardInterrupt  # stands in for the interrupt button
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)  # cancel the queue, let 2 running tasks end
        print(f"interrupted after {len(got)} results")
    else:
        pool.shutdown()
    return futures


interrupted = fetch_until_interrupted()
claim(sum(f.cancelled() for f in interrupted) >= 10,
      "at least 10 of the 20 tasks were cancelled instead of run to the end",
      cancelled=sum(f.cancelled() for f in interrupted))

# %% [markdown]
# ## 6. One HTTP session, many threads
#
# A `requests.Session` keeps connections open and reuses them, which saves a TCP handshake per request.
# Its connection pool keeps at most **10 connections per host** by default (`pool_maxsize=10`). Share it
# between 20 threads and the 11th to 20th concurrent requests each open a fresh connection, and when they
# finish, urllib3 throws the connection away with the warning *"Connection pool is full, discarding
# connection"*. The work gets done, slower, with a log full of warnings.
#
# (`session.trust_env = False` below tells requests to ignore proxy settings from the environment: a
# proxy cannot reach the server on *this* machine's 127.0.0.1.)
#
# We count urllib3's log records instead of letting them print, so the cell output stays readable.

# %%
class CountUrllib3Logs(logging.Handler):
    """While used in `with`, count urllib3's new connections and its 'pool is full' warnings."""

    def __enter__(self):
        self.new_connections = self.pool_full = 0
        self.logger = logging.getLogger("urllib3.connectionpool")
        self.saved = (self.logger.level, self.logger.propagate)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False  # keep the records out of the cell's output
        self.logger.addHandler(self)
        return self

    def emit(self, record):
        text = record.getMessage()
        self.new_connections += text.startswith("Starting new HTTP")
        self.pool_full += text.startswith("Connection pool is full")

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]


def fetch_many(get, n_requests=60, workers=20):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda i: get(f"{api.url}/posts/{i % 100 + 1}").json()["id"],
                             range(n_requests)))


def new_session(pool_maxsize=None):
    session = requests.Session()
    session.trust_env = False
    if pool_maxsize is not None:
        session.mount("http://", HTTPAdapter(pool_maxsize=pool_maxsize))
    return session


with new_session() as shared, CountUrllib3Logs() as default_logs:
    ids_default = fetch_many(lambda url: shared.get(url, timeout=10))
with new_session(pool_maxsize=20) as shared, CountUrllib3Logs() as sized_logs:
    ids_sized = fetch_many(lambda url: shared.get(url, timeout=10))

for name, logs in (("default pool (10)", default_logs), ("pool_maxsize=20", sized_logs)):
    print(f"{name:<18} 'pool is full' warnings: {'some' if logs.pool_full else 'none'}")

# %%
claim(ids_default == ids_sized == [i % 100 + 1 for i in range(60)], "both ways fetched every post")
claim(default_logs.pool_full > 0,
      "20 threads on a default session overflowed its pool: urllib3 threw connections away",
      warnings=default_logs.pool_full, connections=default_logs.new_connections)
claim(sized_logs.pool_full == 0 and sized_logs.new_connections <= 20,
      "with pool_maxsize=20: no warnings, at most one connection per thread",
      warnings=sized_logs.pool_full, connections=sized_logs.new_connections)

# %% [markdown]
# **The fixes.** Size the pool to the number of threads (`HTTPAdapter(pool_maxsize=workers)`, as
# above), or give each thread its own session with `threading.local()`. `requests` does not promise
# that a `Session` is thread-safe (changing its headers or cookies from several threads is asking for
# trouble), so a session per thread is the cautious choice when threads log in or set cookies:
#
# ```python
# local = threading.local()
#
# def session_for_this_thread():
#     if not hasattr(local, "session"):
#         local.session = new_session()
#     return local.session
# ```
#
# ## Your turn
#
# Two exercises. Run each checker cell as it is first: it says *not solved yet*. If you are stuck,
# run it again after a try: a hint appears with the verdict. The worked solutions are kept apart;
# uncomment `checks.solution(...)` to print one.
#
# ### Exercise 05.2: stop at the first error
#
# Complete `stop_at_first_error(items, task, workers)`: run `task(item)` for every item on a thread
# pool with `workers` threads; as soon as any task fails, cancel everything not yet started and return
# `(results, error)`, where `results` maps each item that succeeded to its result and `error` is the
# first exception. If nothing fails, return `(results, None)`. (Sections 4 and 5 hold the pieces.)
# The checker uses `tasks.unlucky`, which sleeps `n × 0.05` s and fails for `n == 3`.

# %%
def stop_at_first_error(items, task, workers):
    raise NotImplementedError


# %%
check.stop_at_first_error(stop_at_first_error)

# %%
# checks.solution("05.2")

# %% [markdown]
# ### Exercise 05.3: one session, many threads, no warnings
#
# Complete `fetch_titles(base_url, post_ids, workers)`: fetch `base_url + "/posts/<id>"` for every id
# on `workers` threads and return the titles in the order of `post_ids`. Reuse connections through
# `requests` sessions, without "Connection pool is full" warnings (section 6), and bypass proxies for
# the local server. The checker runs it with 20 threads against its own local API.

# %%
def fetch_titles(base_url, post_ids, workers):
    raise NotImplementedError


# %%
check.fetch_titles(fetch_titles)

# %%
# checks.solution("05.3")

# %% [markdown]
# ## Recap
#
# - A thread pool starts threads only when no thread is idle, up to `max_workers`, and reuses them:
#   the cost is per task and per thread actually started. Choose the count by how many tasks wait at
#   once, not by the CPU count.
# - Never wait inside a task for work queued behind it in the same pool; share no mutable state
#   without a lock (better: return results); read every future.
# - A `with` block waits for everything not cancelled; `shutdown(cancel_futures=True)` and a dropped
#   `map` iterator cancel only what has not started.
#
# **Next:** [06 · A real-world pipeline](06-real-world-pipeline.ipynb), where the fixes come together.

# %%
api.stop()  # every notebook stops what it started
