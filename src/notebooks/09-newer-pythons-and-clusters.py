# Source of notebooks/09-newer-pythons-and-clusters.ipynb (build with: python src/notebooks/build.py 09)

# %% [markdown]
# # 09 · Newer Pythons and clusters
#
# **Why this matters.** `concurrent.futures` keeps growing: recent Pythons added ways to stop a pool
# early, recycle worker processes, run threads without the GIL, and run interpreters side by side in one
# process. And when one machine is not enough, the same `submit` / `map` / `as_completed` code can run on a
# cluster. This notebook shows each change running where your Python has it, and explains it where not.
#
# **In this notebook you will**
# - use `cancel_futures` (3.9), `max_tasks_per_child` (3.11) and the `TimeoutError` alias (3.11);
# - detect a free-threaded build (3.13+) and see what it changes for CPU work on threads;
# - meet what 3.14 adds: `InterpreterPoolExecutor`, `map(buffersize=)`, `terminate_workers()` /
#   `kill_workers()`, and forkserver as Linux's default start method;
# - run one function unchanged on a thread pool, a process pool and a Dask cluster, and learn what
#   changes on a cluster.
#
# **Time:** about 25 minutes. **Prerequisites:** notebooks 01–05.
#
# **Previous:** [08 · asyncio and executors](08-asyncio-and-executors.ipynb) ·
# **Next:** back to the [course map](00-start-here.ipynb).

# %% [markdown]
# ## Set-up

# %%
import concurrent.futures as cf
import logging
import multiprocessing
import os
import sys
import sysconfig
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed

import futureslab
from futureslab import checks
from futureslab.checks import nb09 as check
from futureslab.claims import claim, measure_until
from futureslab.tasks import count_primes, count_primes_in, prime_ranges, sleep_for, square, whoami
from futureslab.timing import cpu_count, fmt_seconds, fmt_speedup, speedup, stopwatch

futureslab.setup()
PY = sys.version_info[:2]

# %% [markdown]
# ## 1. What changed, version by version
#
# | Python | change | why you care |
# |---|---|---|
# | 3.9 | `shutdown(cancel_futures=True)` | stop a pool without running its queue |
# | 3.11 | `ProcessPoolExecutor(max_tasks_per_child=N)` | recycle workers that leak memory or state |
# | 3.11 | `concurrent.futures.TimeoutError` *is* the builtin `TimeoutError` | `except TimeoutError` finally catches it |
# | 3.13 | free-threaded builds (`python3.13t`), `os.process_cpu_count()` | threads can run Python code on several cores |
# | 3.14 | `InterpreterPoolExecutor` | several interpreters, each with its own GIL, in one process |
# | 3.14 | `Executor.map(..., buffersize=N)` | `map` over a huge or endless input without submitting it all |
# | 3.14 | `ProcessPoolExecutor.terminate_workers()` / `kill_workers()` | stop stuck workers at once |
# | 3.14 | forkserver is the default start method on Linux | functions must come from importable modules there too |
#
# Which of these your Python has (this output differs between Pythons; the checks below it do not):

# %% tags=["nbval-ignore-output"]
FEATURES = {
    "cancel_futures": PY >= (3, 9),
    "max_tasks_per_child": PY >= (3, 11),
    "TimeoutError alias": cf.TimeoutError is TimeoutError,
    "free-threaded build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "InterpreterPoolExecutor": hasattr(cf, "InterpreterPoolExecutor"),
    "map(buffersize=)": PY >= (3, 14),
    "terminate_workers()": hasattr(ProcessPoolExecutor, "terminate_workers"),
}
print(f"Python {sys.version.split()[0]} on {sys.platform}")
for name, here in FEATURES.items():
    print(f"  {name:<24} {'yes' if here else 'no'}")

# %%
claim(FEATURES["TimeoutError alias"] == (PY >= (3, 11)) and FEATURES["InterpreterPoolExecutor"] == (PY >= (3, 14))
      and FEATURES["terminate_workers()"] == (PY >= (3, 14)),
      "this Python has exactly the features its version promises")

# %% [markdown]
# ### `cancel_futures` (3.9)
#
# `with` (and `shutdown()`) waits for **every** submitted task, queued ones included. With
# `cancel_futures=True`, tasks that have not started are cancelled; running ones still finish. One
# worker, six tasks of 0.2 s: the first is running when we shut down, five are still queued.

# %%
pool = ThreadPoolExecutor(max_workers=1)
futures = [pool.submit(sleep_for, 0.2) for _ in range(6)]
while not futures[0].running():
    time.sleep(0.001)
with stopwatch() as sw:
    pool.shutdown(wait=True, cancel_futures=True)
states = ["cancelled" if f.cancelled() else "done" for f in futures]
print(states, "shutdown took", fmt_seconds(sw))
claim(states == ["done"] + ["cancelled"] * 5 and sw.elapsed < 0.5,
      "shutdown waited only for the running task and cancelled the five queued ones", seconds=sw.elapsed)

# %% [markdown]
# ### `max_tasks_per_child` (3.11)
#
# A worker process normally lives as long as the pool. With `max_tasks_per_child=N` it exits after N
# tasks and the pool starts a fresh one: a cure for libraries that leak memory, file handles or global
# state. Starting replacement workers by forking a process that has threads is unsafe, so it refuses a
# fork context (`ValueError`); given no `mp_context`, it picks `spawn` by itself even where fork is the
# default. We pass the spawn context explicitly to make that visible.
#
# **A bug to know about.** On 3.11 up to at least 3.13.0, a pool can hang with `max_tasks_per_child`
# above 1: when a worker exits, the pool may count an earlier "idle worker" signal as a live worker and
# not start the replacement, so queued tasks wait forever. (`ProcessPoolExecutor(1,
# max_tasks_per_child=2)` with 10 tasks hung after 2 tasks on 3.11.7, 3.12.1 and 3.13.0 when this
# course was written; the fix came later upstream.) With `max_tasks_per_child=1` no such signal is
# ever left over, so the demo below uses 1, and it still waits with a timeout, as every demo of a known-buggy feature should.
# Two workers, four tasks: each task reports the process id that ran it. (On 3.10 the cell only
# says the feature is missing, so its output is not compared; the claim after it is.)

# %% tags=["nbval-ignore-output"]
if PY >= (3, 11):
    recycled = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"),
                                   max_tasks_per_child=1)
    jobs = [recycled.submit(whoami) for _ in range(4)]
    done, not_done = cf.wait(jobs, timeout=8)
    recycled.shutdown(wait=not not_done, cancel_futures=True)
    pids = {f.result()[0] for f in done}
    print(f"{len(done)} of 4 tasks done, in {len(pids)} different processes")
else:
    print("max_tasks_per_child needs Python 3.11 or later")
    done, not_done, pids = None, None, None

# %%
claim(PY < (3, 11) or (not not_done and len(pids) == 4),
      "where available, max_tasks_per_child=1 gave every task a fresh process, within the timeout")

# %% [markdown]
# ### The `TimeoutError` alias (3.11)
#
# `future.result(timeout=...)`, `as_completed(timeout=...)` and `map(timeout=...)` raise
# `concurrent.futures.TimeoutError`. Up to 3.10 that is its own class, **not** the builtin
# `TimeoutError`, so many articles' `except TimeoutError:` silently misses it there. From 3.11 the two
# are the same object. Code that must run on 3.10 catches `concurrent.futures.TimeoutError`, which works
# on every version:

# %%
with ThreadPoolExecutor(max_workers=1) as pool:
    slow = pool.submit(sleep_for, 0.3)
    try:
        slow.result(timeout=0.05)
    except cf.TimeoutError:  # portable: the builtin TimeoutError on 3.11+, its own class before
        print("gave up waiting after 0.05 s; the task goes on running")
    caught_by_builtin = False
    try:
        pool.submit(sleep_for, 0.3).result(timeout=0.05)
    except TimeoutError:
        caught_by_builtin = True
    except cf.TimeoutError:
        pass
claim(caught_by_builtin == (PY >= (3, 11)),
      "`except TimeoutError` caught the pool's timeout exactly on Python 3.11 and later")

# %% [markdown]
# ### Free-threaded builds (3.13+)
#
# CPython 3.13 can be built without the GIL (`python3.13t`; experimental in 3.13, supported from 3.14).
# There, threads run pure-Python code on several cores at once, so a `ThreadPoolExecutor` speeds up CPU
# work the way only a `ProcessPoolExecutor` could before, without pickling or process start-up. Detect
# it: `sysconfig.get_config_var("Py_GIL_DISABLED")` says how Python was built, and
# `sys._is_gil_enabled()` (3.13+) says whether the GIL is on right now (an extension module that is not
# ready for free-threading turns it back on).
#
# The measurement: count primes in two halves, one after another and on two threads.

# %%
gil_enabled = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
HALVES = prime_ranges(1_200_000, chunks=2, start=1_000_000)


def cpu_on_threads():
    with stopwatch() as seq:
        expected = [count_primes_in(h) for h in HALVES]
    with stopwatch() as threaded:
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert list(pool.map(count_primes_in, HALVES)) == expected
    return speedup(seq, threaded)


def as_predicted(s):
    return s <= 1.3 if gil_enabled or cpu_count() < 2 else s >= 1.3


thread_speedup = measure_until(cpu_on_threads, as_predicted)
print(f"2 threads vs one after another: {fmt_speedup(thread_speedup)}")
claim(as_predicted(thread_speedup),
      "CPU work on 2 threads matched this build: no real speed-up with the GIL, a real one without it",
      speedup=thread_speedup)

# %% [markdown]
# On a free-threaded build, code that shares data between threads needs the locks it always should have
# had: the GIL used to hide some races (notebook 05).
#
# ### What 3.14 adds
#
# - **`InterpreterPoolExecutor`**: a thread pool where each worker thread runs its own sub-interpreter,
#   with its own GIL. CPU work runs in parallel as with processes, but in one process; like processes,
#   tasks and results are pickled between interpreters, so the same "importable function" rule applies.
# - **`map(fn, iterable, buffersize=N)`**: `map` normally submits the whole input at once (notebook 04);
#   with `buffersize` it keeps at most N tasks ahead of what you have consumed, so it works on an endless
#   generator.
# - **`terminate_workers()` / `kill_workers()`** on `ProcessPoolExecutor`: send SIGTERM / SIGKILL to
#   every worker at once, for a pool stuck in tasks that will never finish; the pool is then shut down.
# - **forkserver by default on Linux**: the course already runs every notebook under fork, spawn and
#   forkserver, because this is where the default went.
#
# The cell below runs each where Python is 3.14 or later and does nothing on older versions (the
# claim after it checks what matters on either side).

# %%
results_314 = {}
if hasattr(cf, "InterpreterPoolExecutor"):
    with cf.InterpreterPoolExecutor(max_workers=2) as pool:
        results_314["interpreters"] = sum(pool.map(count_primes_in, prime_ranges(20_000, 4)))
if PY >= (3, 14):
    import itertools

    with ThreadPoolExecutor(max_workers=2) as pool:  # an endless input, consumed lazily
        results_314["buffersize"] = list(itertools.islice(pool.map(square, itertools.count(), buffersize=4), 5))
if hasattr(ProcessPoolExecutor, "terminate_workers"):
    with stopwatch() as stop_time:
        with ProcessPoolExecutor(max_workers=1) as pool:
            pool.submit(sleep_for, 30)
            pool.submit(sleep_for, 0).result()  # the worker is up
            pool.terminate_workers()
    results_314["terminated in"] = stop_time.elapsed

# %%
expected_default = ("spawn" if sys.platform in ("win32", "darwin")
                    else "forkserver" if PY >= (3, 14) else "fork")
claim(multiprocessing.get_all_start_methods()[0] == expected_default,
      "this platform's default start method is the one the table promises")
claim(PY < (3, 14) or (results_314["interpreters"] == count_primes(0, 20_000)
                       and results_314["buffersize"] == [0, 1, 4, 9, 16]
                       and results_314["terminated in"] < 5),
      "where available, the 3.14 features worked as described")

# %% [markdown]
# ## 2. Outgrowing one machine: the same code on a Dask cluster
#
# **The idea.** A `ProcessPoolExecutor` stops at one machine's cores. [Dask](https://distributed.dask.org)'s
# `distributed` scheduler runs tasks on *workers* that may sit on many machines, and its `Client` speaks
# nearly the same language: `submit`, `map`, `as_completed`, futures with `.result()`. Better still,
# `client.get_executor()` returns a real `concurrent.futures.Executor`, so code written against that
# interface runs on a cluster unchanged.
#
# Here the "cluster" is a `LocalCluster`: a scheduler and two worker processes on this machine. Dask
# writes each worker's scratch files into `local_directory`; we give it a temporary folder that the last
# cell deletes, and turn Dask's logging down so the outputs stay readable.

# %%
from distributed import Client, LocalCluster
from distributed import as_completed as dask_as_completed

scratch = tempfile.TemporaryDirectory(prefix="futureslab-dask-")
with warnings.catch_warnings(), stopwatch() as cluster_start:
    warnings.simplefilter("ignore")  # e.g. "Port 8787 is already in use" on a busy machine
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR, local_directory=scratch.name)
    client = Client(cluster)
print(f"a scheduler and {len(client.scheduler_info()['workers'])} worker processes, up in {fmt_seconds(cluster_start)}")

# %% [markdown]
# **One function, three executors.** `primes_report` knows nothing about where it runs: it uses
# `submit`, `map` and `as_completed` from the `concurrent.futures` interface only.

# %%
RANGES = prime_ranges(200_000, chunks=8)


def primes_report(executor):
    """Count primes in RANGES with map, and again with submit + as_completed."""
    by_map = sum(executor.map(count_primes_in, RANGES))
    futures = [executor.submit(count_primes_in, r) for r in RANGES]
    by_completion = sum(f.result() for f in as_completed(futures))
    return by_map, by_completion


reports = {}
with ThreadPoolExecutor(max_workers=2) as ex:
    reports["ThreadPoolExecutor"] = primes_report(ex)
with ProcessPoolExecutor(max_workers=2) as ex:
    reports["ProcessPoolExecutor"] = primes_report(ex)
with client.get_executor() as ex:
    reports["Dask client.get_executor()"] = primes_report(ex)
for name, report in reports.items():
    print(f"{name:<28} {report}")
claim(len(set(reports.values())) == 1 and reports["ThreadPoolExecutor"][0] == count_primes(0, 200_000),
      "the same function gave the same answers on all three executors")

# %% [markdown]
# **Dask's own API** goes further than the executor: futures can be passed as arguments to other tasks,
# so a reduction runs on the cluster next to its inputs instead of shipping every partial result back to
# you first. `distributed.as_completed` is the cluster's `as_completed`.

# %%
partials = client.map(count_primes_in, RANGES)        # 8 futures; the results stay on the workers
total = client.submit(sum, partials)                  # runs on a worker, fed straight from the others
print("total:", total.result())
first_done = [f.result() for f in dask_as_completed(client.map(count_primes_in, RANGES[:3], pure=False))]
print("the first three ranges, collected as they completed:", sorted(first_done), "(sorted here)")
claim(total.result() == count_primes(0, 200_000), "the reduction ran on the cluster and got the right total")

# %% [markdown]
# **What changes on a cluster.**
#
# - **Serialization.** Dask pickles functions with `cloudpickle`, *by value*: a lambda or a function
#   defined in a notebook cell works (it fails in a `ProcessPoolExecutor` under spawn, notebook 01). The
#   modules they use must still be installed on every worker, in compatible versions.
# - **Purity.** `client.submit` assumes a task's result depends only on its arguments: the same function
#   and arguments get the same key, and Dask computes it once. For side effects or randomness pass
#   `pure=False`.
# - **Data locality.** Moving data costs network time. Keep results on the workers (pass futures to
#   other tasks, as with `sum` above), send a large input once with `client.scatter(data)`, and read files
#   where the workers can reach them instead of sending them from your laptop.
# - **The dashboard.** A live web page of the task stream, worker memory and progress, at
#   `client.dashboard_link`. It needs the `bokeh` package (`pip install bokeh`), which this course does
#   not install, so we started the cluster with `dashboard_address=None`.
# - **Failures.** A worker can die or vanish; the scheduler re-runs its tasks elsewhere, and a task that
#   keeps killing workers is marked as failed (`KilledWorker`).

# %%
lambda_result = client.submit(lambda x: x + 1, 41).result()
same = client.submit(square, 12).key == client.submit(square, 12).key
different = client.submit(square, 12, pure=False).key != client.submit(square, 12, pure=False).key
print("a lambda on the cluster:", lambda_result)
claim(lambda_result == 42 and same and different,
      "Dask ran a lambda, and gave equal keys to pure calls and fresh keys with pure=False")

# %% [markdown]
# **Reaching a real cluster.** Only the `Client` line changes. Start a scheduler on one machine
# (`dask scheduler`) and workers on others (`dask worker tcp://SCHEDULER:8786`), or let a deployment
# project do it for you (`dask-jobqueue` on HPC batch systems, `dask-kubernetes`, cloud services); then
# `client = Client("tcp://SCHEDULER:8786")`. Everything below that line, `get_executor()` included, stays
# as it is here.
#
# ## Your turn
#
# **Exercise 09.1 — Stop early with `cancel_futures`.** Write `first_n_then_stop(ids, n)`: fetch the
# posts `ids` (with `fetch_post`) on a pool of 4 threads, return the first `n` that arrive, and make sure
# the queued requests are never sent.

# %%
from futureslab.tasks import fetch_post  # the checker starts its own local API


def first_n_then_stop(ids, n):
    raise NotImplementedError


check.first_n_then_stop(first_n_then_stop)

# %% [markdown]
# **Exercise 09.2 — One function, any executor.** Write `total_primes(executor, ranges, task=count_primes_in)`
# that sums `task(r)` over `ranges` using only `submit` and `as_completed`, so it runs on any executor,
# including `client.get_executor()`.

# %%
def total_primes(executor, ranges, task=count_primes_in):
    raise NotImplementedError


check.total_primes(total_primes)

# %% [markdown]
# **Exercise 09.3 — `as_completed` on a Dask cluster.** Write `fastest_first(client, delays)` that runs
# `sleep_then_return(d, d)` on the cluster for every delay and returns the results in the order the
# tasks finish.

# %%
from futureslab.tasks import sleep_then_return


def fastest_first(client, delays):
    raise NotImplementedError


check.fastest_first(fastest_first, client)

# %% [markdown]
# Stuck? `checks.solution("09.1")` (or `"09.2"`, `"09.3"`) prints a worked solution.

# %%
checks.solution("09.1")

# %% [markdown]
# ## Recap
#
# - 3.9–3.14 added `cancel_futures`, `max_tasks_per_child`, the `TimeoutError` alias, free-threading, interpreter pools, `buffersize`, `terminate_workers`.
# - Detect features by version or `hasattr`, and test on every Python you support.
# - Code written against `submit` / `map` / `as_completed` runs on a Dask cluster through `client.get_executor()`; mind serialization, purity and data locality.
#
# **Back to:** [the course map](00-start-here.ipynb).

# %%
client.close()
cluster.close()
scratch.cleanup()  # every notebook stops what it started, and leaves no files behind
