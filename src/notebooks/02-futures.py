# Source of notebooks/02-futures.ipynb (build with: python src/notebooks/build.py 02)

# %% [markdown]
# # 02 · Futures
#
# **Why this matters.** `executor.submit(fn, *args)` does not give you the answer: it gives you a
# **Future**, a receipt for an answer that may not exist yet. Everything else in `concurrent.futures`
# (`map`, `as_completed`, `wait`, callbacks) is built from futures, and most surprises (a timeout that
# does not stop anything, an error that vanishes, a `cancel()` that returns False) come from not
# knowing what a future can and cannot do.
#
# **In this notebook you will**
# - watch futures move through their states: pending, running, finished, cancelled;
# - read results and exceptions with `result()`, `exception()` and timeouts, on every Python version;
# - learn what `cancel()` and a timeout do *not* do, and how a running task can really be stopped;
# - wait for groups of futures with `wait()` and its three `return_when` modes, on a timeline.
#
# **Time:** about 65 minutes. **Prerequisites:** [01 · Threads vs processes](01-threads-vs-processes.ipynb).
#
# **Previous:** [01 · Threads vs processes](01-threads-vs-processes.ipynb) ·
# **Next:** [03 · Callbacks](03-callbacks.ipynb)

# %% [markdown]
# ## Set-up
#
# This notebook needs no web API: its tasks sleep for known times (`sleep_then_return`, `unlucky`),
# so that *when* things happen is predictable and the lesson can check it.

# %%
import concurrent.futures as cf
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures import (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, ProcessPoolExecutor,
                                ThreadPoolExecutor, wait)

import matplotlib.pyplot as plt

import futureslab
from futureslab import checks
from futureslab.checks import nb02 as check
from futureslab.claims import Room, claim
from futureslab.cores import LoadMeter
from futureslab.tasks import fail, sleep_for, sleep_then_return, unlucky
from futureslab.timing import fmt_seconds, stopwatch
from futureslab.trace import Tracer

futureslab.setup()
print("ready")

# %% [markdown]
# ## 1. `submit` returns at once
#
# `pool.submit(fn, *args)` puts the call in the pool's queue and immediately hands back a `Future`.
# Your code carries on; the answer is collected later with `future.result()`, which waits if needed.

# %%
with ThreadPoolExecutor(max_workers=2) as pool:
    with stopwatch() as submitting:
        future = pool.submit(sleep_then_return, "hello", 0.3)
    print("submit gave back a", type(future).__name__, "| done yet?", future.done())
    with stopwatch() as waiting:
        print("result():", future.result())
print(f"submit took {fmt_seconds(submitting)}, result() waited {fmt_seconds(waiting)}")

# %%
claim(submitting.elapsed < 0.1 and waiting.elapsed > 0.15,
      "submit() returned without waiting; result() did the waiting",
      submit=submitting.elapsed, result=waiting.elapsed)

# %% [markdown]
# ## 2. The four states, observed live
#
# A future is always in one of four states, and four public methods tell you which:
#
# | state | `running()` | `done()` | `cancelled()` |
# |---|---|---|---|
# | **pending**: queued, not started | False | False | False |
# | **running** | True | False | False |
# | **finished**: returned a value *or raised* | False | True | False |
# | **cancelled** (only possible while pending) | False | True | True |
#
# To watch them without racing the clock we use a pool with **one** worker and a task that holds the
# worker until we open a gate (a `threading.Event`). While it holds the worker, everything submitted
# after it must stay pending. (A function defined in a notebook is fine here: threads need no pickling.)

# %%
def state(future):
    """The state of a future, read only through its public methods."""
    if future.cancelled():
        return "cancelled"
    if future.done():
        return "finished"
    if future.running():
        return "running"
    return "pending"


started, gate = threading.Event(), threading.Event()


def hold_worker(name):
    """Tell the notebook we started, then wait (at most 10 s) for the gate to open."""
    started.set()
    if not gate.wait(timeout=10):
        raise RuntimeError("the gate never opened")
    return name


def snapshot(moment, futures):
    print(f"{moment:<34}", "  ".join(f"{name}={state(f):<9}" for name, f in futures.items()))


with ThreadPoolExecutor(max_workers=1) as pool:
    futures = {"a": pool.submit(str.upper, "a")}
    futures["a"].result()  # a has finished
    futures["b"] = pool.submit(hold_worker, "b")
    assert started.wait(timeout=10), "b should have started"
    futures["c"] = pool.submit(str.upper, "c")
    futures["d"] = pool.submit(str.upper, "d")
    snapshot("1. b holds the only worker", futures)
    cancel_d, cancel_b = futures["d"].cancel(), futures["b"].cancel()
    print(f"   d.cancel() -> {cancel_d}    b.cancel() -> {cancel_b}")
    snapshot("2. after both cancel() calls", futures)
    gate.set()  # let b finish; c then runs; d never will
    results = futures["b"].result(timeout=10), futures["c"].result(timeout=10)
    snapshot("3. after the gate opened", futures)

# %% [markdown]
# `cancel()` succeeded on **d** because it was still pending, and failed on **b** because it was
# running: a running task cannot be cancelled, it runs to its end. Asking a cancelled future for its
# result raises `CancelledError`:

# %%
try:
    futures["d"].result()
except cf.CancelledError:
    print("d.result() raised CancelledError")
print("results of b and c:", results)

# %%
claim(cancel_d and not cancel_b, "cancel() succeeded while pending and failed once running")
claim([state(f) for f in futures.values()] == ["finished", "finished", "finished", "cancelled"],
      "a, b and c finished; d was cancelled and never ran")

# %% [markdown]
# **A process pool runs ahead of you.** To keep its workers busy, a `ProcessPoolExecutor` moves a few
# queued calls (up to one more than it has workers) into the pipe to the workers early, and marks
# them *running* as it does. Those can no longer be cancelled, although they have not started yet.
# The tracer shows when each task really started; let us compare with what `running()` said.

# %%
with Tracer() as tracer:
    task = tracer.wrap(sleep_then_return)
    with ProcessPoolExecutor(max_workers=1) as pool:
        procs = [pool.submit(task, f"p{i}", 0.5) for i in range(4)]
        time.sleep(0.1)  # give the pool a moment to queue work for its worker
        asked_at = time.perf_counter() - tracer.t0
        said_running = [f.running() for f in procs]
        cancelled = [f.cancel() for f in procs]
    starts = {r.task: r.start for r in tracer.records}

# %% [markdown]
# How many futures get marked early depends on how fast the worker picks up its first call, so the
# exact lists below vary from run to run (the check after them does not):

# %% tags=["nbval-ignore-output"]
print("running() said:     ", said_running)
print("cancel() succeeded: ", cancelled)
print("tasks that ran:     ", sorted(starts))

# %%
claim(said_running[1] and not cancelled[1] and starts["p1"] > asked_at,
      "with one worker, a second task already said running() and refused cancel() "
      "before it had started")
claim(cancelled[-1] and "p3" not in starts, "the last task was still pending: cancel() worked, it never ran")

# %% [markdown]
# ## 3. Results, exceptions, and a small program with both
#
# Here is a common first program with futures: four tasks that sleep a little, one of which fails.
# `unlucky(n, unit)` sleeps `n * unit` seconds and returns `n * 2`, except that it raises `ValueError`
# for `n == 3`.

# %%
NUMBERS = [1, 2, 3, 4]
with ThreadPoolExecutor(max_workers=3) as pool:
    futures = [pool.submit(unlucky, n, 0.2) for n in NUMBERS]
    print("done right after submit:", [f.done() for f in futures])
    for n, future in zip(NUMBERS, futures):
        try:
            print(f"task {n}: result {future.result(timeout=2)}")
        except ValueError as exc:
            print(f"task {n}: raised ValueError: {exc}")
        except cf.TimeoutError:
            print(f"task {n}: no result within 2 s")

# %% [markdown]
# The task's exception did not crash the pool or the loop. The worker caught it and **stored it in the
# future**; `result()` raised it again in *our* thread, where `except ValueError` could handle it.
# `exception()` hands you the stored exception without raising it (or `None` if the task succeeded):

# %%
failed = futures[2]
print("done():", failed.done(), "| exception():", repr(failed.exception()))
print("for task 1, exception():", futures[0].exception())

# %% [markdown]
# And this is what happens if nobody catches it: `result()` re-raises the task's own exception.

# %% tags=["raises-exception"]
failed.result()

# %% [markdown]
# **From a process pool, the worker's traceback comes along.** The exception is pickled in the worker
# and raised again in your process, so its own traceback only shows your side (`result()` and the
# pool's internals). The pool attaches the worker's traceback, as text, as the exception's
# `__cause__`, an exception of the private type `_RemoteTraceback`. An error message prints it first,
# then "The above exception was the direct cause of the following exception:", then your side. To
# read it in code, look at `exc.__cause__`:

# %%
with ProcessPoolExecutor(max_workers=1) as pool:
    try:
        pool.submit(fail, "broken in the worker").result()
    except ValueError as exc:
        error, remote = exc, exc.__cause__
print("caught:", repr(error))
print("its __cause__ is a", type(remote).__name__)
print("the worker's traceback ends with:")
for line in str(remote).strip().strip('"').strip().splitlines()[-2:]:
    print("   ", line.strip())

# %%
claim(type(remote).__name__ == "_RemoteTraceback" and "raise ValueError(message)" in str(remote),
      "the worker's traceback came back as the exception's __cause__")

# %% [markdown]
# The flip side: **a failed task whose future you never read fails silently.** Nothing is printed. If
# you `submit` work and throw the futures away, you will never hear about its errors: always keep the
# futures and read each one's `result()` (or `exception()`).

# %% [markdown]
# ## 4. Timeouts
#
# `result(timeout=s)` and `exception(timeout=s)` wait at most `s` seconds, then raise a
# **TimeoutError**. Which one is a trap:
#
# - From Python 3.11 on, `concurrent.futures.TimeoutError` *is* the builtin `TimeoutError`.
# - On Python 3.10 and older it is a different class, and `except TimeoutError:` does **not** catch it:
#   the timeout escapes your handler and ends the program.
#
# So write `except concurrent.futures.TimeoutError:` (as in section 3): it is right on every version.

# %%
claim((cf.TimeoutError is TimeoutError) == (sys.version_info >= (3, 11)),
      "concurrent.futures.TimeoutError is the builtin TimeoutError exactly on Python 3.11 and later")

# %% [markdown]
# **What a timeout does not do.** It stops *you* waiting. It does not stop the task: the worker thread
# carries on, the future later finishes, and the pool's `with` block waits for it at the end.

# %%
with Tracer() as tracer, ThreadPoolExecutor(max_workers=1) as pool:
    task = tracer.wrap(sleep_then_return)
    future = pool.submit(task, "late answer", 0.6)
    try:
        future.result(timeout=0.2)
    except cf.TimeoutError:
        gave_up_at = time.perf_counter() - tracer.t0
        print(f"result(timeout=0.2) gave up after {fmt_seconds(gave_up_at)}")
    print("still running after the timeout:", future.running())
    print("and when it finishes, result() is:", repr(future.result()))

fig, ax = plt.subplots(figsize=(8, 1.8), layout="constrained")
tracer.plot(ax=ax, title="result(timeout=0.2) on a 0.6 s task")
ax.axvline(gave_up_at, color="red", linestyle="--", label="we stopped waiting")
ax.legend(loc="upper right", fontsize=10)
plt.show()

# %% [markdown]
# *Look at:* the bar runs on past the red line: `result(timeout=)` stopped *our waiting*, not the task.

# %%
late = tracer.records[0]
claim(late.end > gave_up_at + 0.2 and future.result() == "late answer",
      "the task kept running after the timeout and finished normally",
      gave_up_at=gave_up_at, task_end=late.end)

# %% [markdown]
# **To really stop a running task** you need its cooperation, or a process you may kill; `cancel()`
# only removes work that has not started.
#
# *Cooperation* means the task checks a flag between steps. A `threading.Event` is the usual flag:
# the task asks `stop.is_set()` (or waits with `stop.wait(seconds)`, which returns early when the flag
# is set) and returns what it has so far. Here a task that would take 3 s is told to stop after 0.2 s:

# %%
def count_slowly(stop, steps=30, step_seconds=0.1):
    """Count up to `steps`, one step every `step_seconds`, unless `stop` is set first."""
    done = 0
    for _ in range(steps):
        if stop.wait(step_seconds):  # True as soon as someone sets the flag
            break
        done += 1
    return done


stop = threading.Event()
with ThreadPoolExecutor(max_workers=1) as pool, stopwatch() as whole:
    counting = pool.submit(count_slowly, stop)
    time.sleep(0.2)
    stop.set()  # ask the task to stop; cancel() would return False, it is running
    steps_done = counting.result()
print(f"the task returned before its 30 steps: {steps_done < 30}; "
      f"the with block ended after {fmt_seconds(whole)}")

# %%
claim(steps_done < 30 and whole.elapsed < 1.5,
      "the running task saw the flag and returned early, so the with block did not wait 3 s",
      steps=steps_done, seconds=whole.elapsed)

# %% [markdown]
# *A process you may kill*: a task in a worker process can be stopped from outside by ending the
# process. Python 3.14 added `ProcessPoolExecutor.terminate_workers()` and `kill_workers()` (SIGTERM
# and SIGKILL on POSIX; on Windows both end the process at once). They stop every worker, running
# tasks included; the futures of those tasks fail with `BrokenProcessPool`, and the pool cannot be
# used again. Before 3.14 there is no public way: run such a task in a `multiprocessing.Process` of
# your own, which has `terminate()`. The next cell runs the 3.14 methods when your Python has them.

# %% tags=["nbval-ignore-output"]
print(sys.version.split()[0])
if hasattr(ProcessPoolExecutor, "terminate_workers"):
    pool = ProcessPoolExecutor(max_workers=1)
    long_task = pool.submit(sleep_for, 30)
    time.sleep(0.3)  # give the worker time to pick the task up
    with stopwatch() as stopping:
        pool.terminate_workers()
        outcome = long_task.exception(timeout=10)
    pool.shutdown()
    print(f"terminate_workers(): the 30 s task ended after {fmt_seconds(stopping)} with "
          f"{type(outcome).__name__}")
    claim(stopping.elapsed < 5 and isinstance(outcome, BrokenProcessPool),
          "terminate_workers() stopped a running 30 s task at once; its future got BrokenProcessPool")
else:
    print("this Python has no terminate_workers() (added in 3.14): nothing to run here")

# %% [markdown]
# ## 5. Waiting for many: `wait()`
#
# `wait(futures, timeout=None, return_when=ALL_COMPLETED)` blocks until a condition holds, then returns
# two sets, `(done, not_done)`:
#
# - `FIRST_COMPLETED`: as soon as any one future finishes (or is cancelled);
# - `FIRST_EXCEPTION`: as soon as any one raises (if none does, when all are done);
# - `ALL_COMPLETED`: when every one is done.
#
# Unlike `result()`, `wait()` **never raises on a timeout**: it returns whatever is done by then.
# Five tasks on five threads: task `n` takes `n` × 0.2 s, and task 3 fails. We call `wait()` four times
# on the same futures and mark on the timeline when each call returned.

# %%
def numbers(fs):
    return sorted(futures[f] for f in fs)


returned_at = {}
with LoadMeter() as load, Tracer() as tracer, ThreadPoolExecutor(max_workers=5) as pool:
    task = tracer.wrap(unlucky)
    futures = {pool.submit(task, n, 0.2): n for n in range(1, 6)}
    for how in ("timeout=0.05", FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        if how == "timeout=0.05":
            done, not_done = wait(futures, timeout=0.05)
        else:
            done, not_done = wait(futures, return_when=how)
        returned_at[how] = time.perf_counter() - tracer.t0
        print(f"{how:<16} returned after {fmt_seconds(returned_at[how])}: "
              f"done {numbers(done)}, not done {numbers(not_done)}")

# %%
fig, ax = plt.subplots(figsize=(9, 2.8), layout="constrained")
tracer.plot(ax=ax, title="five tasks (task 3 fails) and four calls to wait()")
for (how, t), color in zip(returned_at.items(), ["grey", "tab:blue", "tab:red", "tab:green"]):
    ax.axvline(t, color=color, linestyle="--", label=how)
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=10, title="wait() returned", title_fontsize=10)
plt.show()

# %% [markdown]
# *Look at:* where each dashed line meets the bars: each `wait()` returned at the first moment its
# condition held, and the tasks carried on regardless.

# %% [markdown]
# The next checks compare times with the tasks' known durations, which holds only if the machine ran
# our threads on time: while the cell ran, a `LoadMeter` measured how much CPU *other* programs used.
# If they left less than a core free, a check says "cannot be shown right now" instead of judging.

# %%
t, room = returned_at, Room.now(load)
claim(t["timeout=0.05"] < 0.15, "wait(timeout=) returned early without raising",
      needs_cores=1, room=room, returned=t["timeout=0.05"])
claim(0.15 < t[FIRST_COMPLETED] < t[FIRST_EXCEPTION] < t[ALL_COMPLETED],
      "FIRST_COMPLETED returned first, then FIRST_EXCEPTION, then ALL_COMPLETED",
      first_completed=t[FIRST_COMPLETED], first_exception=t[FIRST_EXCEPTION],
      all_completed=t[ALL_COMPLETED])
claim(abs(t[FIRST_EXCEPTION] - 0.6) < 0.15 and abs(t[ALL_COMPLETED] - 1.0) < 0.2,
      "FIRST_EXCEPTION returned when task 3 failed, ALL_COMPLETED when the slowest task ended",
      needs_cores=1, room=room, first_exception=t[FIRST_EXCEPTION], all_completed=t[ALL_COMPLETED])

# %% [markdown]
# Note that `wait()` only *sorts* the futures: the failed one sits in `done` like the others, and you
# still read each one's `result()` or `exception()`. `as_completed()` and `map()`, notebook 04's
# topics, are the other two ways to collect many results.

# %% [markdown]
# ## Your turn
#
# Replace `raise NotImplementedError`, run the cell, then the checker cell below it. Each checker runs
# your function with a thread pool and a traced task whose duration it knows, so it can tell whether
# the tasks overlapped and when your function returned. A hint appears when the answer is not right
yet; the worked solutions are in a cell at the end of the exercises.
#
# ### Exercise 02.1: start every task, wait for none
#
# Write `start_all(pool, task, items)`: submit `task(item)` for every item to `pool` and return the
# list of futures, in the order of the items, **without waiting** for any of them.

# %%
def start_all(pool, task, items):
    raise NotImplementedError


# %%
check.start_all(start_all)

# %% [markdown]
# ### Exercise 02.2: a result, or a default after a timeout
#
# Write `result_or(future, timeout, default)`: return the future's result if it is ready within
# `timeout` seconds, otherwise `default`. If the task raised an exception, let it reach the caller
# (do not hide it). It must work on Python 3.10 too.

# %%
def result_or(future, timeout, default):
    raise NotImplementedError


# %%
check.result_or(result_or)

# %% [markdown]
# ### Exercise 02.3: the first result wins
#
# Write `first_done(pool, task, items)`: run `task(item)` for every item on `pool`, return the result
# of whichever finishes **first**, and cancel the tasks that have not started yet so they never run.

# %%
def first_done(pool, task, items):
    raise NotImplementedError


# %%
check.first_done(first_done)

# %%
# Stuck? Uncomment a line to see a worked solution (try first!).
# checks.solution("02.1")
# checks.solution("02.2")
# checks.solution("02.3")

# %% [markdown]
# ## Recap
#
# - `submit` returns a Future at once; `result()` waits for it and re-raises the task's exception.
# - `cancel()` works only while pending; a timeout stops your waiting, never the task; catch
#   `concurrent.futures.TimeoutError` to be right on every Python. A running task stops when it
#   checks a flag you set, or when its process ends (3.14: `terminate_workers()`).
# - `wait()` sorts futures into done and not done by `FIRST_COMPLETED`, `FIRST_EXCEPTION` or
#   `ALL_COMPLETED`, and never raises.
#
# **Next:** [03 · Callbacks](03-callbacks.ipynb): run code the moment a future finishes. (Every pool here was closed by
# its `with` block, so nothing is left running.)
