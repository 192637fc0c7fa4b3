# Source of notebooks/03-callbacks.ipynb (build with: python src/notebooks/build.py 03)

# %% [markdown]
# # 03 · Callbacks
#
# **Why this matters.** A future tells you *that* a task will finish; a *done-callback* lets you act
# the moment it does, without a loop in your own code that waits for it: move a progress bar, add a
# result to a running total, cancel the rest when something fails. Callbacks are also where subtle bugs
# hide, because they run on threads you did not choose, and an exception in one vanishes into a log.
#
# **In this notebook you will**
# - attach a callback with `add_done_callback` and find out which thread runs it (it depends!);
# - see what happens when a callback raises, and what a callback gets for a cancelled future;
# - drive a live progress indicator from callbacks, by hand and with `tqdm`;
# - add up results from callbacks, watch updates get lost without a lock, and fix it;
# - practise all three in exercises.
#
# **Time:** about 65 minutes. **Prerequisites:** [02 · Futures](02-futures.ipynb) (submit, `result()`,
# `cancel()`).
#
# **Previous:** [02 · Futures](02-futures.ipynb) · **Next:** [04 · map vs as_completed](04-map-vs-as-completed.ipynb)

# %% [markdown]
# ## Set-up
#
# One cell imports what this notebook uses and starts the local API (0.05 s per request plus up to
# 0.1 s of random extra, so requests finish in a jumbled order, as they do on a real network).

# %%
import os
import sys
import threading
import time
from concurrent.futures import CancelledError, ProcessPoolExecutor, ThreadPoolExecutor

import matplotlib.pyplot as plt
from tqdm import tqdm

import futureslab
from futureslab import checks
from futureslab.checks import nb03 as check
from futureslab.claims import claim
from futureslab.lessons import callback_errors
from futureslab.server import LocalAPI
from futureslab.tasks import fetch_post, sleep_then_return, square, unlucky
from futureslab.trace import Tracer

futureslab.setup()
api = LocalAPI(latency=0.05, jitter=0.1, seed=3).start()
print("ready")

# %% [markdown]
# ## 1. A function to call when the future is done
#
# `future.add_done_callback(fn)` asks the future to call `fn(future)` once it is finished: with a
# result, with an exception, or cancelled. The callback gets the future itself (not the result), so it
# can ask `future.result()`, `future.exception()` or `future.cancelled()`. Its return value is ignored.
#
# **Which thread runs it?** The documentation promises only a thread of *your* process, and that a
# callback attached to a future that is already done is called immediately. In practice that gives two
# very different cases. We name the pool's threads (`thread_name_prefix="worker"`) so they are easy to
# recognise.

# %%
def note_thread(future):
    """A done-callback: remember which thread called it, and what the task returned."""
    calls.append((threading.current_thread().name, future.result()))


calls = []
with ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker") as executor:
    future = executor.submit(sleep_then_return, "hello", 0.2)
    future.add_done_callback(note_thread)  # the task is still running: the callback waits
    print("right after add_done_callback, calls =", calls)
print("after the task finished,       calls =", calls)

# %% [markdown]
# Case 1: the future was still running, so the callback ran later, **in the worker thread** that
# finished the task (`worker_0`), not in ours. Case 2: if the future is *already* done when you attach
# the callback, there is nothing to wait for: `add_done_callback` calls it **at once, in your own
# thread**, before it returns.

# %%
calls = []
with ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker") as executor:
    future = executor.submit(square, 7)
    future.result()  # wait: now the future is done
    future.add_done_callback(note_thread)  # runs right here, inside this call
    print("right after add_done_callback, calls =", calls)

# %% [markdown]
# So the same callback can run on a worker thread or on yours, depending on a race you do not control
# (whether the task finished before you attached it). Write every callback so that either is fine:
# quick, thread-safe, and never waiting for something only your thread would do.
#
# **And with a process pool?** The task runs in another process, but the callback never does: it could
# not reach your variables there. The pool's *management thread*, a helper thread in your process,
# receives the result and runs the callbacks.

# %%
seen = []


def note_process(future):
    seen.append({"pid": os.getpid(), "thread": threading.current_thread()})


with ProcessPoolExecutor(max_workers=1) as executor:
    future = executor.submit(sleep_then_return, 49, 0.3)  # still running when the callback is added
    already_done = future.done()  # (if it were done, the callback would run right here, at once)
    future.add_done_callback(note_process)
    task_pid = executor.submit(os.getpid).result()  # where the tasks run

claim(seen[0]["pid"] == os.getpid() != task_pid,
      "the callback ran in the notebook's process, not in the worker process",
      callback_pid=seen[0]["pid"], notebook_pid=os.getpid(), worker_pid=task_pid)
claim((seen[0]["thread"] is threading.main_thread()) == already_done,
      "and on a helper thread of the pool, not on the notebook's main thread",
      already_done=already_done)

# %% [markdown]
# **`result()` and `wait()` do not wait for the callbacks.** When a task finishes, the future first
# stores the result and wakes everyone waiting on it, *then* calls its done-callbacks. So `result()`,
# `wait()` and `as_completed()` can hand you control while the callbacks are still running (or have not
# started). Here a callback that takes 0.3 s is attached while the task is still held at a gate:

# %%
callback_log = []


def slow_callback(future):
    time.sleep(0.3)  # e.g. writing the result somewhere
    callback_log.append("callback finished")


gate = threading.Event()
with ThreadPoolExecutor(max_workers=1) as executor:
    future = executor.submit(gate.wait, 5)  # held until we open the gate
    future.add_done_callback(slow_callback)  # attached while the task is still running
    gate.set()
    future.result()
    after_result = list(callback_log)
print("right after result() returned: ", after_result)
print("after the with block:          ", callback_log)

# %%
claim(after_result == [] and callback_log == ["callback finished"],
      "result() returned before the done-callback had finished; the with block waited for it")

# %% [markdown]
# The `with` block (that is, `shutdown(wait=True)`) waits for the pool's threads to end, and a worker
# thread runs a task's callbacks before it takes the next task, so after the block every callback of a
# thread pool has run. If you need the callbacks' work (a total, a progress count), read it after the
# pool has shut down, not right after `result()` or `wait()`. Exercise 03.2 checks this.

# %% [markdown]
# ## 2. When a callback raises
#
# A task's exception is kept in its future for you to collect. A *callback's* exception has nowhere to
# go: the future has finished already, and nobody is waiting for the callback. So `concurrent.futures`
# catches it, writes it to the `concurrent.futures` logger with a traceback ("exception calling
# callback for ..."), and carries on with the next callback. Your code never sees it, unless you look at
# the log. To show it here we catch that logger's records with a small handler (in your own program the
# traceback lands on stderr).

# %%
def buggy_callback(future):
    return 1 / 0  # a bug in the callback, not in the task


later = []
with callback_errors() as caught:
    with ThreadPoolExecutor(max_workers=1) as executor:
        future = executor.submit(sleep_then_return, 42, 0.1)
        future.add_done_callback(buggy_callback)
        future.add_done_callback(lambda f: later.append(f.result()))  # the next callback

print("the task's result:        ", future.result())
print("the next callback ran:    ", later == [42])
print("nothing was raised to us; the log got:")
for record in caught:
    print("   ", record.getMessage().split(" for ")[0], "->", record.exc_info[0].__name__)

# %% [markdown]
# **What it means:** a crashing callback fails *silently* as far as your program's flow goes. Keep
# callbacks tiny, and if one can fail, catch inside it and record the error somewhere you will look.

# %% [markdown]
# ## 3. Callbacks on cancelled futures
#
# A future cancelled while it waits in the queue is *done*, too, so its callbacks run, right away, in
# the thread that called `cancel()`. Calling `future.result()` on it raises `CancelledError`; inside a
# callback that error would just be logged and lost (section 2). So a callback that may see cancelled
# futures checks `future.cancelled()` first.
#
# To get a future that is still waiting, we give a one-worker pool a task that blocks until we open a
# gate, and queue a second one behind it.

# %%
def describe(future):
    """A callback that handles all three endings."""
    if future.cancelled():
        outcome = "cancelled"
    elif future.exception() is not None:
        outcome = f"failed: {future.exception()!r}"
    else:
        outcome = f"returned {future.result()!r}"
    labels.append((threading.current_thread().name, outcome))


labels = []
gate = threading.Event()
with ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker") as executor:
    blocker = executor.submit(gate.wait, 5)  # keeps the only worker busy until gate.set()
    queued = executor.submit(square, 3)  # waits in the queue
    queued.add_done_callback(describe)
    print("cancel() ->", queued.cancel())
    print("the callback already ran:", labels)
    gate.set()

try:
    queued.result()
except CancelledError:
    print("result() on it raises CancelledError")

# %% [markdown]
# The callback ran in `MainThread`, because *we* called `cancel()`. Had the callback called
# `result()` without checking, the `CancelledError` would have gone to the log:

# %%
def naive(future):
    print("result:", future.result())  # raises CancelledError for a cancelled future


gate = threading.Event()
with callback_errors() as caught:
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(gate.wait, 5)
        queued = executor.submit(square, 3)
        queued.add_done_callback(naive)
        queued.cancel()
        gate.set()
print("logged:", [record.exc_info[0].__name__ for record in caught])

# %% [markdown]
# ## 4. The printing callback, and what goes wrong with it
#
# A common first callback prints each result as it arrives. Here it is on two workers, for tasks
# 0 to 4 where task *n* waits *n* × 0.1 s and task 3 fails (`unlucky` from `futureslab.tasks`). The
# lines you see depend on timing, so this cell's output is not compared by the tests.

# %% tags=["nbval-ignore-output"]
def print_outcome(future):
    try:
        print(f"  done: {future.result()}")
    except ValueError as exc:
        print(f"  error: {exc}")


with ThreadPoolExecutor(max_workers=2) as executor:
    for n in range(5):
        executor.submit(unlucky, n, 0.1).add_done_callback(print_outcome)
print("the with block has ended")

# %% [markdown]
# It works, but look at what it relies on:
#
# - **Which thread prints is not yours.** Task 0 waits 0 s, so it may finish before
#   `add_done_callback` is reached, and then its callback runs in the main thread; the others run in
#   the two workers.
# - **Lines from different threads can interleave.** `print` writes the text and the newline
#   separately, so two callbacks that finish together can produce `done: 2done: 4` and two blank
#   line ends. Rare, so it passes every test until the day it does not.
# - **The order is the finish order**, so the output differs from run to run, and the lines do not say
#   which input each result belongs to.
# - **When the lines appear depends on the `with`.** Its exit waits for every task, and each callback
#   runs before its worker is free, so here every line is printed before `"the with block has
#   ended"`. Without the `with` (say `executor.shutdown(wait=False)`), the callbacks fire after your
#   code has moved on; in Jupyter their output then lands under whichever cell is running at the time.
#
# **The correction:** let callbacks only *record* (appending to a list is safe from any thread), keep
# the input next to each future, and print from your own thread once the `with` block has ended.

# %%
outcomes = []  # (input, outcome): list.append is thread-safe
with ThreadPoolExecutor(max_workers=2) as executor:
    for n in range(5):
        future = executor.submit(unlucky, n, 0.1)
        future.add_done_callback(
            lambda f, n=n: outcomes.append((n, f"error: {f.exception()}" if f.exception() else f.result())))

for n, outcome in sorted(outcomes):
    print(f"task {n}: {outcome}")

# %%
claim(len(outcomes) == 5, "every callback had run by the time the with block ended", callbacks=len(outcomes))

# %% [markdown]
# ## 5. A live progress indicator
#
# Progress is the classic use of a callback: each task that finishes moves the indicator one step, at
# the moment it finishes. Two callbacks can finish at the same moment, so the counter is updated, read
# and printed while holding a lock: that way the counts go up one by one and each line is printed
# whole. We fetch 12 posts from the local API on 4 threads, and also record when each update happened,
# to draw it.

# %%
POST_IDS = list(range(1, 13))


def run_with_text_progress(ids, workers=4):
    """Fetch the posts on `workers` threads; a done-callback prints "[###.....] k/n done" per post."""
    lock = threading.Lock()
    state = {"done": 0}
    progress_times = []
    total = len(ids)

    def on_done(future):
        with lock:  # count, read and print as one step
            state["done"] += 1
            done = state["done"]
            progress_times.append(time.perf_counter() - tracer.t0)
            print(f"[{'#' * done}{'.' * (total - done)}] {done}/{total} done")

    with Tracer() as tracer:
        traced = tracer.wrap(fetch_post)
        with ThreadPoolExecutor(max_workers=workers) as executor:
            futures = [executor.submit(traced, post_id) for post_id in ids]
            for future in futures:
                future.add_done_callback(on_done)
    return [f.result() for f in futures], tracer, progress_times


posts, tracer, progress_times = run_with_text_progress(POST_IDS)

# %% [markdown]
# **The picture.** Above, one bar per request on each of the four threads (jumbled by the API's random
# latency); below, the progress count stepping up. Each step sits exactly where a bar ends: the
# callback ran the moment its task finished, not when everything was over.

# %%
fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4), sharex=True, layout="constrained",
                                  height_ratios=[3, 2])
tracer.plot(ax=top, title="12 requests on 4 threads")
top.set_xlabel("")
bottom.step([0] + progress_times, range(len(progress_times) + 1), where="post")
bottom.set_ylabel("done")
bottom.set_xlabel("seconds since start")
plt.show()

# %% [markdown]
# *Look at:* each step of the lower line sits under the end of a bar above it.

# %%
last_end = max(r.end for r in tracer.records)
claim(len(progress_times) == len(POST_IDS) and progress_times[0] < last_end - 0.02,
      "the first progress step came while other requests were still running",
      first_step=progress_times[0], last_task_end=last_end)

# %% [markdown]
# **With a progress-bar library.** `tqdm` draws a proper bar; a callback calls `bar.update(1)`.
# tqdm serialises its *drawing* between threads, but `update()` adds to its counter without a lock,
# so we update under our own lock, as above. We write to `sys.stdout` and choose a bar format without
# the rate and the elapsed time, so the final line is the same on every run. (In JupyterLab you may
# prefer `from tqdm.auto import tqdm`, which draws a widget.) tqdm also starts a *monitor* thread that
# lives on after the bar is closed; we switch it off, since every thread we start should end.

# %%
tqdm.monitor_interval = 0  # no background monitor thread: it outlives the bar, and we don't need it


def run_with_tqdm(ids, workers=4):
    lock = threading.Lock()
    with tqdm(total=len(ids), desc="posts", file=sys.stdout, ncols=60, ascii=" #",
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}") as bar:

        def on_done(future):
            with lock:
                bar.update(1)

        with ThreadPoolExecutor(max_workers=workers) as executor:
            futures = [executor.submit(fetch_post, post_id) for post_id in ids]
            for future in futures:
                future.add_done_callback(on_done)
    return [f.result() for f in futures]


posts_again = run_with_tqdm(POST_IDS)
print("same posts as before:", posts_again == posts)

# %% [markdown]
# ## 6. Adding up results in callbacks: the lost update
#
# Suppose each callback adds its task's result to a running total. `total = total + value` is three
# steps: read the total, add, write it back. If another callback reads the total between our read and
# our write, one of the two additions is lost. In plain Python that window is tiny, which is why such
# bugs survive testing; any real work between the read and the write (a database call, a log line)
# widens it. We widen it with `time.sleep(0.001)`, a millisecond of "work" during which other threads
# run.
#
# 200 tasks on 8 threads, each returning its input; the total should be 0 + 1 + ... + 199 = 19900.

# %% tags=["nbval-ignore-output"]
VALUES = list(range(200))
EXPECTED = sum(VALUES)


def total_in_callbacks(values, lock=None, workers=8):
    """Add every task's result to a shared total from done-callbacks, with or without a lock."""
    state = {"total": 0}

    def add(future):
        if lock is not None:
            lock.acquire()
        try:
            current = state["total"]  # read
            time.sleep(0.001)  # other threads run here
            state["total"] = current + future.result()  # write back
        finally:
            if lock is not None:
                lock.release()

    with ThreadPoolExecutor(max_workers=workers) as executor:
        for value in values:
            executor.submit(sleep_then_return, value, 0.002).add_done_callback(add)
    return state["total"]


unsafe = total_in_callbacks(VALUES)
print(f"without a lock: total = {unsafe} (expected {EXPECTED})")

# %%
claim(unsafe < EXPECTED, "without a lock, callbacks lost at least one update",
      total=unsafe, expected=EXPECTED)

# %%
safe = total_in_callbacks(VALUES, lock=threading.Lock())
print(f"with a lock: total = {safe} (expected {EXPECTED})")

# %%
claim(all(total_in_callbacks(VALUES, lock=threading.Lock()) == EXPECTED for _ in range(3)),
      "with a lock, the total was exact three times in a row")

# %% [markdown]
# **What it means:** the lock makes read, add and write one step that no other callback can enter
# halfway. Hold it only for that step (never while waiting for a task), or the callbacks queue up behind
# it. When you do not need the total *while* tasks run, an even simpler fix is to add up
# `f.result()` in your own thread after the `with` block: no shared state, no lock.

# %% [markdown]
# ## Your turn
#
# Each checker calls your function with a *task* of its own: a function of one item that you run on a
# pool, once per item. The checker sees when each task ran and on which thread, so it can tell whether
# your answer is right *and* whether it really ran concurrently. A hint appears while the answer is
# not right yet; the worked solutions are in a cell after the exercises.
#
# ### Exercise 03.1: live progress
#
# Write `run_with_progress(task, items, report)`: run `task(item)` for every item on a thread pool and,
# each time a task finishes, call `report(done, total)` **from a done-callback** (`done` counts 1, 2,
# ..., `total` with no number repeated). Like drawing a progress bar, `report` is not thread-safe:
# never let two threads run it at the same moment. Return the results in the order of `items`.

# %%
def run_with_progress(task, items, report):
    raise NotImplementedError


# %%
check.run_with_progress(run_with_progress)

# %% [markdown]
# ### Exercise 03.2: add up results safely
#
# Write `total_from_callbacks(task, items)`: run `task(item)` for every item on a thread pool, add each
# result to a running total **in a done-callback**, and return the total once every task has finished.
# The checker's results are numbers whose addition takes a few milliseconds, like a read-modify-write
# of a database row, so a missing lock shows.

# %%
def total_from_callbacks(task, items):
    raise NotImplementedError


# %%
check.total_from_callbacks(total_from_callbacks)

# %% [markdown]
# ### Exercise 03.3: stop at the first failure
#
# Write `run_until_failure(task, items)`: run `task(item)` for every item on a pool of **2** threads.
# A done-callback labels each item `"ok"`, `"failed"` or `"cancelled"`; when a task fails, the callback
# cancels every task that has not started yet. Return the dict `{item: label}` with every item in it.
# (Cancelled futures run their callbacks too: section 3.)

# %%
def run_until_failure(task, items):
    raise NotImplementedError


# %%
check.run_until_failure(run_until_failure)

# %%
# Stuck? Uncomment a line to see a worked solution.
# checks.solution("03.1")
# checks.solution("03.2")
# checks.solution("03.3")

# %% [markdown]
# ## Recap
#
# - A done-callback runs in the thread that completes the future: a worker (threads), the pool's
#   management thread (processes), or yours if the future was already done or you cancelled it.
# - A callback's exception is logged and dropped, and cancelled futures call their callbacks too:
#   keep callbacks small and check `future.cancelled()` first.
# - Callbacks are made for progress and running totals; any state they share needs a lock.
#
# **Next:** [04 · map vs as_completed](04-map-vs-as-completed.ipynb): two ways to collect many results,
# in input order or in finish order.

# %%
api.stop()  # stop what this notebook started
