# Source of notebooks/09-newer-pythons-and-clusters.ipynb (build with: python src/notebooks/build.py 09)

# %% [markdown]
# # 09 · Newer Pythons and clusters
#
# **Why this matters.** `concurrent.futures` keeps growing: recent Pythons added ways to stop a pool
# early, recycle worker processes, run threads without the GIL, run interpreters side by side in one
# process, and they changed the default start method on Linux. And when one machine is not enough, a
# Dask cluster speaks nearly the same language as an executor, though not exactly. This notebook runs
# each change on the Python you have, and checks what it says about the others against that Python.
#
# **In this notebook you will**
# - use `cancel_futures` (3.9), `max_tasks_per_child` (3.11) and the `TimeoutError` alias (3.11), and
#   find out whether your Python has the `max_tasks_per_child` hang;
# - detect a free-threaded build (3.13+) and see what it changes for CPU work on threads;
# - meet what 3.14 adds (`InterpreterPoolExecutor`, `map(buffersize=)`, `terminate_workers()` /
#   `kill_workers()`, forkserver as the default start method on POSIX systems other than macOS) and
#   what 3.15 changes (`BrokenProcessPool` names the dead workers' exit codes, forkserver preload
#   errors, lazy imports);
# - run one function on a thread pool, a process pool and a secured Dask cluster, and learn exactly
#   what is the same on a cluster, what differs, and Dask's own answers where the standard API has none.
#
# **Time:** about 35 minutes. **Prerequisites:** notebooks 01–05.
#
# **Previous:** [08 · asyncio and executors](08-asyncio-and-executors.ipynb) ·
# **Next:** back to the [course map](00-start-here.ipynb).

# %% [markdown]
# ## Set-up
#
# Some facts below are about a *fresh* Python (its default start method, what `import
# concurrent.futures` loads, a bug that hangs a pool for good): `fresh_python` checks those in a new
# interpreter of this same Python, so that this kernel's state cannot spoil them and a hang cannot
# take the kernel with it.

# %%
import concurrent.futures as cf
import inspect
import itertools
import logging
import multiprocessing
import os
import pickle
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

import futureslab
from futureslab import checks
from futureslab.checks import nb09 as check
from futureslab.claims import Room, claim, measure_until
from futureslab.cores import LoadMeter
from futureslab.tasks import (count_primes, count_primes_in, crash_worker, prime_ranges, sleep_for,
                              sleep_then_return, square, whoami)
from futureslab.timing import cpu_count, fmt_seconds, fmt_speedup, speedup, stopwatch

futureslab.setup()
PY = sys.version_info[:2]
SCRATCH_BEFORE = os.path.exists(os.path.join(tempfile.gettempdir(), "dask-scratch-space"))


def fresh_python(code, timeout=30):
    """Run ``code`` in a new interpreter of this Python; return what it printed.
    Raises subprocess.TimeoutExpired (after killing it) if it runs longer than ``timeout`` s."""
    with tempfile.TemporaryDirectory(prefix="futureslab-fresh-") as temp:  # its temporary files too
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "TMPDIR": temp})
    if done.returncode != 0:
        raise RuntimeError(f"the fresh interpreter failed:\n{done.stderr[-1500:]}")
    return done.stdout.strip()

# %% [markdown]
# ## 1. What changed, version by version
#
# | Python | change | why you care |
# |---|---|---|
# | 3.9 | `shutdown(cancel_futures=True)` | stop a pool without running its queue |
# | 3.11 | `ProcessPoolExecutor(max_tasks_per_child=N)` | recycle workers that leak memory or state |
# | 3.11 | `concurrent.futures.TimeoutError` *is* the builtin `TimeoutError` | `except TimeoutError` finally catches it |
# | 3.13 | free-threaded builds (`python3.13t`, experimental), `sys._is_gil_enabled()` | threads can run Python code on several cores |
# | 3.13 | `os.process_cpu_count()`, used for the pools' default `max_workers` | the defaults respect the CPUs this process may use |
# | 3.14 | `InterpreterPoolExecutor` | several interpreters, each with its own GIL, in one process |
# | 3.14 | `Executor.map(..., buffersize=N)` | `map` over a huge or endless input without submitting it all |
# | 3.14 | `ProcessPoolExecutor.terminate_workers()` / `kill_workers()` | stop stuck workers at once |
# | 3.14 | forkserver is the default start method on POSIX systems other than macOS (Linux, the BSDs) | functions must come from importable modules there too |
# | 3.14 | the free-threaded build is officially supported (still a separate build, `python3.14t`) | no longer experimental |
# | 3.15 | a `BrokenProcessPool` with no known cause lists each worker that "terminated abruptly with exit code N" | see which worker died, and how |
# | 3.15 | `set_forkserver_preload(modules, on_error="ignore" / "warn" / "fail")` | a module the forkserver cannot preload stops being a silent slowdown |
# | 3.15 | `concurrent.futures` loads its executors with `lazy from … import` (PEP 810) | same behaviour as before: importing the package stays cheap |
#
# Which of these your Python has, read from the standard library itself rather than from the version
# number (this output differs between Pythons; the claim under it does not):

# %% tags=["nbval-ignore-output"]
def parameters(fn):
    return inspect.signature(fn).parameters


FEATURES = {  # feature: (the version that added it, is it here?)
    "shutdown(cancel_futures=)": ((3, 9), "cancel_futures" in parameters(cf.Executor.shutdown)),
    "max_tasks_per_child": ((3, 11), "max_tasks_per_child" in parameters(ProcessPoolExecutor)),
    "TimeoutError alias": ((3, 11), cf.TimeoutError is TimeoutError),
    "sys._is_gil_enabled()": ((3, 13), hasattr(sys, "_is_gil_enabled")),
    "os.process_cpu_count()": ((3, 13), hasattr(os, "process_cpu_count")),
    "InterpreterPoolExecutor": ((3, 14), hasattr(cf, "InterpreterPoolExecutor")),
    "map(buffersize=)": ((3, 14), "buffersize" in parameters(cf.Executor.map)),
    "terminate_workers()": ((3, 14), hasattr(ProcessPoolExecutor, "terminate_workers")),
    "kill_workers()": ((3, 14), hasattr(ProcessPoolExecutor, "kill_workers")),
    "forkserver preload on_error=": ((3, 15), "on_error" in parameters(multiprocessing.set_forkserver_preload)),
}
print(f"Python {sys.version.split()[0]} on {sys.platform}")
for name, (since, here) in FEATURES.items():
    print(f"  {name:<30} since {since[0]}.{since[1]:<3} {'yes' if here else 'no'}")

# %%
claim(all(here == (PY >= since) for since, here in FEATURES.values()),
      "this Python has exactly the features its version promises, and none of the later ones")

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
# default. We pass the spawn context explicitly to make that visible. Two workers, four tasks, a
# fresh process for each task:

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
refused_fork = None
if PY >= (3, 11) and "fork" in multiprocessing.get_all_start_methods():
    try:
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), max_tasks_per_child=1)
        refused_fork = False
    except ValueError as exc:
        refused_fork = True
        print("with fork:", exc)

# %%
claim(PY < (3, 11) or (not not_done and len(pids) == 4),
      "where available, max_tasks_per_child=1 gave every task a fresh process, within the timeout")
claim(refused_fork is not False, "where fork and max_tasks_per_child exist, a pool that recycles workers refuses fork")

# %% [markdown]
# **A bug to know about.** With `max_tasks_per_child` above 1, a pool could hang for good: when a
# worker exited at its limit, the pool could mistake a stale "a worker is idle" signal for a live
# worker and never start the replacement, so the queued tasks waited forever. CPython issue
# [gh-115634](https://github.com/python/cpython/issues/115634): present since the feature arrived in
# 3.11 and fixed in July 2026. Affected: every 3.11 and 3.12 release (they receive security fixes only,
# so they keep it), 3.13 and 3.14 releases from before the fix, and 3.15 up to 3.15.0b3. Measured
# here: 3.11.7, 3.12.1 and 3.13.0 hang; 3.14.8 and 3.15.0 do not. The reproducer is the one from the
# issue: one worker that retires after 2 tasks, 10 tasks. A hang cannot be stopped from inside a
# kernel, so it runs in a fresh interpreter with a time limit:

# %% tags=["nbval-ignore-output"]
REPRODUCER = """
    import multiprocessing, os
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=2) as pool:
        print(len({f.result() for f in [pool.submit(os.getpid) for _ in range(10)]}), "workers ran 10 tasks")
"""
if PY >= (3, 11):
    try:
        print(fresh_python(REPRODUCER, timeout=6))
        hung = False
    except subprocess.TimeoutExpired:
        print("hung: the pool never started a replacement worker (stopped after 6 s)")
        hung = True
else:
    print("max_tasks_per_child needs Python 3.11 or later")
    hung = None
V = tuple(sys.version_info)
# releases known to hang (all released before the fix), and known to be fixed (measured, or later)
KNOWN_HANG = V[:2] in ((3, 11), (3, 12)) or (3, 13, 0) <= V[:3] <= (3, 13, 5) or (3, 14, 0) <= V[:3] <= (3, 14, 3)
KNOWN_FIXED = (3, 14, 8) <= V[:3] < (3, 15) or V >= (3, 15, 0, "beta", 4)

# %%
claim(hung is None or (hung if KNOWN_HANG else not hung if KNOWN_FIXED else True),
      "this Python hangs on the max_tasks_per_child reproducer exactly if it is a release known to have the bug")

# %% [markdown]
# So on an affected Python, use `max_tasks_per_child=1` (no stale signal is ever left over; the demo
# above uses it), or create a fresh pool every so many tasks yourself, and always wait with a timeout.
#
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
# CPython can be built without the GIL: experimental in 3.13 (PEP 703), officially supported from
# 3.14 (PEP 779), and still a separate build you choose to install (`python3.13t`, `python3.14t`);
# the default build keeps the GIL. There, threads run pure-Python code on several cores at once, so a
# `ThreadPoolExecutor` speeds up CPU work the way only a `ProcessPoolExecutor` could before, without
# pickling or process start-up. Two ways to ask:
#
# - `sysconfig.get_config_var("Py_GIL_DISABLED")` says how this Python was **built**: `1` for a
#   free-threaded build, `0` for a default build of 3.13 or later, `None` before 3.13 (no such setting);
# - `sys._is_gil_enabled()` (3.13+) says whether the GIL is on **right now**: always `True` on a
#   default build; on a free-threaded build `False`, unless something turned it back on (the
#   `PYTHON_GIL=1` setting, or importing an extension module not marked as free-threading-ready).

# %% tags=["nbval-ignore-output"]
built_free_threaded = sysconfig.get_config_var("Py_GIL_DISABLED")
gil_enabled = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
print(f"Py_GIL_DISABLED = {built_free_threaded!r}, GIL enabled right now: {gil_enabled}")

# %%
claim((built_free_threaded is None) == (PY < (3, 13)) and built_free_threaded in (None, 0, 1)
      and (gil_enabled or built_free_threaded == 1),
      "the build setting exists from 3.13, and only a free-threaded build can run without the GIL")

# %% [markdown]
# The measurement: count primes in two halves, one after another and on two threads. With the GIL
# the two threads take turns (no real speed-up); without it they can use two cores.

# %%
HALVES = prime_ranges(1_200_000, chunks=2, start=1_000_000)


def cpu_on_threads():
    with stopwatch() as seq:
        expected = [count_primes_in(h) for h in HALVES]
    with load, stopwatch() as threaded:
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert list(pool.map(count_primes_in, HALVES)) == expected
    return speedup(seq, threaded)


def as_predicted(s):
    return s <= 1.3 if gil_enabled else s >= 1.3


load = LoadMeter()
thread_speedup = measure_until(cpu_on_threads, as_predicted)
room = Room.now(load)
print(f"2 threads vs one after another: {fmt_speedup(thread_speedup)}")
claim(as_predicted(thread_speedup),
      "CPU work on 2 threads matched this build: no real speed-up with the GIL, a real one without it",
      needs_cores=room.granted if gil_enabled else 2, room=room, speedup=thread_speedup)

# %% [markdown]
# On a free-threaded build, code that shares data between threads needs the locks it always should have
# had: the GIL used to hide some races (notebook 05).
#
# ### `os.process_cpu_count()` (3.13)
#
# `os.cpu_count()` counts the machine's CPUs; `os.process_cpu_count()` counts the CPUs *this process*
# may run on (its CPU affinity, e.g. `taskset -c 0 python`). From 3.13 the pools' default
# `max_workers` use it: `ProcessPoolExecutor()` runs up to that many worker processes, and
# `ThreadPoolExecutor()` up to `min(32, that + 4)` threads. Neither counts a container's CPU *quota*
# (Docker's `--cpus`, Binder): there both still overstate what you get. A fresh interpreter pinned to
# one CPU shows the difference (where the OS lets a process choose its CPUs: Linux, not macOS or
# Windows). It reads the pools' private `_max_workers` only to check the documented default.

# %% tags=["nbval-ignore-output"]
PINNED = """
    import os, concurrent.futures as cf
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(os.cpu_count(), getattr(os, "process_cpu_count", lambda: None)(),
          cf.ProcessPoolExecutor()._max_workers, cf.ThreadPoolExecutor()._max_workers)
"""
if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
    machine, process, process_pool, thread_pool = (None if w == "None" else int(w)
                                                   for w in fresh_python(PINNED).split())
    print(f"pinned to one CPU: os.cpu_count()={machine}, os.process_cpu_count()={process}, "
          f"default workers: ProcessPoolExecutor {process_pool}, ThreadPoolExecutor {thread_pool}")
    follows = 1 if PY >= (3, 13) else machine  # what the defaults count
    defaults_ok = (process_pool == follows and thread_pool == min(32, follows + 4)
                   and (process == 1 if PY >= (3, 13) else process is None))
else:
    print("this OS does not let a process pin itself to CPUs (or has one CPU): nothing to compare")
    defaults_ok = None

# %%
claim(defaults_ok is not False,
      "the pools' default max_workers count the CPUs this process may use from 3.13, the machine's before")

# %% [markdown]
# ### What 3.14 adds
#
# Each cell below runs the new feature on 3.14 and later; on older Pythons it shows what they do
# instead. The claim under each checks both sides, so a 3.14 cannot pass by skipping the demo.
#
# **`InterpreterPoolExecutor`**: a thread pool where each worker thread runs its own
# sub-interpreter, with its own GIL. CPU work runs in parallel as with processes, but in one process;
# like processes, tasks and results are pickled between interpreters, so the same "importable
# function" rule applies.

# %% tags=["nbval-ignore-output"]
if hasattr(cf, "InterpreterPoolExecutor"):
    with cf.InterpreterPoolExecutor(max_workers=2) as pool:
        by_interpreters = sum(pool.map(count_primes_in, prime_ranges(20_000, 4)))
        where = {pid for pid, _ in pool.map(whoami, range(4))}
    print(f"{by_interpreters} primes below 20000, counted in processes {where} (this one is {os.getpid()})")
else:
    by_interpreters = where = None
    print("InterpreterPoolExecutor needs Python 3.14 or later")

# %%
claim((by_interpreters is not None) == (PY >= (3, 14))
      and (by_interpreters is None or (by_interpreters == count_primes(0, 20_000) and where == {os.getpid()})),
      "from 3.14 interpreters in this very process computed the right answer")

# %% [markdown]
# **`map(fn, iterable, buffersize=N)`**: `map` normally takes the whole input at once and submits a
# task for every item before you see the first result (notebook 04), so it cannot work on an endless
# generator. With `buffersize` it keeps at most N tasks ahead of what you have consumed. The cell
# counts how many items `map` pulled from the input by the time we had read 5 results.

# %% tags=["nbval-ignore-output"]
pulled = []


def numbers(limit=None):
    for n in itertools.count() if limit is None else range(limit):
        pulled.append(n)
        yield n


with ThreadPoolExecutor(max_workers=2) as pool:
    first_five = list(itertools.islice(pool.map(square, numbers(1000)), 5))
    print(f"plain map: read 5 results, {len(pulled)} of 1000 inputs taken")
    plain_pulled = len(pulled)
    pulled.clear()
    try:
        lazily = list(itertools.islice(pool.map(square, numbers(), buffersize=4), 5))  # endless input
        print(f"map(buffersize=4) on an endless input: read 5 results, {len(pulled)} inputs taken")
    except TypeError as exc:
        lazily = None
        print("map(buffersize=) needs Python 3.14 or later:", exc)

# %%
claim(plain_pulled == 1000 and first_five == [0, 1, 4, 9, 16]
      and (lazily is not None) == (PY >= (3, 14))
      and (lazily is None or (lazily == first_five and len(pulled) <= 5 + 4)),
      "map took all its input at once, and from 3.14 buffersize=4 stayed at most 4 tasks ahead")

# %% [markdown]
# **`terminate_workers()` / `kill_workers()`** on `ProcessPoolExecutor`: send SIGTERM / SIGKILL (on
# Windows, `TerminateProcess`) to every worker at once, for a pool stuck in tasks that will never
# finish. They first call `shutdown(wait=False, cancel_futures=True)`, so the pool accepts nothing new.
# They return at once; a moment later, when the pool notices its worker is gone, the stuck task's
# future fails with `BrokenProcessPool`. One worker: it answers once (so it is up), then gets a 30 s
# task.

# %% tags=["nbval-ignore-output"]
if hasattr(ProcessPoolExecutor, "terminate_workers"):
    with stopwatch() as stop_time:
        with ProcessPoolExecutor(max_workers=1) as pool:
            worker_pid = pool.submit(whoami).result()[0]          # the worker is up and idle
            stuck = pool.submit(sleep_for, 30)
            while not stuck.running():
                time.sleep(0.01)
            pool.terminate_workers()
            cf.wait([stuck], timeout=10)
    stuck_outcome = type(stuck.exception(timeout=0)).__name__ if stuck.done() else "still pending"
    print(f"the 30 s task: {stuck_outcome}; all over in {fmt_seconds(stop_time)}")
else:
    stuck_outcome, stop_time, worker_pid = None, None, None
    print("terminate_workers() needs Python 3.14 or later; before, a stuck worker keeps `with` waiting")
workers_left = multiprocessing.active_children()

# %%
claim((stuck_outcome is not None) == (PY >= (3, 14))
      and (stuck_outcome is None or (stuck_outcome == "BrokenProcessPool" and stop_time.elapsed < 8
                                     and worker_pid not in {p.pid for p in workers_left})),
      "from 3.14 terminate_workers() stopped a stuck worker at once, and its task failed with BrokenProcessPool")

# %% [markdown]
# **forkserver by default on POSIX systems other than macOS**: from 3.14, where the default used to be
# fork (Linux and the other Unix systems), a process pool starts its workers from a small server
# process, so a function defined in a notebook cell fails there just as under spawn (notebook 01).
# macOS has used spawn since 3.8, and Windows only has spawn. The course runs every notebook under
# fork, spawn and forkserver for this reason. A fresh interpreter tells its default (this kernel's may
# have been changed by `futureslab.setup()`):

# %% tags=["nbval-ignore-output"]
default_method, listed_first = fresh_python(
    "import multiprocessing as mp; print(mp.get_start_method(), mp.get_all_start_methods()[0])").split()
expected_default = ("spawn" if sys.platform in ("win32", "darwin")
                    else "forkserver" if PY >= (3, 14) else "fork")
print(f"a fresh Python {sys.version.split()[0]} on {sys.platform} starts processes with {default_method}")
claim(default_method == expected_default == listed_first,
      "this platform's default start method is the one the table promises")

# %% [markdown]
# ### What 3.15 changes for this course
#
# **A `BrokenProcessPool` that says which worker died.** When a worker dies without a Python error
# (a segfault, the out-of-memory killer, `os._exit`), the pool knows no cause. Up to 3.14 the
# exception has no `__cause__`; from 3.15 its cause lists each worker that "terminated abruptly with
# exit code N" (a negative N is a signal: -9 is SIGKILL, -11 a segfault). Compare with notebook 05's
# dying worker, where you had to guess. `crash_worker(3)` ends its worker with `os._exit(3)`:

# %% tags=["nbval-ignore-output"]
with ProcessPoolExecutor(max_workers=1) as pool:
    try:
        pool.submit(crash_worker, 3).result()
    except BrokenProcessPool as exc:
        broken = exc
print(f"{type(broken).__name__}: {broken}")
print("its cause:", str(broken.__cause__).strip("\n'") if broken.__cause__ is not None else "none given")

# %%
claim(("terminated abruptly with exit code 3" in str(broken.__cause__ or "")) == (PY >= (3, 15)),
      "the dead worker's exit code is in the BrokenProcessPool's cause exactly from 3.15")

# %% [markdown]
# **Forkserver preload errors.** `multiprocessing.set_forkserver_preload(["numpy", ...])` asks the
# forkserver to import modules once, so each worker it forks has them already. Up to 3.14 a module
# that fails to import there is skipped silently (every worker then imports it again, or fails
# later). From 3.15, `on_error="warn"` warns and `on_error="fail"` makes the forkserver fail to
# start. A fresh interpreter (the forkserver is one per Python process) preloads a module that does
# not exist:

# %% tags=["nbval-ignore-output"]
PRELOAD = """
    import multiprocessing, os
    from concurrent.futures import ProcessPoolExecutor
    ctx = multiprocessing.get_context("forkserver")
    try:
        ctx.set_forkserver_preload(["no_such_module_for_this_lesson"], on_error="fail")
    except TypeError:
        ctx.set_forkserver_preload(["no_such_module_for_this_lesson"])
        print("no on_error:", end=" ")
    try:
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            pool.submit(os.getpid).result(timeout=20)
        print("the pool ran its task; the failed preload went unnoticed")
    except Exception as exc:
        print("the pool failed to start:", type(exc).__name__, *getattr(exc, "__notes__", []))
"""
if "forkserver" in multiprocessing.get_all_start_methods():
    preload_outcome = fresh_python(PRELOAD)
    print(preload_outcome)
else:
    preload_outcome = None
    print("this platform has no forkserver")

# %%
claim(preload_outcome is None
      or (preload_outcome.startswith("the pool failed") if PY >= (3, 15) else
          preload_outcome.startswith("no on_error: the pool ran")),
      "a failed forkserver preload went unnoticed before 3.15, and stopped the pool with on_error='fail' from 3.15")

# %% [markdown]
# **Lazy imports.** `import concurrent.futures` does not load `multiprocessing` (a large package): the
# executors are loaded the first time you touch them. Since 3.7 the package did that with a module
# `__getattr__`; from 3.15 it uses the new `lazy from .process import ProcessPoolExecutor` statement
# (PEP 810), so until first use the name holds a `lazy_import` placeholder. Nothing changes for your
# code; a fresh interpreter shows both:

# %% tags=["nbval-ignore-output"]
LAZY = """
    import sys
    import concurrent.futures as cf
    before = "multiprocessing" in sys.modules
    placeholder = type(vars(cf).get("ProcessPoolExecutor")).__name__
    cf.ProcessPoolExecutor
    print(before, placeholder, "multiprocessing" in sys.modules)
"""
loaded_at_import, placeholder, loaded_after_use = fresh_python(LAZY).split()
print(f"multiprocessing loaded by `import concurrent.futures`: {loaded_at_import}; "
      f"after first use: {loaded_after_use}; the name before first use held: {placeholder}")

# %%
claim(loaded_at_import == "False" and loaded_after_use == "True"
      and (placeholder == "lazy_import") == (PY >= (3, 15)),
      "importing concurrent.futures left multiprocessing unloaded, with a lazy_import placeholder from 3.15")

# %% [markdown]
# ## 2. Outgrowing one machine: a Dask cluster
#
# **The idea.** A `ProcessPoolExecutor` stops at one machine's cores. [Dask](https://distributed.dask.org)'s
# `distributed` scheduler runs tasks on *workers* that may sit on many machines, and its `Client`
# speaks nearly the same language: `submit`, `map`, `as_completed`, futures with `.result()`, and
# `client.get_executor()` returns a `concurrent.futures.Executor`. *Nearly*: this section runs what is
# the same, what differs, and Dask's own answers where the standard API has none, on the `distributed`
# installed here.
#
# Here the "cluster" is a `LocalCluster`: a scheduler and two worker processes on this machine, talking
# over network ports on `127.0.0.1`. **Anyone who can connect to a Dask scheduler can run any code on
# its workers, as you** — and on a shared machine (a classroom server) every user can reach
# `127.0.0.1`. So the cluster uses TLS with `Security.temporary()`: a throwaway certificate authority
# that exists only in this kernel's memory (and is handed to the worker processes it starts); the
# scheduler and the workers accept only connections that present a certificate it signed. Dask's
# scratch files (and its `global.lock` / `purge.lock`) go into a temporary folder that the last cell
# deletes. `silence_logs` keeps the workers' log lines (including the errors of the tasks below that
# fail on purpose) out of the outputs. Re-running this cell first stops the cluster it started before.

# %%
import dask
from distributed import Client, LocalCluster, Security, worker_client
from distributed import as_completed as dask_as_completed

if "cluster" in globals():  # this cell ran before: stop that cluster first
    client.close()
    cluster.close()
    scratch.cleanup()
scratch = tempfile.TemporaryDirectory(prefix="futureslab-dask-")
security = Security.temporary()  # a new certificate authority, in memory only
with warnings.catch_warnings(), dask.config.set({"temporary-directory": scratch.name}), \
        stopwatch() as cluster_start:
    warnings.simplefilter("ignore")  # e.g. a port already in use on a busy machine
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           security=security, dashboard_address=None, silence_logs=logging.CRITICAL)
    client = Client(cluster, security=security)
print(f"a scheduler ({cluster.scheduler_address.split('://')[0]}) and "
      f"{len(client.scheduler_info()['workers'])} worker processes, up in {fmt_seconds(cluster_start)}")

# %% [markdown]
# A stranger's attempt, from a fresh interpreter that does not have this kernel's certificate: once
# over plain TCP, once over TLS with a certificate of its own making. (The test suite also makes this
# attempt as another user of the machine.)

# %% tags=["nbval-ignore-output"]
STRANGER = f"""
    from distributed import Client, Security
    address = {cluster.scheduler_address!r}
    for target, security in [(address.replace("tls://", "tcp://"), None), (address, Security.temporary())]:
        try:
            with Client(target, security=security, timeout=10) as stranger:
                print("connected:", stranger.submit(sum, [1, 2]).result())
        except Exception as exc:
            print("refused:", type(exc).__name__)
"""
attempts = fresh_python(STRANGER, timeout=60).splitlines()
print(*attempts, sep="\n")

# %%
claim(len(attempts) == 2 and all(line.startswith("refused:") for line in attempts),
      "the cluster refused a client without its certificate, over TCP and over TLS")

# %% [markdown]
# ### What is the same
#
# **One function, three executors.** `primes_report` uses `submit`, `map` and
# `concurrent.futures.as_completed` only. The executor from `client.get_executor()` returns standard
# `concurrent.futures.Future` objects, so the standard `as_completed` and `wait` work on them.

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
# ### What differs
#
# **1. Not every argument.** Dask's executor takes `shutdown(wait=)` and
# `map(fn, *iterables, timeout=, chunksize=)` (the chunk size is ignored), nothing newer: `shutdown(cancel_futures=True)`, the stop-early
# pattern of notebook 05 and exercise 09.1, and 3.14's `map(buffersize=)` raise `TypeError`.

# %%
def outcome(call):
    try:
        call()
        return "worked"
    except TypeError as exc:
        return f"TypeError: {exc}"


with client.get_executor() as dask_executor:
    dask_cancel = outcome(lambda: dask_executor.shutdown(cancel_futures=True))
with client.get_executor() as dask_executor:
    dask_buffersize = outcome(lambda: list(dask_executor.map(square, range(3), buffersize=2)))
with ThreadPoolExecutor(max_workers=1) as pool:
    standard_cancel = outcome(lambda: pool.shutdown(cancel_futures=True))
print("Dask, shutdown(cancel_futures=True):", dask_cancel)
print("Dask, map(..., buffersize=2):       ", dask_buffersize)
print("ThreadPoolExecutor, shutdown(cancel_futures=True):", standard_cancel)
claim(dask_cancel.startswith("TypeError") and dask_buffersize.startswith("TypeError") and standard_cancel == "worked",
      "Dask's executor refused cancel_futures and buffersize, which the standard executors accept")

# %% [markdown]
# **2. `shutdown(wait=False)` cancels running tasks.** A standard executor never cancels a running
# task: `shutdown(wait=False)` only returns without waiting, and the task finishes with its result.
# Dask's executor cancels every future it made, running ones included: the future is cancelled at
# once, although the worker goes on running that code to its end (a thread cannot be stopped) and
# throws the result away. `executing` is run on every worker with `client.run` to see what it is
# running.

# %%
def executing(dask_worker):
    """On a Dask worker: the keys of the tasks it is running right now."""
    return [str(task.key) for task in dask_worker.state.executing]


def running_on_workers():
    return [key for keys in client.run(executing).values() for key in keys]


dask_executor = client.get_executor(pure=False)
on_dask = dask_executor.submit(sleep_for, 1.5)
deadline = time.monotonic() + 10
while not running_on_workers() and time.monotonic() < deadline:
    time.sleep(0.02)
running_before = running_on_workers()
dask_executor.shutdown(wait=False)
cf.wait([on_dask], timeout=5)
still_running = set(running_before) & set(running_on_workers())

pool = ThreadPoolExecutor(max_workers=1)
on_threads = pool.submit(sleep_for, 0.3)
while not on_threads.running():
    time.sleep(0.001)
pool.shutdown(wait=False)
print(f"Dask: the running future {'was cancelled' if on_dask.cancelled() else 'was not cancelled'}, "
      f"its code {'still ran on the worker' if still_running else 'had stopped'}")
print(f"ThreadPoolExecutor: the running future returned {on_threads.result(timeout=5)}")
claim(on_dask.cancelled() and bool(still_running) and on_threads.result() == 0.3,
      "shutdown(wait=False) cancelled a running task's future on Dask, never on a standard executor")
while set(running_before) & set(running_on_workers()) and time.monotonic() < deadline:
    time.sleep(0.05)  # let the worker finish the cancelled task's code before the next demo

# %% [markdown]
# **3. Dask's own futures are not `concurrent.futures` futures.** `client.submit` and `client.map`
# return `distributed.Future` objects; the standard `as_completed` and `wait` fail on them. Use
# `distributed.as_completed` and `distributed.wait`. It yields futures in the order they finish, as
# the standard one does: below, two naps submitted slow one first, each on its own worker (`workers=`
# pins a task to a worker), so both start at once. `nap` is defined in this notebook and returns
# when it woke up, to check the order against the clock.

# %%
def nap(seconds):
    time.sleep(seconds)
    return seconds, time.time()


slow_worker, fast_worker = sorted(client.scheduler_info()["workers"])
naps = [client.submit(nap, 0.6, workers=[slow_worker], pure=False),
        client.submit(nap, 0.1, workers=[fast_worker], pure=False)]
standard_on_dask = {}
for name, call in [("as_completed", lambda: next(cf.as_completed(naps, timeout=5))),
                   ("wait", lambda: cf.wait(naps, timeout=5))]:
    try:
        call()
        standard_on_dask[name] = "worked"
    except Exception as exc:
        standard_on_dask[name] = type(exc).__name__
finished = [f.result() for f in dask_as_completed(naps)]
print("concurrent.futures on Dask futures:", standard_on_dask)
print("submitted 0.6 s then 0.1 s; distributed.as_completed gave", [s for s, _ in finished])
claim("worked" not in standard_on_dask.values() and [s for s, _ in finished] == [0.1, 0.6]
      and finished == sorted(finished, key=lambda pair: pair[1]),
      "the standard as_completed and wait failed on Dask futures; Dask's gave them in the order they finished")

# %% [markdown]
# **4. Identical calls run once.** `client.submit` assumes a task is *pure*: its result depends only on
# its arguments. The same function with the same arguments gets the same key, and Dask computes that
# key once (while a future for it is held) and hands everyone the same result. That is a cache you
# get for free, and a trap for anything with a side effect or a changing answer: writing a file,
# sending a request, drawing random numbers, reading the clock. Pass `pure=False` for those (also to
# `client.map` and `client.get_executor`), as this notebook does wherever a task must really run again.

# %%
pure_calls = [client.submit(time.time_ns) for _ in range(2)]
fresh_calls = [client.submit(time.time_ns, pure=False) for _ in range(2)]
pure_results = [f.result() for f in pure_calls]
fresh_results = [f.result() for f in fresh_calls]
print("two pure calls:      same key", pure_calls[0].key == pure_calls[1].key,
      "| same result", pure_results[0] == pure_results[1])
print("two pure=False calls: same key", fresh_calls[0].key == fresh_calls[1].key,
      "| same result", fresh_results[0] == fresh_results[1])
claim(pure_calls[0].key == pure_calls[1].key and pure_results[0] == pure_results[1]
      and fresh_calls[0].key != fresh_calls[1].key and fresh_results[0] != fresh_results[1],
      "two identical pure calls ran once and shared one result; with pure=False each ran")

# %% [markdown]
# **5. How functions travel.** Dask pickles tasks with `cloudpickle`. A function that can be imported
# (from an installed module, like `futureslab.tasks.count_primes_in`) travels **by reference**, as
# with `pickle`: only its module and name are sent, and every worker must have that module installed
# (in a compatible version). A function defined in a notebook cell, or a lambda, travels **by
# value**: its code is sent along, so it works on the cluster, where a `ProcessPoolExecutor` under
# spawn or forkserver fails (notebook 01). The modules *it* uses must still be installed on the
# workers. (`cloudpickle.register_pickle_by_value(module)` sends a whole module of yours by value.)

# %%
import cloudpickle


def cube(n):  # defined in this notebook, i.e. in __main__
    return n ** 3


by_reference, by_value = cloudpickle.dumps(count_primes_in), cloudpickle.dumps(cube)
print("count_primes_in names its module:", b"futureslab.tasks" in by_reference,
      "| unpickles to the same function object:", pickle.loads(by_reference) is count_primes_in)
print("cube (this notebook) carries its code, over twice the size:", len(by_value) > 2 * len(by_reference),
      "| unpickles to a rebuilt copy:", pickle.loads(by_value) is not cube)
on_cluster = (client.submit(cube, 3).result(), client.submit(lambda x: x + 1, 41).result())
print("on the cluster: cube(3) =", on_cluster[0], "and a lambda gave", on_cluster[1])
claim(pickle.loads(by_reference) is count_primes_in and b"futureslab.tasks" in by_reference
      and pickle.loads(by_value) is not cube and len(by_value) > 2 * len(by_reference)
      and on_cluster == (27, 42) and hasattr(cloudpickle, "register_pickle_by_value"),
      "an importable function travelled by reference, a notebook function and a lambda by value")

# %% [markdown]
# **6. Data lives somewhere.** Moving data costs network time. Keep results on the workers and pass
# futures to other tasks (below, `sum` runs on a worker, fed straight from the others), send a large
# input once with `client.scatter(data)`, and read files where the workers can reach them.

# %%
partials = client.map(count_primes_in, RANGES)        # 8 futures; the results stay on the workers
total = client.submit(sum, partials)                  # runs on a worker, fed straight from the others
print("total:", total.result())
claim(total.result() == count_primes(0, 200_000), "the reduction ran on the cluster and got the right total")

# %% [markdown]
# ### Dask's own answers where the standard API has none
#
# **Retries.** A `concurrent.futures` executor runs a task once; retrying is your code (notebook 06).
# Dask retries a failed task by itself with `retries=N`. `flaky` fails its first two runs (it counts
# them in a file, so the count survives between runs on any worker of this machine):

# %%
def flaky(counter_file):
    with open(counter_file, "a+") as f:
        f.write("x")
        f.seek(0)
        attempt = len(f.read())
    if attempt < 3:
        raise ConnectionError(f"attempt {attempt} failed")
    return attempt


counters = [os.path.join(scratch.name, name) for name in ("once", "with-retries")]
for path in counters:
    if os.path.exists(path):
        os.remove(path)
try:
    client.submit(flaky, counters[0], pure=False).result()
    once = "succeeded"
except ConnectionError as exc:
    once = f"ConnectionError: {exc}"
with_retries = client.submit(flaky, counters[1], pure=False, retries=2).result()
print("without retries:", once)
print("with retries=2: succeeded on attempt", with_retries)
claim(once == "ConnectionError: attempt 1 failed" and with_retries == 3,
      "without retries the first failure reached us; with retries=2 Dask ran it again until it worked")

# %% [markdown]
# **Tasks that submit tasks.** Notebook 05 showed the nested-submit deadlock: every worker of a pool
# runs a task that waits for another task of the same pool, so nobody is left to run those.
# Inside a Dask task, `worker_client()` gives a client to submit with, and it *secedes*: the waiting
# task gives its worker thread back while it waits, and *rejoins* when the block ends
# (`distributed.secede()` / `distributed.rejoin()` do the same by hand). Below, two parent tasks
# occupy the only thread of each of the two workers, and each waits for children on the same cluster:
# a plain executor would deadlock here.

# %%
def total_of_squares(n):
    with worker_client() as inner:  # secede while we wait for the children
        return sum(inner.gather(inner.map(square, range(n), pure=False)))


parents = client.map(total_of_squares, [3, 4], pure=False)
nested = [f.result(timeout=30) for f in parents]
print("the parents got", nested)
claim(nested == [0 + 1 + 4, 0 + 1 + 4 + 9],
      "parents that occupied every worker thread still got their children's results")

# %% [markdown]
# **Reaching a real cluster.** Start a scheduler on one machine (`dask scheduler`) and workers on others
# (`dask worker SCHEDULER_ADDRESS`), or let a deployment project do it (`dask-jobqueue` on HPC batch
# systems, `dask-kubernetes`, cloud services); then `client = Client(SCHEDULER_ADDRESS, security=...)`
# with the cluster's TLS certificates (a `Security(tls_ca_file=..., tls_client_cert=...,
# tls_client_key=...)`): never leave a scheduler open on a network. Code written against
# `get_executor()` keeps working, with the differences above: no `cancel_futures`, no `buffersize`,
# `shutdown(wait=False)` cancels, and Dask's own futures need Dask's `as_completed`. The cluster adds
# what one machine never had to think about: functions by reference must be installed on every
# worker, data has to travel, and a worker can vanish (the scheduler re-runs its tasks elsewhere; a
# task that keeps killing workers fails with `KilledWorker`). The live dashboard of tasks and memory,
# at `client.dashboard_link`, needs the `bokeh` package, which this course does not install, so we
# started the cluster with `dashboard_address=None`.
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
#   `BrokenProcessPool`; detect features with `hasattr` or `inspect.signature`, and test on every
#   Python you support.
# - `client.get_executor()` runs code written against `submit` / `map` / `as_completed`; it lacks
#   `cancel_futures` and `buffersize`, and its `shutdown(wait=False)` cancels running tasks. Dask's own
#   futures need `distributed.as_completed`; submits are pure unless you say `pure=False`.
# - A cluster is reachable by whoever can connect: secure it (TLS), and mind what travels (functions
#   by reference or by value, data) and what Dask adds (`retries=`, `worker_client`).
#
# **Back to:** [the course map](00-start-here.ipynb).

# %%
client.close()
cluster.close()
scratch.cleanup()  # the cluster's scratch space, its lock files included
left_behind = [p for p in (scratch.name, os.path.join(os.getcwd(), "dask-scratch-space"))
               + ((os.path.join(tempfile.gettempdir(), "dask-scratch-space"),) if not SCRATCH_BEFORE else ())
               if os.path.exists(p)]
claim(not left_behind and not multiprocessing.active_children(),
      "the cluster, its worker processes and its scratch files are gone", left=left_behind)
