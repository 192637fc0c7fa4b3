# Source of notebooks/09-newer-pythons-and-clusters.ipynb (build with: python src/notebooks/build.py 09)

# %% [markdown]
# # 09 · Newer Pythons and clusters
#
# **Why this matters.** `concurrent.futures` keeps growing: newer Pythons stop a pool early, recycle
# worker processes, run threads without the GIL or interpreters side by side, and from 3.14 start
# processes differently on Linux. When one machine is not enough, a Dask cluster speaks nearly the
# same language as an executor, though not exactly. Each cell runs a change on *your* Python and
# checks what it says about the others against that Python.
#
# **In this notebook you will**
# - try what 3.9–3.13 added, and find out whether your Python has the `max_tasks_per_child` hang;
# - run what 3.14 and 3.15 add, where your Python has it;
# - run one function on threads, processes and a secured Dask cluster, and see what differs there.
#
# **Time:** about 50 minutes. **Prerequisites:** notebooks 01–05.
#
# **Previous:** [08 · asyncio and executors](08-asyncio-and-executors.ipynb) ·
# **Next:** back to the [course map](00-start-here.ipynb).

# %%
import concurrent.futures as cf
import itertools
import multiprocessing
import os
import pickle
import sys
import sysconfig
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import futureslab
from futureslab import checks, lesson09
from futureslab.checks import nb09 as check
from futureslab.claims import claim
from futureslab.tasks import (count_primes, count_primes_in, crash_worker, prime_ranges, sleep_for,
                              sleep_then_return, square, whoami)
from futureslab.timing import fmt_seconds, stopwatch

futureslab.setup()
PY = sys.version_info[:2]

# %% [markdown]
# ## 1. What changed, version by version
#
# | Python | change | what it is for |
# |---|---|---|
# | 3.9 | `shutdown(cancel_futures=True)` | stop a pool without running its queue |
# | 3.11 | `ProcessPoolExecutor(max_tasks_per_child=N)` | recycle workers that leak memory or state |
# | 3.11 | `concurrent.futures.TimeoutError` *is* the builtin `TimeoutError` | `except TimeoutError` catches it |
# | 3.13 | free-threaded builds (`python3.13t`, experimental), `sys._is_gil_enabled()` | threads run Python code on several cores |
# | 3.13 | `os.process_cpu_count()`, used for the pools' default `max_workers` | defaults count the CPUs this process may use |
# | 3.14 | `InterpreterPoolExecutor` | interpreters with their own GIL, in one process |
# | 3.14 | `Executor.map(..., buffersize=N)` | `map` over an endless input |
# | 3.14 | `terminate_workers()` / `kill_workers()` | stop stuck worker processes at once |
# | 3.14 | forkserver is the default start method on POSIX other than macOS | functions must be importable there too |
# | 3.14 | the free-threaded build is officially supported (`python3.14t`) | no longer experimental |
# | 3.15 | `BrokenProcessPool` names each worker's exit code | see which worker died, and how |
# | 3.15 | `set_forkserver_preload(..., on_error=)` | a failed preload is no longer silent |
# | 3.15 | `concurrent.futures` uses `lazy from … import` (PEP 810) | same behaviour, cheap import as before |
#
# Read the last column: it says when each change matters to you. The cell below reads which of them
# your Python has from its standard library (`hasattr`, `inspect.signature`), not from its version
# number; facts about a *fresh* Python run in a new interpreter (`lesson09.fresh_python`), so this
# kernel's state cannot spoil them and a hang cannot take the kernel with it.

# %% tags=["nbval-ignore-output"]
found = lesson09.features()
print(lesson09.feature_table(found))

# %% [markdown]
# Look for the first `no`: your Python lacks that feature and every later one.

# %%
claim(all(here == (PY >= since) for since, here in found.values()),
      "this Python has exactly the features its version promises, and none of the later ones")

# %% [markdown]
# ### `cancel_futures` (3.9)
#
# `with` (and `shutdown()`) waits for every submitted task, queued ones included. With
# `cancel_futures=True`, tasks not yet started are cancelled; running ones still finish. One worker,
# six tasks of 0.2 s:

# %%
pool = ThreadPoolExecutor(max_workers=1)
futures = [pool.submit(sleep_for, 0.2) for _ in range(6)]
lesson09.wait_until_running(futures[0])
with stopwatch() as sw:
    pool.shutdown(wait=True, cancel_futures=True)
states = ["cancelled" if f.cancelled() else "done" for f in futures]
print(states, "shutdown took", fmt_seconds(sw))
claim(states == ["done"] + ["cancelled"] * 5 and sw.elapsed < 0.5,
      "shutdown waited only for the running task and cancelled the five queued ones", seconds=sw.elapsed)

# %% [markdown]
# ### `max_tasks_per_child` (3.11)
#
# With `max_tasks_per_child=N` a worker process exits after N tasks and the pool starts a fresh one: a
# cure for libraries that leak memory or state. Forking replacements from a process that has threads
# is unsafe, so it refuses a fork context (`ValueError`), and given no `mp_context` it uses spawn even
# where fork is the default. `recycled_workers` runs 4 tasks on
# `ProcessPoolExecutor(2, mp_context=get_context("spawn"), max_tasks_per_child=1)`, waiting 8 s at most:

# %% tags=["nbval-ignore-output"]
recycled = lesson09.recycled_workers(tasks=4, workers=2, max_tasks_per_child=1)  # None before 3.11
refused_fork = lesson09.recycling_refuses_fork()  # None without fork or before 3.11
print(recycled, "| refuses fork:", refused_fork)

# %%
claim(recycled is None or (recycled.finished and len(set(recycled.pids)) == 4),
      "where available, max_tasks_per_child=1 gave every task a fresh process, within the timeout")
claim(refused_fork is not False, "where fork and max_tasks_per_child exist, a pool that recycles workers refuses fork")

# %% [markdown]
# **A bug to know about** ([gh-115634](https://github.com/python/cpython/issues/115634)). With
# `max_tasks_per_child` above 1 a pool can hang for good: when a worker retires, the pool may take a
# stale "a worker is idle" signal for a live worker and never start the replacement. Known to hang:
# every 3.11 and 3.12 release (they get security fixes only), 3.13.0–3.13.5 and 3.14.0–3.14.3; known
# fixed: 3.14.8 and later, 3.15.0b4 and later. The cell below runs the reproducer (one worker
# that retires after 2 tasks, 10 tasks) on your Python, in a fresh interpreter stopped after 6 s.

# %% tags=["nbval-ignore-output"]
hung = lesson09.max_tasks_hang(timeout=6)  # None before 3.11
known = lesson09.known_hang()  # True: known to hang, False: known fixed, None: not known
print(f"Python {sys.version.split()[0]}: hung {hung}, known to hang {known}")

# %%
claim(hung is None or known is None or hung == known,
      "this Python hangs on the max_tasks_per_child reproducer exactly if it is a release known to have the bug")

# %% [markdown]
# On an affected Python, use `max_tasks_per_child=1` (it leaves no stale signal), or a fresh pool
# every so many tasks, and always wait with a timeout.
#
# ### The `TimeoutError` alias (3.11)
#
# `result(timeout=)`, `as_completed(timeout=)` and `map(timeout=)` raise
# `concurrent.futures.TimeoutError`. Up to 3.10 that is a class of its own, so `except TimeoutError:`
# misses it; from 3.11 it is the builtin. Code that must run on 3.10 catches `cf.TimeoutError`.

# %%
with ThreadPoolExecutor(max_workers=1) as pool:
    try:
        pool.submit(sleep_for, 0.3).result(timeout=0.05)
    except TimeoutError:  # the builtin
        caught_by_builtin = True
    except cf.TimeoutError:  # a class of its own before 3.11
        caught_by_builtin = False
claim(caught_by_builtin == (PY >= (3, 11)),
      "`except TimeoutError` caught the pool's timeout exactly on Python 3.11 and later")

# %% [markdown]
# ### Free-threaded builds (3.13+)
#
# CPython can be built without the GIL: experimental in 3.13 (PEP 703), supported from 3.14 (PEP 779),
# and still a separate build (`python3.13t`, `python3.14t`). There, threads run Python code on several
# cores at once, and shared data needs the locks it always needed. `sysconfig` says how Python was
# **built** (`Py_GIL_DISABLED`: `1` free-threaded, `0` default, `None` before 3.13);
# `sys._is_gil_enabled()` says whether the GIL is on **now** (a free-threaded build turns it back on
# for `PYTHON_GIL=1` or an extension module not marked free-threading-ready).

# %% tags=["nbval-ignore-output"]
built_free_threaded = sysconfig.get_config_var("Py_GIL_DISABLED")
gil_enabled = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
print(f"Py_GIL_DISABLED = {built_free_threaded!r}, GIL enabled right now: {gil_enabled}")

# %%
claim((built_free_threaded is None) == (PY < (3, 13)) and built_free_threaded in (None, 0, 1)
      and (gil_enabled or built_free_threaded == 1),
      "the build setting exists from 3.13, and only a free-threaded build can run without the GIL")

# %% [markdown]
# Two halves of a prime count, one after the other, then on two threads (`threads_on_cpu` measures
# again if the first run is off, and notes how busy other programs kept the cores):

# %%
threads = lesson09.threads_on_cpu(prime_ranges(1_200_000, chunks=2, start=1_000_000))
threads.claim("CPU work on 2 threads matched this build: no real speed-up with the GIL, a real one without it")

# %% [markdown]
# ### `os.process_cpu_count()` (3.13)
#
# `os.cpu_count()` counts the machine's CPUs; `os.process_cpu_count()` those this process may run on
# (its affinity, e.g. `taskset -c 0`). From 3.13 the pools' default `max_workers` use it:
# `ProcessPoolExecutor()` that many, `ThreadPoolExecutor()` `min(32, that + 4)`. Neither counts a
# container's CPU quota (Docker's `--cpus`, Binder). A fresh Python pinned to one CPU (Linux only):

# %% tags=["nbval-ignore-output"]
pinned = lesson09.defaults_on_one_cpu()  # None where a process cannot choose its CPUs
print(pinned)

# %%
follows = None if pinned is None else 1 if PY >= (3, 13) else pinned.cpu_count  # what the defaults count
claim(pinned is None or (pinned.process_pool == follows and pinned.thread_pool == min(32, follows + 4)
                         and pinned.process_cpu_count == (1 if PY >= (3, 13) else None)),
      "the pools' default max_workers count the CPUs this process may use from 3.13, the machine's before")

# %% [markdown]
# ### What 3.14 adds
#
# Each cell runs the feature where your Python has it; each claim checks both sides, so a 3.14 cannot
# pass by skipping it.
#
# **`InterpreterPoolExecutor`**: each worker thread runs its own sub-interpreter with its own GIL, so
# CPU work runs in parallel inside one process. Tasks and results are pickled between interpreters:
# functions must be importable, as with processes.

# %% tags=["nbval-ignore-output"]
if hasattr(cf, "InterpreterPoolExecutor"):
    with cf.InterpreterPoolExecutor(max_workers=2) as pool:
        by_interpreters = sum(pool.map(count_primes_in, prime_ranges(20_000, 4)))
        where = {pid for pid, _ in pool.map(whoami, range(4))}
    print(f"{by_interpreters} primes below 20000, counted in processes {where}")
else:
    by_interpreters = where = None
    print("InterpreterPoolExecutor needs Python 3.14 or later")

# %%
claim((by_interpreters is not None) == (PY >= (3, 14))
      and (by_interpreters is None or (by_interpreters == count_primes(0, 20_000) and where == {os.getpid()})),
      "from 3.14 interpreters in this very process computed the right answer")

# %% [markdown]
# **`map(fn, iterable, buffersize=N)`**: plain `map` submits a task for every input before you see a
# result (notebook 04), so it cannot take an endless generator. With `buffersize` it keeps at most N
# tasks ahead of what you have read. `lesson09.counted` counts the inputs `map` took:

# %% tags=["nbval-ignore-output"]
with ThreadPoolExecutor(max_workers=2) as pool:
    plain = lesson09.counted(range(1000))
    first_five = list(itertools.islice(pool.map(square, plain), 5))
    endless = lesson09.counted(itertools.count())
    try:
        lazily = list(itertools.islice(pool.map(square, endless, buffersize=4), 5))
    except TypeError:  # before 3.14
        lazily = None
print(f"read 5 results: plain map took {plain.taken} inputs, map(buffersize=4) took {endless.taken}")

# %%
claim(plain.taken == 1000 and first_five == [0, 1, 4, 9, 16] and (lazily is not None) == (PY >= (3, 14))
      and (lazily is None or (lazily == first_five and endless.taken <= 5 + 4)),
      "map took all its input at once, and from 3.14 buffersize=4 stayed at most 4 tasks ahead")

# %% [markdown]
# **`terminate_workers()` / `kill_workers()`** send SIGTERM / SIGKILL (on Windows `TerminateProcess`)
# to every worker at once, after `shutdown(wait=False, cancel_futures=True)`. A moment later the
# stuck task's future fails with `BrokenProcessPool`:

# %% tags=["nbval-ignore-output"]
if hasattr(ProcessPoolExecutor, "terminate_workers"):
    with stopwatch() as took, ProcessPoolExecutor(max_workers=1) as pool:
        worker_pid = pool.submit(whoami).result()[0]  # the worker is up
        stuck = pool.submit(sleep_for, 30)
        lesson09.wait_until_running(stuck)
        pool.terminate_workers()
        cf.wait([stuck], timeout=10)
    stuck_outcome = type(stuck.exception(timeout=0)).__name__ if stuck.done() else "still pending"
    print(f"the 30 s task: {stuck_outcome}; all over in {fmt_seconds(took)}")
else:
    stuck_outcome = took = worker_pid = None
    print("terminate_workers() needs Python 3.14 or later")

# %%
claim((stuck_outcome is not None) == (PY >= (3, 14))
      and (stuck_outcome is None or (stuck_outcome == "BrokenProcessPool" and took.elapsed < 8
                                     and worker_pid not in {p.pid for p in multiprocessing.active_children()})),
      "from 3.14 terminate_workers() stopped a stuck worker at once, and its task failed with BrokenProcessPool")

# %% [markdown]
# **forkserver by default on POSIX other than macOS**: where the default was fork (Linux, the BSDs), a
# process pool now starts workers from a small server process, so a function defined in a notebook
# cell fails there as under spawn (notebook 01). macOS uses spawn since 3.8; Windows has only spawn.

# %% tags=["nbval-ignore-output"]
default_method, listed_first = lesson09.fresh_start_method()  # this kernel's may differ: setup()
expected = "spawn" if sys.platform in ("win32", "darwin") else "forkserver" if PY >= (3, 14) else "fork"
print(f"a fresh Python {sys.version.split()[0]} on {sys.platform} starts processes with {default_method}")
claim(default_method == expected == listed_first, "this platform's default start method is the one the table promises")

# %% [markdown]
# ### What 3.15 changes
#
# **A `BrokenProcessPool` that names the exit code.** When a worker dies without a Python error (a
# segfault, the out-of-memory killer, `os._exit`), up to 3.14 the exception has no `__cause__`; from
# 3.15 the cause says each such worker "terminated abruptly with exit code N" (negative N: a signal).
# `crash_worker(3)` calls `os._exit(3)`:

# %% tags=["nbval-ignore-output"]
with ProcessPoolExecutor(max_workers=1) as pool:
    try:
        pool.submit(crash_worker, 3).result()
    except BrokenProcessPool as exc:
        broken = exc
print("its cause:", str(broken.__cause__).strip("\n'") if broken.__cause__ is not None else "none given")

# %%
claim(("terminated abruptly with exit code 3" in str(broken.__cause__ or "")) == (PY >= (3, 15)),
      "the dead worker's exit code is in the BrokenProcessPool's cause exactly from 3.15")

# %% [markdown]
# **Forkserver preload errors.** `set_forkserver_preload(["numpy"])` has the forkserver import modules
# once for every worker it forks. Up to 3.14 a module that fails to import there is skipped silently;
# from 3.15 `on_error="warn"` warns and `on_error="fail"` stops the forkserver. A fresh Python preloads
# a module that does not exist:

# %% tags=["nbval-ignore-output"]
preload = lesson09.failed_preload()  # None where there is no forkserver
print(preload)

# %%
claim(preload is None or preload.startswith("the pool failed" if PY >= (3, 15) else "no on_error: the pool ran"),
      "a failed forkserver preload went unnoticed before 3.15, and stopped the pool with on_error='fail' from 3.15")

# %% [markdown]
# **Lazy imports.** `import concurrent.futures` does not load `multiprocessing` until you touch an
# executor: through a module `__getattr__` since 3.7, and from 3.15 through PEP 810's
# `lazy from .process import ProcessPoolExecutor`, whose name holds a `lazy_import` placeholder until
# first use. Your code sees no difference:

# %% tags=["nbval-ignore-output"]
lazy = lesson09.lazy_import_probe()
print(lazy)

# %%
claim(not lazy.loaded_at_import and lazy.loaded_after_use and (lazy.placeholder == "lazy_import") == (PY >= (3, 15)),
      "importing concurrent.futures left multiprocessing unloaded, with a lazy_import placeholder from 3.15")

# %% [markdown]
# ## 2. Outgrowing one machine: a Dask cluster
#
# A process pool stops at one machine's cores. [Dask](https://distributed.dask.org)'s `distributed`
# scheduler runs tasks on *workers* that may sit on many machines; its `Client` has `submit`, `map`,
# futures with `.result()`, and `client.get_executor()` returns a `concurrent.futures.Executor`. This
# section runs what is the same, what differs, and Dask's own answers, on the `distributed` installed here.
#
# Our "cluster" is a `LocalCluster`: a scheduler and two worker processes on `127.0.0.1`. **Anyone who
# can connect to a scheduler can run any code on its workers, as you**, and on a shared machine every
# user can reach `127.0.0.1`. So it uses TLS with `Security.temporary()`: a throwaway certificate
# authority held in this kernel's memory; the cluster accepts only certificates it signed.
# `start_cluster` also puts Dask's scratch files in a temporary folder that the last cell deletes.

# %%
from distributed import Security, worker_client
from distributed import as_completed as dask_as_completed

if "lab" in globals():
    lab.close()  # this cell ran before: stop that cluster first
security = Security.temporary()  # a new certificate authority, in memory only
lab = lesson09.start_cluster(security, n_workers=2)  # LocalCluster(..., security=security) + Client
client = lab.client
print(f"{lab.cluster.scheduler_address.split('://')[0]} scheduler, {len(client.scheduler_info()['workers'])} workers")

# %% [markdown]
# A stranger without the certificate tries, from a fresh interpreter, over plain TCP and over TLS with
# a certificate of its own (the test suite also tries as another user of the machine):

# %% tags=["nbval-ignore-output"]
attempts = lesson09.stranger_attempts(lab.cluster.scheduler_address)
print(*attempts, sep="\n")

# %%
claim(len(attempts) == 2 and all(line.startswith("refused:") for line in attempts),
      "the cluster refused a client without its certificate, over TCP and over TLS")

# %% [markdown]
# ### What is the same
#
# `lesson09.primes_report(executor, ranges)` counts primes with `map`, then with `submit` and
# `concurrent.futures.as_completed`. The executor from `client.get_executor()` returns standard futures,
# so it runs unchanged:

# %%
RANGES = prime_ranges(200_000, chunks=8)
reports = {}
with ThreadPoolExecutor(max_workers=2) as ex:
    reports["ThreadPoolExecutor"] = lesson09.primes_report(ex, RANGES)
with ProcessPoolExecutor(max_workers=2) as ex:
    reports["ProcessPoolExecutor"] = lesson09.primes_report(ex, RANGES)
with client.get_executor() as ex:
    reports["client.get_executor()"] = lesson09.primes_report(ex, RANGES)
print(reports)
claim(len(set(reports.values())) == 1 and reports["ThreadPoolExecutor"][0] == count_primes(0, 200_000),
      "the same function gave the same answers on all three executors")

# %% [markdown]
# ### What differs
#
# **1. Not every argument.** Dask's executor takes `shutdown(wait=)` and `map(timeout=, chunksize=)`
# (the chunk size is ignored), nothing newer: `shutdown(cancel_futures=True)` (exercise 09.1) and
# `map(buffersize=)` raise `TypeError`.

# %%
with client.get_executor() as dask_executor:
    dask_cancel = lesson09.outcome(dask_executor.shutdown, cancel_futures=True)
with client.get_executor() as dask_executor:
    dask_buffersize = lesson09.outcome(lambda: list(dask_executor.map(square, range(3), buffersize=2)))
standard_cancel = lesson09.outcome(ThreadPoolExecutor(max_workers=1).shutdown, cancel_futures=True)
print("Dask:", dask_cancel, "|", dask_buffersize, "\nThreadPoolExecutor, cancel_futures:", standard_cancel)
claim(dask_cancel.startswith("TypeError") and dask_buffersize.startswith("TypeError") and standard_cancel == "worked",
      "Dask's executor refused cancel_futures and buffersize, which the standard executors accept")

# %% [markdown]
# **2. `shutdown(wait=False)` cancels running tasks.** A standard executor never cancels a running task.
# Dask's cancels every future it made, running ones included, though the worker runs that code to its
# end (a thread cannot be stopped) and throws the result away. `shutdown_nowait_on_dask` submits a
# 1.5 s task, shuts down without waiting, and asks the workers (`client.run`) what they are running:

# %%
on_dask = lesson09.shutdown_nowait_on_dask(client)
pool = ThreadPoolExecutor(max_workers=1)
on_threads = pool.submit(sleep_for, 0.3)
lesson09.wait_until_running(on_threads)
pool.shutdown(wait=False)
print(on_dask, "| ThreadPoolExecutor: the running task returned", on_threads.result(timeout=5))
claim(on_dask.cancelled and on_dask.code_still_ran and on_threads.result() == 0.3,
      "shutdown(wait=False) cancelled a running task's future on Dask, never on a standard executor")

# %% [markdown]
# **3. Dask's own futures are not `concurrent.futures` futures.** `client.submit` returns
# `distributed.Future`s; the standard `as_completed` and `wait` fail on them: use Dask's. Two naps,
# the slow one submitted first, each pinned to its own worker (`workers=`) so both start at once;
# `nap` returns when it woke up:

# %%
slow_worker, fast_worker = sorted(client.scheduler_info()["workers"])
naps = [client.submit(lesson09.nap, 0.6, workers=[slow_worker], pure=False),
        client.submit(lesson09.nap, 0.1, workers=[fast_worker], pure=False)]
standard = [lesson09.outcome(lambda: next(cf.as_completed(naps, timeout=5))),
            lesson09.outcome(cf.wait, naps, timeout=5)]
finished = [f.result() for f in dask_as_completed(naps)]
print("standard as_completed, wait:", [o.split(":")[0] for o in standard],
      "| Dask's as_completed:", [seconds for seconds, _ in finished])
claim("worked" not in standard and [s for s, _ in finished] == [0.1, 0.6]
      and finished == sorted(finished, key=lambda pair: pair[1]),
      "the standard as_completed and wait failed on Dask futures; Dask's gave them in the order they finished")

# %% [markdown]
# **4. Identical calls run once.** `client.submit` assumes a task is *pure* (its result depends only on
# its arguments): the same function and arguments get the same key, computed once while a future for
# it is held. A free cache, and a trap for side effects and changing answers (files, requests, random
# numbers, the clock): pass `pure=False` there (also to `client.map` and `client.get_executor`).

# %%
pure = [client.submit(time.time_ns) for _ in range(2)]
fresh = [client.submit(time.time_ns, pure=False) for _ in range(2)]
same = {"pure": (pure[0].key == pure[1].key, pure[0].result() == pure[1].result()),
        "pure=False": (fresh[0].key == fresh[1].key, fresh[0].result() == fresh[1].result())}
print("(same key, same result):", same)
claim(same == {"pure": (True, True), "pure=False": (False, False)},
      "two identical pure calls ran once and shared one result; with pure=False each ran")

# %% [markdown]
# **5. How functions travel.** Dask pickles tasks with `cloudpickle`. An importable function (like
# `count_primes_in`) travels **by reference**: only its module and name, so every worker needs that
# module installed. A function defined in a notebook, or a lambda, travels **by value** (its code), so
# it works on the cluster where a spawn or forkserver process pool fails (notebook 01); the modules it
# uses must still be installed there.

# %%
import cloudpickle


def cube(n):  # defined in this notebook, i.e. in __main__
    return n ** 3


by_reference, by_value = cloudpickle.dumps(count_primes_in), cloudpickle.dumps(cube)
on_cluster = (client.submit(cube, 3).result(), client.submit(lambda x: x + 1, 41).result())
print(f"count_primes_in: {len(by_reference)} bytes, cube: {len(by_value)} bytes; on the cluster: {on_cluster}")
claim(pickle.loads(by_reference) is count_primes_in and b"futureslab.tasks" in by_reference
      and pickle.loads(by_value) is not cube and len(by_value) > 2 * len(by_reference) and on_cluster == (27, 42),
      "an importable function travelled by reference, a notebook function and a lambda by value")

# %% [markdown]
# **6. Data lives somewhere.** Moving data costs network time: keep results on the workers and pass
# futures to other tasks (below, `sum` runs on a worker), send a large input once with
# `client.scatter(data)`, and read files where the workers can reach them.

# %%
partials = client.map(count_primes_in, RANGES)  # 8 futures; the results stay on the workers
total = client.submit(sum, partials)  # runs on a worker, fed straight from the others
claim(total.result() == count_primes(0, 200_000), "the reduction ran on the cluster and got the right total")

# %% [markdown]
# ### Dask's own answers where the standard API has none
#
# **Retries.** An executor runs a task once; retrying is your code (notebook 06). Dask retries a
# failed task with `retries=N`. `lesson09.flaky(path)` fails its first two runs (it counts them in a file):

# %%
once = lesson09.outcome(client.submit(lesson09.flaky, lab.new_path("once"), pure=False).result)
with_retries = client.submit(lesson09.flaky, lab.new_path("retried"), pure=False, retries=2).result()
print(f"without retries: {once}; with retries=2: succeeded on attempt {with_retries}")
claim(once == "ConnectionError: attempt 1 failed" and with_retries == 3,
      "without retries the first failure reached us; with retries=2 Dask ran it again until it worked")

# %% [markdown]
# **Tasks that submit tasks.** Notebook 05's nested-submit deadlock: every worker runs a task that
# waits for another task of the same pool. Inside a Dask task, `worker_client()` gives a client and
# *secedes*: the task gives its worker thread back while it waits, and *rejoins* at the end of the
# block (`distributed.secede()` / `rejoin()` by hand). Two parents fill both workers' only thread:

# %%
def total_of_squares(n):
    with worker_client() as inner:  # secede while we wait for the children
        return sum(inner.gather(inner.map(square, range(n), pure=False)))


nested = [f.result(timeout=30) for f in client.map(total_of_squares, [3, 4], pure=False)]
claim(nested == [0 + 1 + 4, 0 + 1 + 4 + 9], "parents that occupied every worker thread still got their children's results")

# %% [markdown]
# **Reaching a real cluster.** Start `dask scheduler` on one machine and `dask worker ADDRESS` on others
# (or use `dask-jobqueue`, `dask-kubernetes`, a cloud service), then
# `Client(ADDRESS, security=Security(tls_ca_file=..., tls_client_cert=..., tls_client_key=...))`:
# never leave a scheduler open on a network. Code written against `get_executor()` keeps working, with
# the differences above. The cluster adds what one machine never had: functions sent by reference
# must be installed on every worker, data travels, and a worker can vanish (its tasks re-run elsewhere;
# a task that keeps killing workers fails with `KilledWorker`). The dashboard (`client.dashboard_link`)
# needs `bokeh`, which the course does not install.
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
# that sums `task(r)` over `ranges` using only `submit` and `concurrent.futures.as_completed`, so it runs
# on any executor, including `client.get_executor()`.

# %%
def total_primes(executor, ranges, task=count_primes_in):
    raise NotImplementedError


check.total_primes(total_primes)

# %% [markdown]
# **Exercise 09.3 — `as_completed` on a Dask cluster.** Write `fastest_first(client, delays)` that runs
# `sleep_then_return(d, d)` on the cluster for every delay and returns the results in the order the
# tasks finish.

# %%
def fastest_first(client, delays):
    raise NotImplementedError


check.fastest_first(fastest_first, client)

# %% [markdown]
# Stuck? Each checker gives a hint while the answer is not right yet. To see a worked solution, remove
# the `#` below and run the cell (or `"09.2"`, `"09.3"`). Try it yourself first!

# %%
# checks.solution("09.1")

# %% [markdown]
# ## Recap
#
# - 3.9–3.15 added `cancel_futures`, `max_tasks_per_child` (mind the hang on older releases), the
#   `TimeoutError` alias, free-threading, `process_cpu_count`, interpreter pools, `buffersize`,
#   `terminate_workers`, forkserver by default on POSIX other than macOS, and exit codes in
#   `BrokenProcessPool`: detect features with `hasattr` or `inspect.signature`, and test on every
#   Python you support.
# - `client.get_executor()` runs code written against `submit` / `map` / `as_completed`, without
#   `cancel_futures` or `buffersize`, and its `shutdown(wait=False)` cancels running tasks. Dask's own
#   futures need `distributed.as_completed`; submits are pure unless you say `pure=False`.
# - Secure a cluster (TLS), mind what travels, and use what Dask adds (`retries=`, `worker_client`).
#
# **Back to:** [the course map](00-start-here.ipynb).

# %%
left = lab.close()  # the client, the cluster and its scratch folder
claim(not left and not multiprocessing.active_children(),
      "the cluster, its worker processes and its scratch files are gone", left=left)
