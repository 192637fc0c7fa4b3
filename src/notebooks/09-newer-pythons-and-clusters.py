# Source of notebooks/09-newer-pythons-and-clusters.ipynb (build with: python src/notebooks/build.py 09)

# %% [markdown]
# # 09 · Newer Pythons and clusters
#
# **Why this matters.** Newer Pythons stop pools early, recycle workers, run threads without the GIL,
# and from 3.14 start processes differently on Linux (and every POSIX system but macOS); a Dask
# cluster speaks nearly an executor's language. Each cell runs a change on *your* Python and checks
# what it says about the others.
#
# **In this notebook you will**
# - try what 3.9–3.13 added, and find out whether your Python has the `max_tasks_per_child` hang and
#   the lambda deadlock;
# - run what 3.14 and 3.15 add, where your Python has it;
# - run one function on threads, processes and a secured Dask cluster, and see what differs there.
#
# **Time:** about 60 minutes. **Prerequisites:** notebooks 01–05.
#
# **Previous:** [08 · asyncio and executors](08-asyncio-and-executors.ipynb) ·
# **Next:** back to the [course map](00-start-here.ipynb).

# %%
import concurrent.futures as cf
import itertools
import multiprocessing
import sys
import sysconfig
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import cloudpickle
import futureslab
from futureslab import checks, lesson09, stdlib_fixes
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
# | Python | added or changed |
# |---|---|
# | 3.9 | `shutdown(cancel_futures=True)` |
# | 3.11 | `max_tasks_per_child`; `concurrent.futures.TimeoutError` *is* the builtin `TimeoutError` |
# | 3.13 | free-threaded builds (experimental), `sys._is_gil_enabled()`; `os.process_cpu_count()` |
# | 3.14 | `InterpreterPoolExecutor`, `map(buffersize=)`, `terminate_workers()` / `kill_workers()`; forkserver the default start method on POSIX other than macOS; free-threading officially supported |
# | 3.15 | exit codes in `BrokenProcessPool`; `set_forkserver_preload(on_error=)`; lazy imports (PEP 810) |
#
# Read down to the oldest Python you support: later rows are not yours to rely on. The cell reads what
# your Python has from its standard library (`hasattr`, `inspect.signature`), not its version number.

# %% tags=["nbval-ignore-output"]
found = lesson09.features()
print(lesson09.feature_table(found))

# %% [markdown]
# Look for the first `no`: your Python lacks that feature and the ones after it.

# %%
claim(all(here == (PY >= since) for since, here in found.values()), "this Python has the features of its version")

# %% [markdown]
# ### `cancel_futures` (3.9)
#
# `with` (and `shutdown()`) waits for every submitted task, queued ones included. With
# `cancel_futures=True`, tasks not yet started are cancelled; running ones finish. One worker, six
# tasks of 0.2 s:

# %%
pool = ThreadPoolExecutor(max_workers=1)
futures = [pool.submit(sleep_for, 0.2) for _ in range(6)]
lesson09.wait_until_running(futures[0])
with stopwatch() as sw:
    pool.shutdown(wait=True, cancel_futures=True)
states = ["cancelled" if f.cancelled() else "done" for f in futures]
print(states, "shutdown took", fmt_seconds(sw))
claim(states == ["done"] + ["cancelled"] * 5 and sw.elapsed < 0.5, "shutdown cancelled the five queued tasks")

# %% [markdown]
# ### `max_tasks_per_child` (3.11)
#
# With `max_tasks_per_child=N` a worker exits after N tasks and the pool starts a fresh one: a cure for
# libraries that leak memory or state. Forking from a process with threads is unsafe, so it refuses a
# fork context (`ValueError`) and defaults to spawn. Four tasks on
# `ProcessPoolExecutor(2, mp_context=spawn, max_tasks_per_child=1)`:

# %% tags=["nbval-ignore-output"]
recycled = lesson09.recycled_workers(tasks=4, workers=2, max_tasks_per_child=1)  # None before 3.11
refused_fork = lesson09.recycling_refuses_fork()  # None without fork or before 3.11
print(recycled, "| refuses fork:", refused_fork)

# %%
claim(recycled is None or len(set(recycled.pids)) == 4, "max_tasks_per_child=1 gave each task a fresh process")
claim(refused_fork is not False, "a pool that recycles workers refuses fork")

# %% [markdown]
# **A bug to know about** ([gh-115634](https://github.com/python/cpython/issues/115634)). With
# `max_tasks_per_child` above 1 a pool can hang for good: when a worker retires, the pool may take a
# stale "a worker is idle" signal for a live worker and never start the replacement. Known to hang:
# every 3.11 and 3.12 release, 3.13.0–3.13.5, 3.14.0–3.14.3; known fixed: 3.14.8+, 3.15.0b4+. The cell
# runs the reproducer on your Python, in a fresh interpreter stopped after 6 s:

# %% tags=["nbval-ignore-output"]
hung = lesson09.max_tasks_hang(timeout=6)  # None before 3.11
known = lesson09.known_hang()  # True: known to hang, False: known fixed, None: not known
print(f"Python {sys.version.split()[0]}: hung {hung}, known to hang {known}")

# %%
claim(hung is None or known is None or hung == known, "the reproducer hung exactly where a release is known to")

# %% [markdown]
# Where it hangs, use `max_tasks_per_child=1` (no stale signal is left) and wait with a timeout.
#
# **Another one** ([gh-125451](https://github.com/python/cpython/issues/125451)): a process pool that
# fails to pickle a task (notebook 01's lambda) can deadlock as it shuts down. Its feeder thread,
# reporting the error, waits for the pool's shutdown lock, while the manager thread holds that lock
# and waits for the feeder thread to end. The window is a few lines wide, so it strikes rarely, and
# then for good: no `timeout=` reaches it, and the interpreter cannot exit. The 3.12 and 3.13 branches
# fixed it in October 2024; 3.10 and 3.11 take the lock too, but wait for the feeder outside it. Which
# Python has it is read from the code of `concurrent.futures.process`, not from the version number.
# `futureslab.setup()` applies the same fix to this kernel when it is needed, so the course's lambdas
# cannot hang it; your own programs keep the bug until you upgrade. The cell forces the race in a
# fresh interpreter (the feeder pauses inside the window), with the standard library's code and then
# with the fix. A deadlock is recognised by what it is, not by a time limit: the feeder thread stopped
# in its error handler while the manager thread waits for it to end, both unchanged for a second (read
# from their stacks). A pool that is only slow, on a busy machine, is waited for, up to 30 s; a race
# still without an answer then "cannot be shown" if other programs kept the machine busy meanwhile (the
# cell measures their load), and fails if they left it free.

# %% tags=["nbval-ignore-output"]
race = stdlib_fixes.gh125451_demo()  # both races: the standard library's code, then with the fix
print(stdlib_fixes.gh125451_summary())
print(race)

# %%
race.judge("stuck", stdlib_fixes.stdlib_has_gh125451(), "the race deadlocked exactly where this Python's code has the bug")
race.judge("with_fix", False, "with the fix the task got its pickling error and the pool shut down")
claim(stdlib_fixes.gh125451_fixed_here() == stdlib_fixes.stdlib_has_gh125451(), "setup() fixed this kernel exactly where needed")

# %% [markdown]
# ### The `TimeoutError` alias (3.11)
#
# The pools' timeouts raise `concurrent.futures.TimeoutError`: up to 3.10 a class of its own, which
# `except TimeoutError:` misses; from 3.11 the builtin. Code for 3.10 catches `cf.TimeoutError`.

# %%
with ThreadPoolExecutor(max_workers=1) as pool:
    try:
        pool.submit(sleep_for, 0.3).result(timeout=0.05)
    except cf.TimeoutError as exc:  # works on every version
        caught_by_builtin = isinstance(exc, TimeoutError)  # would `except TimeoutError` have caught it?
claim(caught_by_builtin == (PY >= (3, 11)), "`except TimeoutError` caught it exactly from 3.11")

# %% [markdown]
# ### Free-threaded builds (3.13+)
#
# A separate build of CPython runs without the GIL (`python3.14t`; experimental in 3.13, supported from
# 3.14): threads run Python code on several cores at once. `Py_GIL_DISABLED` says how Python was
# **built** (`1` free-threaded, `0` default, `None` before 3.13), `sys._is_gil_enabled()` whether the
# GIL is on **now** (`PYTHON_GIL=1`, or an extension not marked free-threading-ready, turns it on).

# %% tags=["nbval-ignore-output"]
built_free_threaded = sysconfig.get_config_var("Py_GIL_DISABLED")
gil_enabled = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
print(f"Py_GIL_DISABLED = {built_free_threaded!r}, GIL enabled right now: {gil_enabled}")

# %%
claim(built_free_threaded in ((None,) if PY < (3, 13) else (0, 1)) and (gil_enabled or built_free_threaded == 1),
      "the setting exists from 3.13, and only a free-threaded build runs without the GIL")

# %% [markdown]
# `threads_on_cpu` counts primes in two halves one after the other, then on two threads, and
# records how many cores the threads kept busy (CPU time over wall time, notebook 01's witness):
# with the GIL one core's worth, whatever the speed-up says; without it two, and a real speed-up.

# %%
threads = lesson09.threads_on_cpu(prime_ranges(1_200_000, chunks=2, start=1_000_000))
threads.claim("CPU work on 2 threads: one core's worth with the GIL, two cores and a speed-up without it")

# %% [markdown]
# ### `os.process_cpu_count()` (3.13)
#
# `os.cpu_count()` counts the machine's CPUs, `os.process_cpu_count()` those this process may use. From
# 3.13 the pools' default `max_workers` use it (threads: `min(32, that + 4)`). Neither counts a
# container's CPU quota (Docker's `--cpus`, Binder). A fresh Python pinned to one CPU (Linux only):

# %% tags=["nbval-ignore-output"]
pinned = lesson09.defaults_on_one_cpu()  # None where a process cannot choose its CPUs
print(pinned)

# %%
follows = 1 if PY >= (3, 13) else pinned and pinned.cpu_count  # the CPUs the defaults count
claim(pinned is None or (pinned.process_pool, pinned.thread_pool, pinned.process_cpu_count)
      == (follows, min(32, follows + 4), 1 if PY >= (3, 13) else None), "the defaults count usable CPUs from 3.13")

# %% [markdown]
# ### What 3.14 adds
#
# Each cell runs the feature where your Python has it; each claim checks both sides.
#
# **`InterpreterPoolExecutor`**: each worker thread runs a sub-interpreter with its own GIL, so CPU
# work runs in parallel in one process; tasks and results are pickled, as with processes.

# %% tags=["nbval-ignore-output"]
answer = None  # (primes below 20000, the process ids that counted them)
if PY >= (3, 14):
    with cf.InterpreterPoolExecutor(max_workers=2) as pool:
        answer = sum(pool.map(count_primes_in, prime_ranges(20_000, 4))), {p for p, _ in pool.map(whoami, range(4))}
print(answer)

# %%
claim(answer == (None if PY < (3, 14) else (count_primes(0, 20_000), {whoami()[0]})),
      "from 3.14, interpreters in this very process computed the right answer")

# %% [markdown]
# **`map(fn, iterable, buffersize=N)`**: plain `map` submits a task for every input before you see a
# result (notebook 04), so it cannot take an endless generator. With `buffersize` it keeps at most N
# tasks ahead of what you read. `counted` counts the inputs `map` took:

# %% tags=["nbval-ignore-output"]
with ThreadPoolExecutor(max_workers=2) as pool:
    plain, endless = lesson09.counted(range(1000)), lesson09.counted(itertools.count())
    first_five = list(itertools.islice(pool.map(square, plain), 5))
    lazily = list(itertools.islice(pool.map(square, endless, buffersize=4), 5)) if PY >= (3, 14) else None
print(f"read 5 results: plain map took {plain.taken} inputs, map(buffersize=4) took {endless.taken}")

# %%
claim(plain.taken == 1000 and lazily == (None if PY < (3, 14) else first_five) and endless.taken <= 5 + 4,
      "plain map took all its input; from 3.14 buffersize=4 stayed at most 4 ahead")

# %% [markdown]
# **`terminate_workers()` / `kill_workers()`** send SIGTERM / SIGKILL (on Windows `TerminateProcess`)
# to every worker, after `shutdown(wait=False, cancel_futures=True)`; the stuck task then fails:

# %% tags=["nbval-ignore-output"]
stopped = None  # (the stuck task's outcome, seconds, is its worker still alive?)
if PY >= (3, 14):
    with stopwatch() as took, ProcessPoolExecutor(max_workers=1) as pool:
        worker_pid = pool.submit(whoami).result()[0]  # the worker is up
        stuck = pool.submit(sleep_for, 30)
        lesson09.wait_until_running(stuck)
        pool.terminate_workers()
        cf.wait([stuck], timeout=10)
    stopped = lesson09.outcome(stuck.result, timeout=0), took.elapsed, worker_pid in lesson09.child_pids()
print(stopped)

# %%
claim(stopped is None if PY < (3, 14) else stopped[0].startswith("BrokenProcessPool") and stopped[1] < 8
      and not stopped[2], "from 3.14 terminate_workers() stopped a stuck worker at once")

# %% [markdown]
# **forkserver by default on POSIX other than macOS** (Linux, the BSDs: fork before): a function
# defined in a notebook now fails in a process pool there, as under spawn (notebook 01).

# %% tags=["nbval-ignore-output"]
method, listed_first = lesson09.fresh_start_method()
print(f"a fresh Python {sys.version.split()[0]} on {sys.platform} starts processes with {method}")
expected = "spawn" if sys.platform in ("win32", "darwin") else "forkserver" if PY >= (3, 14) else "fork"
claim(method == expected == listed_first, "this platform's default start method is the one the table promises")

# %% [markdown]
# ### What 3.15 changes
#
# **A `BrokenProcessPool` that names the exit code.** When a worker dies without a Python error (a
# segfault, the out-of-memory killer, `os._exit`), up to 3.14 the exception has no `__cause__`; from
# 3.15 the cause says each such worker "terminated abruptly with exit code N" (negative: a signal):

# %% tags=["nbval-ignore-output"]
with ProcessPoolExecutor(max_workers=1) as pool:
    try:
        pool.submit(crash_worker, 3).result()  # the worker calls os._exit(3)
    except BrokenProcessPool as exc:
        cause = str(exc.__cause__ or "")
print("its cause:", cause.strip("\n'") or "none given")

# %%
claim(("terminated abruptly with exit code 3" in cause) == (PY >= (3, 15)), "the exit code is named exactly from 3.15")

# %% [markdown]
# **Forkserver preload errors.** `set_forkserver_preload(["numpy"])` imports modules once in the
# forkserver, for every worker it forks. Up to 3.14 a module that fails to import is skipped silently;
# from 3.15 `on_error="warn"` warns and `"fail"` stops the forkserver. A fresh Python tries a missing one:

# %% tags=["nbval-ignore-output"]
preload = lesson09.failed_preload()  # None where there is no forkserver
print(preload)

# %%
claim(preload is None or preload.startswith("the pool failed" if PY >= (3, 15) else "no on_error: the pool ran"),
      "a failed preload went unnoticed before 3.15; from 3.15 on_error='fail' stopped the pool")

# %% [markdown]
# **Lazy imports.** `import concurrent.futures` loads `multiprocessing` only when you touch an
# executor: through a module `__getattr__` since 3.7, and from 3.15 through PEP 810's
# `lazy from .process import ProcessPoolExecutor`, whose name holds a `lazy_import` object until first
# use. Your code sees no difference:

# %% tags=["nbval-ignore-output"]
lazy = lesson09.lazy_import_probe()  # in a fresh Python
print(lazy)

# %%
claim(not lazy.loaded_at_import and lazy.loaded_after_use and (lazy.placeholder == "lazy_import") == (PY >= (3, 15)),
      "multiprocessing loads on first use, through a lazy_import from 3.15")

# %% [markdown]
# ## 2. Outgrowing one machine: a Dask cluster
#
# [Dask](https://distributed.dask.org)'s `Client` runs tasks on *workers* that may sit on many
# machines, with `submit`, `map` and futures; `client.get_executor()` returns a
# `concurrent.futures.Executor`. Ours is a `LocalCluster` of two worker processes on `127.0.0.1`.
# **Anyone who can connect to a scheduler can run any code on its workers, as you**, and every user of
# a shared machine can reach `127.0.0.1`: so it uses TLS, with a throwaway certificate authority held
# in this kernel's memory.

# %%
from distributed import Security, as_completed as dask_as_completed, worker_client

if "lab" in globals():
    lab.close()  # this cell ran before: stop that cluster first
security = Security.temporary()  # a new certificate authority, in memory only
lab = lesson09.start_cluster(security, n_workers=2)  # LocalCluster(security=...), Client, scratch folder
client = lab.client

# %% [markdown]
# A stranger without the certificate tries, from a fresh interpreter, over plain TCP and over TLS with
# a certificate of its own (the test suite also tries as another user):

# %% tags=["nbval-ignore-output"]
attempts = lesson09.stranger_attempts(lab.cluster.scheduler_address)
print(*attempts, sep="\n")

# %%
claim(len(attempts) == 2 and all(a.startswith("refused:") for a in attempts), "the cluster refused the stranger")

# %% [markdown]
# ### What is the same
#
# `lesson09.primes_report(executor, ranges)` counts primes with `map`, then with `submit` and
# `concurrent.futures.as_completed`; `get_executor()` returns standard futures, so it runs unchanged:

# %%
RANGES = prime_ranges(200_000, chunks=8)
reports = []
for executor in (ThreadPoolExecutor(2), ProcessPoolExecutor(2), client.get_executor()):
    with executor:
        reports.append(lesson09.primes_report(executor, RANGES))
print("(by map, by as_completed) on threads, processes, Dask:", reports)
claim(reports == [(count_primes(0, 200_000),) * 2] * 3,
      "the same function gave the same answers on all three executors")

# %% [markdown]
# ### What differs
#
# **1. Not every argument.** Dask's executor takes `shutdown(wait=)` and `map(timeout=, chunksize=)`
# (the chunk size is ignored): `shutdown(cancel_futures=True)` (exercise 09.1) and `map(buffersize=)`
# raise `TypeError`.

# %%
with client.get_executor() as dask_executor:
    dask_cancel = lesson09.outcome(dask_executor.shutdown, cancel_futures=True)
    dask_buffersize = lesson09.outcome(lambda: list(dask_executor.map(square, range(3), buffersize=2)))
standard_cancel = lesson09.outcome(ThreadPoolExecutor(max_workers=1).shutdown, cancel_futures=True)
print(dask_cancel, dask_buffersize, f"ThreadPoolExecutor: {standard_cancel}", sep="\n")
refused = dask_cancel.startswith("TypeError") and dask_buffersize.startswith("TypeError")
claim(refused and standard_cancel == "worked", "Dask's executor refused cancel_futures and buffersize")

# %% [markdown]
# **2. `shutdown(wait=False)` cancels running tasks.** A standard executor never does. Dask's cancels
# every future it made, running ones included, though the worker runs that code to its end and throws
# the result away. `shutdown_nowait_on_dask` submits a 1.5 s task, shuts down without waiting, and
# asks the workers (`client.run`) what they run:

# %%
on_dask = lesson09.shutdown_nowait_on_dask(client)
pool = ThreadPoolExecutor(max_workers=1)
on_threads = pool.submit(sleep_for, 0.3)
lesson09.wait_until_running(on_threads)
pool.shutdown(wait=False)
print(on_dask, "| ThreadPoolExecutor: the running task returned", on_threads.result(timeout=5))
claim(on_dask.cancelled and on_dask.code_still_ran and on_threads.result() == 0.3,
      "shutdown(wait=False) cancelled a running task on Dask only")

# %% [markdown]
# **3. Dask's futures are not `concurrent.futures` futures**: the standard `as_completed` and `wait`
# fail on them; use Dask's. Two naps, the slow one submitted first, each pinned to its own worker
# (`workers=`) so both start at once; `nap` returns when it woke up:

# %%
slow_worker, fast_worker = sorted(client.scheduler_info()["workers"])
naps = [client.submit(lesson09.nap, 0.6, workers=[slow_worker], pure=False),
        client.submit(lesson09.nap, 0.1, workers=[fast_worker], pure=False)]
standard = [lesson09.outcome(lambda: next(cf.as_completed(naps, timeout=5))),
            lesson09.outcome(cf.wait, naps, timeout=5)]
finished = [f.result() for f in dask_as_completed(naps)]
print("standard:", [o.split(":")[0] for o in standard], "| Dask's as_completed:", [s for s, _ in finished])
claim("worked" not in standard and [s for s, _ in finished] == [0.1, 0.6] and finished[0][1] <= finished[1][1],
      "only Dask's as_completed took Dask futures, in the order they finished")

# %% [markdown]
# **4. Identical calls run once.** `client.submit` assumes a task is *pure*: the same function and
# arguments get the same key, computed once while a future for it is held. A trap for side effects and
# changing answers (files, requests, the clock): pass `pure=False` there (also to `map`, `get_executor`).

# %%
same = {}  # (same key, same result) of two identical calls
for pure in (True, False):
    a, b = client.submit(time.time_ns, pure=pure), client.submit(time.time_ns, pure=pure)
    same[f"pure={pure}"] = (a.key == b.key, a.result() == b.result())
print(same)
claim(same == {"pure=True": (True, True), "pure=False": (False, False)}, "identical pure calls ran once")

# %% [markdown]
# **5. How functions travel.** Dask pickles with `cloudpickle`: an importable function travels **by
# reference** (module and name: every worker needs the module installed); a function defined in a
# notebook, or a lambda, **by value** (its code), so it runs where a spawn or forkserver pool fails.

# %%
def cube(n):  # defined in this notebook, i.e. in __main__
    return n ** 3


by_reference, by_value = cloudpickle.dumps(count_primes_in), cloudpickle.dumps(cube)
on_cluster = (client.submit(cube, 3).result(), client.submit(lambda x: x + 1, 41).result())
print("cube's pickle is over twice count_primes_in's:", len(by_value) > 2 * len(by_reference), "| ran:", on_cluster)
claim(cloudpickle.loads(by_reference) is count_primes_in and b"futureslab.tasks" in by_reference
      and cloudpickle.loads(by_value) is not cube and len(by_value) > 2 * len(by_reference) and on_cluster == (27, 42),
      "an importable function travelled by reference, a notebook function and a lambda by value")

# %% [markdown]
# **6. Data lives somewhere**, and moving it costs network time: keep results on the workers and pass
# futures to other tasks (below, `sum` runs on a worker); send a large input once with `client.scatter`.

# %%
partials = client.map(count_primes_in, RANGES)  # 8 futures; the results stay on the workers
total = client.submit(sum, partials)  # runs on a worker, fed straight from the others
claim(total.result() == count_primes(0, 200_000), "the reduction ran on the cluster and got the right total")

# %% [markdown]
# ### Dask's own answers where the standard API has none
#
# **Retries.** An executor runs a task once; retrying is your code (notebook 06). Dask retries a failed
# task with `retries=N`. `lesson09.flaky(path)` fails its first two runs (it counts them in a file):

# %%
once = lesson09.outcome(client.submit(lesson09.flaky, lab.new_path("once"), pure=False).result)
with_retries = client.submit(lesson09.flaky, lab.new_path("retried"), pure=False, retries=2).result()
print(f"without retries: {once}; with retries=2: succeeded on attempt {with_retries}")
claim(once == "ConnectionError: attempt 1 failed" and with_retries == 3, "retries=2 ran it until it worked")

# %% [markdown]
# **Tasks that submit tasks.** Notebook 05's deadlock: every worker waits for a task of the same pool.
# In a Dask task, `worker_client()` *secedes* (gives the worker thread back while it waits) and
# *rejoins* after the block (`secede()` / `rejoin()` by hand). Two parents fill both workers' threads:

# %%
def total_of_squares(n):
    with worker_client() as inner:  # secede while we wait for the children
        return sum(inner.gather(inner.map(square, range(n), pure=False)))


nested = [f.result(timeout=30) for f in client.map(total_of_squares, [3, 4], pure=False)]
claim(nested == [0 + 1 + 4, 0 + 1 + 4 + 9], "parents on every worker thread still got their children's results")

# %% [markdown]
# **A real cluster.** Run `dask scheduler` on one machine and `dask worker ADDRESS` on others (or use
# `dask-jobqueue`, `dask-kubernetes`), then `Client(ADDRESS, security=Security(...))` with its TLS
# certificates. There, a worker can vanish: its tasks re-run elsewhere, and a task that keeps killing
# workers fails with `KilledWorker`.
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
# - Detect new features with `hasattr` or `inspect.signature`, and test on every Python you support.
# - `client.get_executor()` runs `submit` / `map` / `as_completed` code, but has no `cancel_futures`
#   or `buffersize` and cancels running tasks on `shutdown(wait=False)`; Dask's futures need Dask's
#   `as_completed`; submits are pure unless you say `pure=False`.
# - Secure a cluster (TLS), mind what travels, and use `retries=` and `worker_client`.
#
# **Back to:** [the course map](00-start-here.ipynb).

# %%
left = lab.close()  # the client, the cluster and its scratch folder
claim(not left and not multiprocessing.active_children(), "the cluster, its processes and files are gone", left=left)
