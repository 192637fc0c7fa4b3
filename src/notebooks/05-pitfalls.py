# Source of notebooks/05-pitfalls.ipynb (build with: python src/notebooks/build.py 05)

# %% [markdown]
# # 05 · Pitfalls
#
# **Why this matters.** `concurrent.futures` makes concurrency look like a one-line change, and most
# of the time it is. The rest of the time the program hangs, runs slower than before, loses an error
# without a word, or dies with a message that points nowhere near the cause. Each of those failures
# has a handful of well-known causes. This notebook makes each one happen on purpose (safely: every
# wait has a timeout, nothing is left hanging), explains it, measures it where it is about speed, and
# fixes it.
#
# **In this notebook you will**
# - recognise the pickling errors a process pool gives, including the one that only shows up on
#   macOS, Windows and newer Linux Pythons, and fix them;
# - measure when a pool is slower than a plain loop, and what more workers or bigger arguments cost;
# - provoke a deadlock, a lost update, a lost exception and a dead worker, and recover from each;
# - stop a pool early, share an HTTP session between threads, and choose `max_workers` by measuring.
#
# **Time:** about 35 minutes. **Prerequisites:** notebooks 01 to 04 (threads vs processes, futures,
# callbacks, `map` and `as_completed`).
#
# **Previous:** [04 · map vs as_completed](04-map-vs-as-completed.ipynb) ·
# **Next:** [06 · A real-world pipeline](06-real-world-pipeline.ipynb)

# %% [markdown]
# ## Set-up
#
# One cell imports everything and starts the local API (0.05 s per request). `CORES` is how many CPUs
# this notebook may use; several checks scale with it.

# %%
import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import sys
import tempfile
import threading
import time
from concurrent.futures import (FIRST_EXCEPTION, ProcessPoolExecutor, ThreadPoolExecutor,
                                as_completed, wait)
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import matplotlib.pyplot as plt
import requests
from requests.adapters import HTTPAdapter

import futureslab
from futureslab import checks, tasks
from futureslab.checks import nb05 as check
from futureslab.claims import claim, measure_until
from futureslab.server import LocalAPI
from futureslab.timing import (cpu_count, fmt_cores, fmt_seconds, fmt_speedup, free_cores, ideal_speedup,
                               measure, speedup, stopwatch, warm_up)
from futureslab.trace import Tracer

futureslab.setup()
api = LocalAPI(latency=0.05).start()
CORES = cpu_count()
# The start methods that are not fork, on this platform (all three exist on Linux and macOS).
NON_FORK = [m for m in ("spawn", "forkserver") if m in mp.get_all_start_methods()]
print("ready:", api.url)

# %% [markdown]
# ## 1. Pickling: what a process pool cannot send
#
# A `ProcessPoolExecutor` runs your function in *another* Python process. To get there, the function
# and its arguments are **pickled** (turned into bytes), sent through a pipe, and unpickled on the
# other side; the result comes back the same way. A function is pickled *by name*: the bytes say
# "the function `square` in module `futureslab.tasks`", and the worker imports that module to find it.
# So what can travel? Let us ask `pickle` directly about a few candidates.

# %%
def cube(n):
    """A perfectly ordinary function, defined in this notebook."""
    return n ** 3


def make_adder(k):
    def add_k(n):  # a nested function: it lives inside make_adder, not in any module
        return n + k
    return add_k


def pickles(obj) -> bool:
    try:
        pickle.dumps(obj)
        return True
    except Exception:  # PicklingError, TypeError or AttributeError depending on the object and Python
        return False


candidates = {
    "tasks.square (module level)": tasks.square,
    "cube (defined in this notebook)": cube,
    "lambda n: n * n": lambda n: n * n,
    "make_adder(10) (nested function)": make_adder(10),
    "partial(tasks.add, b=10)": partial(tasks.add, b=10),
    "threading.Lock()": threading.Lock(),
    "a generator": (n for n in range(3)),
    "a list of numbers": [1, 2, 3],
}
for name, obj in candidates.items():
    print(f"{name:<34} {'pickles' if pickles(obj) else 'cannot be pickled'}")

# %% [markdown]
# Three surprises hide in that table:
#
# - **A lambda and a nested function cannot be pickled at all**: they have no name a worker could
#   import. (The article this course grew from passes `lambda r: count_primes(*r)` to a process pool:
#   that code fails on every platform.)
# - **`cube` pickles fine**, because only its *name* (`__main__.cube`) is written down. Whether the
#   worker can find `__main__.cube` depends on how the worker was started, as we will see next.
# - **Some arguments cannot travel**: a lock, a generator, an open file or a database connection
#   belong to this process. `functools.partial` of a module-level function *can* travel: it is the
#   picklable way to fix some arguments.
#
# ### The lambda in a pool
#
# Here is what a learner sees. The error comes out of `result()` (we always wait with a timeout in this
# notebook). Its exact wording changes between Python versions, so the next cell's output is not
# compared by the tests; the claim after it checks the part that does not change, the exception type.

# %% tags=["nbval-ignore-output"]
with ProcessPoolExecutor(max_workers=1) as pool:
    future = pool.submit(lambda n: n * n, 4)
    try:
        future.result(timeout=20)
        lambda_error = None
    except Exception as exc:
        lambda_error = exc
print(f"{type(lambda_error).__name__}: {lambda_error}")

# %%
claim(isinstance(lambda_error, pickle.PicklingError),
      "a lambda sent to a process pool fails with a PicklingError, under every start method",
      got=type(lambda_error).__name__)

# %% [markdown]
# ### A notebook function under spawn and forkserver
#
# A worker process starts in one of three ways (the *start method*):
#
# - **fork** (the default on Linux up to Python 3.13): the worker is a copy of this kernel, so it
#   already holds everything defined here, *if* it was defined before the worker was started;
# - **spawn** (the default on macOS and Windows): a fresh Python that imports the modules it needs;
# - **forkserver** (the default on Linux from Python 3.14): workers are copied from a small, clean
#   server process started early, which knows nothing about your notebook.
#
# (Forking a process that runs threads, as every Jupyter kernel does, can copy a lock some thread
# was holding and leave the child stuck. Python 3.12+ warns about it with a `DeprecationWarning`,
# which notebooks hide by default; it is why Linux moves to forkserver in 3.14.)
#
# Under spawn and forkserver the worker looks for `__main__.cube`, but its `__main__` is not this
# notebook, so unpickling fails *inside the worker*, the worker dies, and the pool is broken. The
# notebook's cell only shows `BrokenProcessPool: A process in the process pool was terminated
# abruptly...`. The real cause, `AttributeError: Can't get attribute 'cube' on <module '__main__'...>`,
# is printed by the dying worker on its own standard error: in JupyterLab it usually appears as red
# text under the cell (sometimes under a later one); in a terminal it appears in the terminal. So if
# you see `BrokenProcessPool` right after moving to a Mac, look for that text.
#
# The cell below runs `cube` in a pool that explicitly uses each non-fork start method, whatever this
# notebook's own start method is, so it shows the same thing on every machine. To show you the
# workers' last words here, it sends the standard error of this process and of any worker it starts
# to a temporary file for a moment (`os.dup2` on file descriptor 2), then prints the line that matters.
# Exact wording varies between Python versions, so the tests do not compare this cell's output.

# %% tags=["nbval-ignore-output"]
@contextlib.contextmanager
def workers_stderr():
    """Capture what this process and the workers it starts meanwhile write to file descriptor 2."""
    captured = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read().decode(errors="replace"))


def run_in_fresh_pool(method, fn, *args):
    """Run fn(*args) in a new 1-worker pool started with `method`; return the result or the error."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context(method)) as pool:
        try:
            return pool.submit(fn, *args).result(timeout=30)
        except Exception as exc:
            return exc


with workers_stderr() as captured:
    notebook_fn = {m: run_in_fresh_pool(m, cube, 3) for m in NON_FORK}
    time.sleep(0.5)  # let the dying workers finish writing (and Jupyter show it, if it goes there)
module_fn = {m: run_in_fresh_pool(m, tasks.square, 3) for m in NON_FORK}
causes = [line for line in captured[0].splitlines() if line.startswith("AttributeError")]
print("what the dying workers wrote on stderr:")
for line in causes:
    print("   ", line)

# %%
def describe(outcome):
    return type(outcome).__name__ if isinstance(outcome, Exception) else repr(outcome)


for m in NON_FORK:
    print(f"{m:<10}  cube(3) from the notebook: {describe(notebook_fn[m]):<17}"
          f"  tasks.square(3) from a module: {describe(module_fn[m])}")

# %%
claim(all(isinstance(out, BrokenProcessPool) for out in notebook_fn.values()),
      "under spawn and forkserver a notebook-defined function breaks the pool")
claim(any("cube" in line for line in causes),
      "the real cause, an AttributeError about `cube`, was only on a worker's stderr")
claim(all(out == 9 for out in module_fn.values()),
      "the same call works when the function comes from an importable module")

# %% [markdown]
# **The fix.** Put every function a process pool runs in a `.py` module next to your notebook and
# import it: that is why this course keeps its tasks in `futureslab.tasks`. Instead of a lambda that
# fixes an argument, use `functools.partial(module_fn, ...)` or pass several iterables to
# `executor.map(fn, xs, ys)`. Instead of an unpicklable argument (a lock, a connection, an open file),
# send plain data (a path, an id, a number) and let the worker open its own resource, for example in
# the pool's `initializer=`.
#
# The last case, an unpicklable argument, gives an error whose type and message are stable:

# %%
with ProcessPoolExecutor(max_workers=1) as pool:
    try:
        pool.submit(tasks.identity, threading.Lock()).result(timeout=20)
    except TypeError as exc:
        print("TypeError:", exc)

# %% [markdown]
# ## 2. Tasks too small to pay for a pool, and too many workers
#
# Every task sent to a pool costs bookkeeping: a `Future`, a queue, a thread switch, and for processes
# pickling both ways and a trip through a pipe. If the task itself is smaller than that, the pool is
# pure loss. Let us double 2,000 numbers, which takes microseconds in a plain loop.

# %%
ITEMS = list(range(2000))


def with_threads(workers):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(tasks.double, ITEMS))


def with_processes(workers):
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(tasks.double, ITEMS))


tiny = {
    "plain loop": measure(lambda: [tasks.double(n) for n in ITEMS], repeat=5),
    "4 threads": measure(with_threads, 4, repeat=3),
    "32 threads": measure(with_threads, 32, repeat=3),
    "2 processes": measure(with_processes, 2, repeat=1),
}
for name, timing in tiny.items():
    print(f"{name:<12} {fmt_seconds(timing.best)}")

# %%
slowest_ratio = min(tiny[k].best for k in tiny if k != "plain loop") / tiny["plain loop"].best
claim(slowest_ratio >= 10, "for tasks this small every pool is at least 10x slower than a plain loop",
      ratio=slowest_ratio)

# %% [markdown]
# **When does a pool start to pay?** The answer depends on the size of each task. Below, a process pool
# with one worker per core counts primes in chunks of four sizes, from about 0.1 ms to about 50 ms of
# work each, and we compare it with the same chunks counted in a plain loop. The pool is started and
# warmed up once, outside the timing, so the curve shows the per-task cost only. The best a pool can
# reach is one task per *free* core (notebook 01 measured the free cores with `free_cores`; it is
# measured here again, since another program may be busy right now).

# %%
SIZES = [60, 600, 6_000, 30_000]  # numbers to test per task: roughly 0.1, 1, 10 and 50 ms of work
LABELS = dict(zip(SIZES, ["~0.1 ms", "~1 ms", "~10 ms", "~50 ms"]))
N_TASKS = 3 * CORES


def chunks(size):
    return [(1_000_000 + i * size, 1_000_000 + (i + 1) * size) for i in range(N_TASKS)]


def size_curve(pool):
    """{size: (seconds per task in a loop, pool speed-up)}, and the free cores measured just after."""
    out = {}
    for size in SIZES:
        work = chunks(size)
        seq = measure(lambda: [tasks.count_primes_in(c) for c in work], repeat=2)
        par = measure(lambda: list(pool.map(tasks.count_primes_in, work)), repeat=2)
        out[size] = (seq.best / N_TASKS, speedup(seq, par))
    return out, free_cores(pool, CORES)


def size_curve_holds(result):
    curve, free = result
    return curve[SIZES[0]][1] < 1 and curve[SIZES[-1]][1] >= 0.6 * ideal_speedup(CORES, "cpu", cores=free)


with ProcessPoolExecutor(max_workers=CORES) as pool:
    warm_up(pool, CORES)  # every worker started before anything is timed
    curve, free = measure_until(lambda: size_curve(pool), size_curve_holds)
for size, (per_task, factor) in curve.items():
    print(f"tasks of {LABELS[size]:<7}: pool speed-up {fmt_speedup(factor)}")
print(f"the pool's workers could use {fmt_cores(free)}")

# %%
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.semilogx([c[0] * 1000 for c in curve.values()], [c[1] for c in curve.values()], "o-",
            label=f"process pool, {CORES} workers")
ax.axhline(1, color="grey", ls="--", label="break-even: as fast as a plain loop")
ax.set_xlabel("work per task (ms, log scale)")
ax.set_ylabel("speed-up over a plain loop")
ax.set_ylim(bottom=0)
ax.legend(loc="lower right")
ax.set_title("A pool pays only when each task is big enough")
plt.show()

# %%
claim(curve[SIZES[0]][1] < 1, "with ~0.1 ms tasks the plain loop beats the process pool",
      speedup=curve[SIZES[0]][1])
claim(curve[SIZES[-1]][1] >= 0.6 * ideal_speedup(CORES, "cpu", cores=free),
      "with ~50 ms tasks the process pool reached at least 60% of min(workers, free cores)",
      speedup=curve[SIZES[-1]][1], free_cores=free)

# %% [markdown]
# **Too many workers.** For CPU work, a process per core is the ceiling: a third process on two cores
# only takes turns with the other two, and each extra worker costs start-up time and memory. Here the
# same CPU work (`3 × CORES` tasks of ~35 ms) runs on 1 worker, one per core, and two per core, counting
# the pool's start-up, as a real program would pay it.

# %%
WORK = [(2_000_000 + i * 20_000, 2_000_000 + (i + 1) * 20_000) for i in range(3 * CORES)]


def run_cpu(workers):
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(tasks.count_primes_in, WORK))


def worker_curve():
    return {w: measure(run_cpu, w, repeat=2).best for w in (1, CORES, 2 * CORES)}


workers_curve = measure_until(worker_curve, lambda c: c[2 * CORES] >= 0.85 * c[CORES], attempts=2)
for label, w in (("1 worker", 1), ("one per core", CORES), ("two per core", 2 * CORES)):
    print(f"{label:<13} {fmt_seconds(workers_curve[w])}")

# %%
claim(workers_curve[2 * CORES] >= 0.85 * workers_curve[CORES],
      "two workers per core were no faster than one per core (within 15%)",
      one_per_core=workers_curve[CORES], two_per_core=workers_curve[2 * CORES])

# %% [markdown]
# **What it means.** Before reaching for a pool, estimate the size of one task. Below about a
# millisecond, do it in a plain loop (or batch many items into one task: `map(..., chunksize=)`, see
# notebook 04). For CPU work, more processes than cores adds start-up and memory, not speed.
#
# ## 3. Large arguments and results: send less
#
# Everything sent to a process is pickled, copied through a pipe and unpickled; so is everything that
# comes back. Threads share memory and copy nothing. Here a worker sums two million numbers, once sent
# as a list, once sent as a `range` (three integers that *describe* the same numbers; the worker
# still has to produce the numbers from it, so that is not free either).

# %%
N = 2_000_000
numbers = list(range(N))
print(f"pickled, the list takes {len(pickle.dumps(numbers)) // 1_000_000} MB, "
      f"the range {len(pickle.dumps(range(N)))} bytes")


def measure_sending(pool):
    return {
        "sum here, no pool": measure(sum, numbers, repeat=3),
        "send the list": measure(lambda: pool.submit(sum, numbers).result(), repeat=3),
        "send a range": measure(lambda: pool.submit(sum, range(N)).result(), repeat=3),
        "send the list back": measure(lambda: pool.submit(tasks.identity, numbers).result(), repeat=3),
    }


def as_claimed(t):
    return (t["send the list"].best >= 2 * t["send a range"].best
            and t["send the list"].best > t["sum here, no pool"].best
            and t["send the list back"].best > t["send the list"].best)


with ProcessPoolExecutor(max_workers=1) as pool:
    pool.submit(tasks.identity, 0).result()  # start the worker before timing
    sending = measure_until(lambda: measure_sending(pool), as_claimed)
for name, timing in sending.items():
    print(f"{name:<19} {fmt_seconds(timing.best)}")

# %%
claim(sending["send the list"].best >= 2 * sending["send a range"].best,
      "sending a description (a range) is at least 2x faster than sending the data",
      list_s=sending["send the list"].best, range_s=sending["send a range"].best)
claim(sending["send the list"].best > sending["sum here, no pool"].best,
      "shipping the data to a worker took longer than just doing the sum here")
claim(sending["send the list back"].best > sending["send the list"].best,
      "a large result costs as much again on the way back")

# %% [markdown]
# **The fix: send less.** Send a description of the work (a range, a file name, a row range, a URL)
# and let the worker load the data itself; return a summary, not everything you computed. When the data
# truly must be shared, `multiprocessing.shared_memory` avoids the copy, at the price of managing it
# yourself.
#
# ## 4. Deadlock: a task that waits for the pool it runs in
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
# ## 5. Shared mutable state: the lost update
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
# ## 6. The exception nobody looks at
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
# ## 7. A worker process that dies
#
# A worker process can die in the middle of a task: a crash in a C extension, the out-of-memory killer,
# `os._exit()`. The pool cannot tell which task killed it, so it marks itself **broken**: every future
# not yet finished fails with `BrokenProcessPool`, and every later `submit` raises it too. Below,
# `tasks.crash_on(n)` returns `n * 2` after 0.05 s, except for `n == 3`, which ends its worker.

# %%
with ProcessPoolExecutor(max_workers=2) as pool:
    crash_futures = {n: pool.submit(tasks.crash_on, n, 3) for n in range(10)}
    wait(crash_futures.values(), timeout=30)
    try:
        pool.submit(tasks.double, 1)
        submit_after = "accepted"
    except BrokenProcessPool:
        submit_after = "BrokenProcessPool"

finished = {n: f.result() for n, f in crash_futures.items() if f.exception() is None}
lost = [n for n, f in crash_futures.items() if isinstance(f.exception(), BrokenProcessPool)]
print("a new submit to the broken pool:", submit_after)

# %% tags=["nbval-ignore-output"]
print("finished before the crash:", finished)
print("lost with the pool:       ", lost)

# %%
claim(3 in lost and len(finished) + len(lost) == 10,
      "every task either finished or failed with BrokenProcessPool, the culprit among the lost")
claim(len(lost) > 1, "innocent tasks were lost along with the one that crashed", lost=len(lost))

# %% [markdown]
# **Recovery.** A broken pool cannot be repaired: make a new one. Re-run the lost tasks, but if you
# resubmit them all together the culprit breaks the new pool too and takes the innocent ones with it
# again. One safe way is to retry the lost tasks *one at a time* in a one-worker pool, starting a fresh
# pool after each crash: the innocent ones complete, and the one that crashes twice is set aside, with
# its reason, for a human to look at.

# %%
def retry_one_at_a_time(items, fn, timeout=30):
    """Run fn(item) for each item, one at a time, in a fresh 1-worker pool after each crash.
    Returns (results, crashed): a dict of item -> result and the items that crashed their worker."""
    results, crashed, todo = {}, [], list(items)
    while todo:
        with ProcessPoolExecutor(max_workers=1) as pool:
            while todo:
                item = todo.pop(0)
                try:
                    results[item] = pool.submit(fn, item).result(timeout=timeout)
                except BrokenProcessPool:
                    crashed.append(item)
                    break  # this pool is broken: leave the `with`, start a new one
    return results, crashed


recovered, crashed = retry_one_at_a_time(lost, partial(tasks.crash_on, bad=3))
all_results = {**finished, **recovered}
print("crashed again, set aside:", crashed)
claim(sorted(all_results) == [n for n in range(10) if n != 3]
      and all(all_results[n] == 2 * n for n in all_results),
      "after recovery every innocent task has its right result; nothing is unaccounted for")

# %% [markdown]
# ## 8. Stopping work
#
# Leaving a `with ThreadPoolExecutor(...)` block calls `shutdown(wait=True)`: it waits for **every**
# task, queued ones included, even when the block is left by an exception. To stop early, call
# `shutdown(cancel_futures=True)` (Python 3.9+): queued tasks are cancelled, running ones finish
# (a running thread cannot be killed). With `wait=False` it returns at once, and whatever was not
# cancelled goes on running in the background.

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
# **Interrupting a running cell** (the ■ button, or *Kernel → Interrupt*) raises `KeyboardInterrupt`
# in the main thread of the kernel. What happens next depends on the pool:
#
# - **Thread pool**: the main thread stops waiting, but the worker threads go on, and if the
#   interrupt lands inside a `with` block, leaving it waits for every queued task: the cell seems to
#   ignore you. Catch the interrupt and cancel the queue, as below.
# - **Process pool**: the interrupt signal reaches the whole process group, so the worker processes
#   get it too: running tasks fail with `KeyboardInterrupt` (queued ones still run), and *every* live
#   process pool in the kernel may be broken afterwards (the next `submit` raises `BrokenProcessPool`). Create pools inside the cell
#   with `with`, and after an interrupt, re-run the cell so it makes a fresh pool.
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
# ## 9. One HTTP session, many threads
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
# ## 10. Choosing `max_workers`: defaults, then measure
#
# If you leave `max_workers` out, each executor picks a default from the CPU count of this machine:
# `ThreadPoolExecutor` uses `min(32, CPUs + 4)`, `ProcessPoolExecutor` uses the number of CPUs (at most
# 61 on Windows). From Python 3.13 both count only the CPUs this process may use
# (`os.process_cpu_count()`), before that all the CPUs of the machine (`os.cpu_count()`). The numbers
# below are this machine's, so yours will differ (the pools are made without running anything, so no
# worker starts; `_max_workers` is a private attribute, read here only to show the default).

# %% tags=["nbval-ignore-output"]
cpus = os.process_cpu_count() if hasattr(os, "process_cpu_count") else os.cpu_count()
with ThreadPoolExecutor() as t_pool, ProcessPoolExecutor() as p_pool:
    default_threads, default_processes = t_pool._max_workers, p_pool._max_workers
print(f"CPUs counted: {cpus}")
print(f"ThreadPoolExecutor():  {default_threads} threads")
print(f"ProcessPoolExecutor(): {default_processes} processes")

# %%
claim(default_threads == min(32, cpus + 4), "the thread pool default is min(32, CPUs + 4) on this Python")
claim(default_processes == (min(cpus, 61) if sys.platform == "win32" else cpus),
      "the process pool default is the CPU count on this Python")

# %% [markdown]
# Neither default knows your work. For CPU work, one process per core is the ceiling (section 2). For
# I/O, the right number depends on how long each request waits and how much the other side can take,
# so **measure**: run a realistic batch with a few worker counts and look for the knee of the curve.
# Here, 24 requests to the local API (0.05 s each).
#
# What is the best 24 threads can do? Not one wait: the waits overlap, but each request also needs a
# little Python work (building it, parsing the answer, and here the server's side too, since it runs in
# this process), and under the GIL that work takes turns. So we also time the same 24 requests with
# **no wait at all** (`?latency=0`): that is the Python work alone. The best is one wait plus that work.

# %%
POSTS_TO_FETCH = list(range(1, 25))
WORKER_COUNTS = [2, 4, 8, 16, 24, 48]
WAIT = api.latency


def fetch_with(workers, wait=True):
    paths = [f"/posts/{n}" if wait else f"/posts/{n}?latency=0" for n in POSTS_TO_FETCH]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(tasks.get_json, paths))


def io_curve_holds(c):
    return c[24] <= 1.5 * (WAIT + c["no wait"]) and c[48] >= 0.8 * c[24]


io_curve = {}
for _attempt in range(3):  # keep each point's best run: a busy moment spoils one run, not the curve
    for w in WORKER_COUNTS:
        io_curve[w] = min(io_curve.get(w, 60.0), measure(fetch_with, w, repeat=1).best)
    io_curve["no wait"] = min(io_curve.get("no wait", 60.0), measure(fetch_with, 24, False, repeat=1).best)
    if io_curve_holds(io_curve):
        break
print(f"24 threads: {fmt_seconds(io_curve[24])}, {fmt_speedup(io_curve[2] / io_curve[24])} faster than 2 threads "
      f"(one wait + the Python work: {fmt_seconds(WAIT + io_curve['no wait'])})")

fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.plot(WORKER_COUNTS, [io_curve[w] for w in WORKER_COUNTS], "o-", label="measured")
ax.axhline(WAIT + io_curve["no wait"], color="grey", ls="--", label="one wait + the Python work of 24")
ax.set_xlabel("max_workers")
ax.set_ylabel("seconds for 24 requests")
ax.set_ylim(bottom=0)
ax.legend()
ax.set_title("Time falls until every request has its own thread, then stays flat")
plt.show()

# %%
claim(io_curve[24] <= 1.5 * (WAIT + io_curve["no wait"]),
      "24 threads overlapped all 24 waits: at most 1.5x one wait plus the Python work of 24 requests",
      t24=io_curve[24], one_wait_plus_work=WAIT + io_curve["no wait"])
claim(io_curve[48] >= 0.8 * io_curve[24], "48 threads were no faster than 24: there are only 24 requests",
      t24=io_curve[24], t48=io_curve[48])

# %% [markdown]
# Look at where the measured curve meets the dashed line: from 24 threads on, every request has its
# own thread, and what is left is one wait plus the Python work, which more threads cannot overlap.
# That knee is where the curve flattens: beyond it extra workers only cost memory (and, against a real
# server, may get you rate-limited). Notebook 07 measures such curves properly.
#
# ## Your turn
#
# Three exercises. Each has a starter cell to complete and a checker cell; run the checker as is first:
# it says *not solved yet*. Stuck? `checks.solution("05.1")` prints a worked solution.
#
# ### Exercise 05.1: add ten, on processes, without a lambda
#
# Complete `add_ten_in_processes(numbers, add)` so that it returns `[add(n, 10) for n in numbers]`,
# computed in a `ProcessPoolExecutor`. `add` is a module-level function of two arguments (the checker
# passes a wrapped `tasks.add` that records where it ran). A lambda will not do (section 1).

# %%
def add_ten_in_processes(numbers, add):
    raise NotImplementedError


# %%
check.add_ten_in_processes(add_ten_in_processes)

# %% [markdown]
# ### Exercise 05.2: stop at the first error
#
# Complete `stop_at_first_error(items, task, workers)`: run `task(item)` for every item on a thread
# pool with `workers` threads; as soon as any task fails, cancel everything not yet started and return
# `(results, error)`, where `results` maps each item that succeeded to its result and `error` is the
# first exception. If nothing fails, return `(results, None)`. (Section 6 and section 8 hold the
# pieces.) The checker uses `tasks.unlucky`, which sleeps `n × 0.05` s and fails for `n == 3`.

# %%
def stop_at_first_error(items, task, workers):
    raise NotImplementedError


# %%
check.stop_at_first_error(stop_at_first_error)

# %% [markdown]
# ### Exercise 05.3: one session, many threads, no warnings
#
# Complete `fetch_titles(base_url, post_ids, workers)`: fetch `base_url + "/posts/<id>"` for every id
# on `workers` threads and return the titles in the order of `post_ids`. Use `requests` sessions so
# connections are reused, without "Connection pool is full" warnings (section 9), and bypass proxies
# for the local server. The checker runs it with 20 threads against its own local API.

# %%
def fetch_titles(base_url, post_ids, workers):
    raise NotImplementedError


# %%
check.fetch_titles(fetch_titles)

# %% [markdown]
# ## Recap
#
# - Process pools need picklable, importable functions and small arguments: put tasks in a module,
#   use `partial` instead of lambdas, send descriptions rather than data.
# - Measure before adding workers: tiny tasks, too many workers and a full pool waiting on itself all
#   make things slower or stop them entirely.
# - Read every future, share no mutable state, and expect workers to die: recover with a new pool.
#
# **Next:** [06 · A real-world pipeline](06-real-world-pipeline.ipynb), where the fixes come together.

# %%
api.stop()  # every notebook stops what it started
