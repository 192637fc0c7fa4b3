# Source of notebooks/05a-pitfalls-processes.ipynb (build with: python src/notebooks/build.py 05a)

# %% [markdown]
# # 05a · Pitfalls with processes
#
# **Why this matters.** Moving work from a thread pool to a `ProcessPoolExecutor` looks like a
# one-word change, and most of the time it is. The rest of the time the pool dies with a message that
# points nowhere near the cause, runs slower than a plain loop, or spends its time copying data.
# Each of those failures has a handful of well-known causes. This notebook makes each one happen on
# purpose (safely: every wait has a timeout, nothing is left running), explains it, measures it where
# it is about speed, and fixes it. The next notebook, 05b, does the same for threads, stopping and
# lost errors.
#
# **In this notebook you will**
# - recognise the pickling errors a process pool gives, including the one that only shows up on
#   macOS, Windows and newer Linux Pythons, and find the worker's real error message;
# - measure when a process pool is slower than a plain loop, and what more processes than cores buy;
# - see what sending large arguments and results to a worker costs, and send less;
# - watch a worker process die, and recover every innocent task.
#
# **Time:** about 45 minutes (reading, running and the exercise). **Prerequisites:** notebooks 01
# to 04 (threads vs processes, futures, callbacks, `map` and `as_completed`).
#
# **Previous:** [04 · map vs as_completed](04-map-vs-as-completed.ipynb) ·
# **Next:** [05b · Pitfalls with threads, stopping and errors](05b-pitfalls-threads-and-errors.ipynb)

# %% [markdown]
# ## Set-up
#
# One cell imports everything. `CORES` is how many CPUs this notebook may use; `NON_FORK` lists the
# start methods other than fork that this platform has (section 1 uses them).

# %%
import multiprocessing as mp
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import matplotlib.pyplot as plt

import futureslab
from futureslab import checks, tasks
from futureslab.plots import log_axis
from futureslab.checks import nb05 as check
from futureslab.claims import claim, cpu_race, measure_until
from futureslab.lesson01 import BEYOND_GAIN_MAX
from futureslab.pitfalls import fmt_us, run_in_fresh_pool, worker_last_words, workers_per_core
from futureslab.timing import cpu_count, fmt_seconds, fmt_speedup, measure

futureslab.setup()
CORES = cpu_count()
NON_FORK = [m for m in ("spawn", "forkserver") if m in mp.get_all_start_methods()]
print("ready")

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
# Here is what a learner sees. `submit` accepts the lambda; the pickling happens afterwards, in the
# pool's background thread, so the error comes out of `result()` (we always wait with a timeout in
# this notebook). Its exact wording changes between Python versions, so the next cell's output is not
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
# - **forkserver** (the default from Python 3.14 on Linux and the other POSIX systems except macOS):
#   workers are copied from a small server process, which `multiprocessing` starts the first time a
#   pool needs it, and which knows nothing about your notebook.
#
# (Forking a process that runs threads, as every Jupyter kernel does, can copy a lock some thread
# was holding and leave the child stuck. Python 3.12+ warns about it with a `DeprecationWarning`,
# which notebooks hide by default; it is why 3.14 moved Linux and the other POSIX systems but macOS
# to forkserver.)
#
# Under spawn and forkserver the worker looks for `__main__.cube`, but its `__main__` is not this
# notebook, so unpickling fails *inside the worker*, the worker dies, and the pool is broken. Your
# code only gets `BrokenProcessPool: A process in the process pool was terminated abruptly...`. The
# real cause, `AttributeError: Can't get attribute 'cube' on <module '__main__' ...>`, is written by
# the dying worker on its standard error, which it shares with the kernel. Where you see it:
#
# - **JupyterLab, Notebook or VS Code on Linux or macOS** (ipykernel 6 or newer): the kernel forwards
#   it to the notebook, as red text under the cell that is running (or under the last cell that ran,
#   if it arrives later), and also to the terminal that started Jupyter;
# - **on Windows, or with an older ipykernel**: only in that terminal.
#
# So if you see `BrokenProcessPool` right after moving to a Mac or to Python 3.14, look for that text.
# The next cell runs `cube` in a pool that explicitly uses each non-fork start method, whatever this
# notebook's own start method is, so it shows the same thing on every machine; the worker's last
# words should appear right under it (the tests do not compare this cell's output).

# %% tags=["nbval-ignore-output"]
notebook_fn = {m: run_in_fresh_pool(m, cube, 3) for m in NON_FORK}
module_fn = {m: run_in_fresh_pool(m, tasks.square, 3) for m in NON_FORK}

# %% [markdown]
# (`run_in_fresh_pool(method, fn, *args)` from `futureslab.pitfalls` makes a one-worker pool with
# that start method, runs the call, and returns its result or the exception it raised.)

# %%
def describe(outcome):
    return type(outcome).__name__ if isinstance(outcome, Exception) else repr(outcome)


for m in NON_FORK:
    print(f"{m:<10}  cube(3) from the notebook: {describe(notebook_fn[m]):<17}"
          f"  tasks.square(3) from a module: {describe(module_fn[m])}")

# %%
claim(all(isinstance(out, BrokenProcessPool) for out in notebook_fn.values()),
      "under spawn and forkserver a notebook-defined function breaks the pool")
claim(all(out == 9 for out in module_fn.values()),
      "the same call works when the function comes from an importable module")

# %% [markdown]
# **The worker's last words, captured.** If the red text did not show (you run this under a test
# runner, on Windows, or it landed elsewhere), here is the same failure in a fresh Python: a
# subprocess whose `__main__` defines `cube` in its own code, as a notebook does (`python -c`, so
# there is no file a worker could import it from). `worker_last_words(method)` captures what that
# subprocess and its workers write on standard error and picks out the error line. It also runs the
# same script under fork, where the worker is a copy of the parent and finds `cube`.

# %% tags=["nbval-ignore-output"]
last_words = {m: worker_last_words(m) for m in mp.get_all_start_methods()}
for m, death in last_words.items():
    print(f"{m:<10} result: {death.outcome:<17} worker's stderr: {death.cause or '(nothing)'}")

# %%
claim(all(last_words[m].outcome == "BrokenProcessPool" and last_words[m].cause is not None
          and last_words[m].cause.startswith("AttributeError") and "cube" in last_words[m].cause
          for m in NON_FORK),
      "the real cause, an AttributeError about `cube`, was only on the dying worker's stderr")
claim("fork" not in last_words or last_words["fork"].outcome == "27",
      "under fork the same script works: the worker is a copy of the parent, `cube` included")

# %% [markdown]
# Working under fork is the trap: a notebook function in a process pool runs on your Linux machine
# with Python 3.13 and breaks on a colleague's Mac, on Windows, or after an upgrade to 3.14.
#
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
# ## 2. Tasks too small to pay for a process pool
#
# Every task sent to a process pool costs bookkeeping: a `Future`, a queue, pickling both ways and a
# trip through a pipe to another process. If the task itself is smaller than that, the pool is pure
# loss. Let us double 2,000 numbers, which takes microseconds in a plain loop (a duration under a
# millisecond is printed in microseconds, µs).

# %%
ITEMS = list(range(2000))


def with_processes(workers):
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(tasks.double, ITEMS))


plain = measure(lambda: [tasks.double(n) for n in ITEMS], repeat=5)
pooled = measure(with_processes, CORES, repeat=1)
print(f"plain loop:                 {fmt_us(plain.best)}")
print(f"process pool, one per core: {fmt_seconds(pooled.best)}")

# %%
claim(pooled.best >= 10 * plain.best,
      "for tasks this small the process pool is at least 10x slower than a plain loop",
      ratio=pooled.best / plain.best)

# %% [markdown]
# **When does a pool start to pay?** It depends on the size of each task. Below, a process pool with
# one worker per core counts primes in chunks of four sizes, from about 0.03 ms to about 50 ms of work
# each, and we compare it with the same chunks counted in a plain loop (a few hundred of the tiniest
# chunks, so that their run lasts long enough to time; a few per worker of the others). `cpu_race` (from
# `futureslab.claims`) starts and warms up the pool first, so only the per-task cost is timed; it also
# runs the same chunks on a thread pool, which cannot compute pure Python in parallel (notebook 01),
# and watches how busy other programs keep the cores, so the claims below are judged against what
# this machine can give right now.

# %%
SIZES = [10, 600, 6_000, 30_000]  # numbers to test per task: roughly 0.03, 1, 10 and 50 ms of work
LABELS = dict(zip(SIZES, ["~0.03 ms", "~1 ms", "~10 ms", "~50 ms"]))
N_TASKS = {size: 300 * CORES if size == SIZES[0] else 3 * CORES for size in SIZES}


def chunks(size):
    return [(1_000_000 + i * size, 1_000_000 + (i + 1) * size) for i in range(N_TASKS[size])]


races = {size: cpu_race(tasks.count_primes_in, chunks(size), workers=CORES, rounds=2,
                        budget=4 if size == SIZES[-1] else 0)
         for size in SIZES}
for size, race in races.items():
    print(f"tasks of {LABELS[size]:<7}: pool speed-up {fmt_speedup(race.speedup('parallel'))}")

# %%
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
per_task_ms = [r.times["sequential"] / N_TASKS[size] * 1000 for size, r in races.items()]
ax.plot(per_task_ms, [r.speedup("parallel") for r in races.values()], "o-", label=f"process pool, {CORES} workers")
log_axis(ax, [t for t in (0.01, 0.1, 1, 10, 100, 1000) if min(per_task_ms) / 10 < t < max(per_task_ms) * 10])
ax.axhline(1, color="grey", ls="--", label="break-even: as fast as a plain loop")
ax.set_xlabel("work per task (ms, log scale)")
ax.set_ylabel("speed-up over a plain loop")
ax.set_ylim(bottom=0)
ax.legend(loc="lower right")
ax.set_title("A pool pays only when each task is big enough")
plt.show()

# %% [markdown]
# *Look at where the curve crosses the dashed line: below it, the plain loop wins; the further right
# (bigger tasks), the closer the pool gets to one task per core at a time.*

# %%
claim(races[SIZES[0]].speedup("parallel") < 1, "with ~0.03 ms tasks the plain loop beats the process pool",
      speedup=races[SIZES[0]].speedup("parallel"))
races[SIZES[-1]].claim_parallel("with ~50 ms tasks the process pool computed in parallel: at least 60% of "
                                "the ideal speed-up, and clearly faster than threads on the same work")

# %% [markdown]
# **More processes than cores.** For CPU work, a process per core is the ceiling: a third process on
# two cores only takes turns with the other two. Here the same CPU work (`8 × CORES` tasks of a few
# tens of ms) runs on one worker per core and on two per core, both pools started and warmed up before
# the clock runs (each extra process also costs start-up time and memory, paid once per pool). Other
# programs can spoil this comparison: on a busy machine more processes win a bigger share of the
# CPU from *them*, so the claim is judged only while the machine is quiet.

# %%
WORK = [(2_000_000 + i * 10_000, 2_000_000 + (i + 1) * 10_000) for i in range(8 * CORES)]

per_core, room = workers_per_core(tasks.count_primes_in, WORK, CORES, rounds=3)
print(f"one per core ({CORES} workers): {fmt_seconds(per_core[CORES])}")
print(f"two per core ({2 * CORES} workers): {fmt_seconds(per_core[2 * CORES])}")

# %%
claim(per_core[CORES] / per_core[2 * CORES] <= BEYOND_GAIN_MAX,
      "two workers per core gained at most 1.5x over one per core (waiting work would gain 2x)",
      needs_cores=room.granted, room=room,
      one_per_core=per_core[CORES], two_per_core=per_core[2 * CORES])

# %% [markdown]
# **What it means.** Before reaching for a process pool, estimate the size of one task. Below about a
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
# ## 4. A worker process that dies
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
# ## Your turn
#
# Run the checker cell as it is first: it says *not solved yet*. If you are stuck, run it again after
# a try: a hint appears with the verdict. The worked solution is kept apart; uncomment
# `checks.solution("05.1")` to print it.
#
# ### Exercise 05.1: add ten, on processes, without a lambda
#
# Complete `add_ten_in_processes(numbers, add)` so that it returns `[add(n, 10) for n in numbers]`,
# computed in a `ProcessPoolExecutor`. `add` is a module-level function of two arguments (the checker
# passes a wrapped `tasks.add` that records where it ran). A lambda will not do, and neither will a
# helper function defined in this notebook: it would work only under fork (section 1).

# %%
def add_ten_in_processes(numbers, add):
    raise NotImplementedError


# %%
check.add_ten_in_processes(add_ten_in_processes)

# %%
# checks.solution("05.1")

# %% [markdown]
# ## Recap
#
# - Process pools need picklable, importable functions: put tasks in a module, use `partial` instead
#   of lambdas. A notebook function works only under fork; under spawn and forkserver the pool breaks
#   and the real error is on the worker's standard error.
# - A task must be worth a trip to another process (milliseconds of work, not microseconds), one
#   process per core is the ceiling for CPU work, and a task should take and return descriptions and
#   summaries, not bulk data.
# - A dead worker breaks the whole pool: make a new one and retry the lost tasks one at a time.
#
# **Next:** [05b · Pitfalls with threads, stopping and errors](05b-pitfalls-threads-and-errors.ipynb):
# too many threads, deadlock, races, lost errors and stopping a pool early.
