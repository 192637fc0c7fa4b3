# Source of notebooks/01-threads-vs-processes.ipynb (build with: python src/notebooks/build.py 01)

# %% [markdown]
# # 01 · Threads vs processes
#
# **Why this matters.** `concurrent.futures` offers two pools that look the same from the outside:
# `ThreadPoolExecutor` and `ProcessPoolExecutor`. Pick the wrong one and your program gets no faster,
# or slower. The reason is one lock inside CPython, the *Global Interpreter Lock* (GIL), and the price
# of talking to another process. This notebook measures both on your machine and draws them.
#
# **In this notebook you will**
# - run a CPU-bound job one after another, on threads and on processes, and see the GIL at work;
# - see which CPU work threads *can* speed up, and run an I/O-bound job (real HTTP requests) on threads;
# - find out how many cores your machine really gives you, and judge each speed-up against that;
# - meet the error a lambda causes in a process pool, and measure what a process costs.
#
# **Time:** about 60 minutes. **Prerequisites:** [00 · Start here](00-start-here.ipynb).
#
# **Previous:** [00 · Start here](00-start-here.ipynb) · **Next:** [02 · Futures](02-futures.ipynb)

# %% [markdown]
# ## Set-up
#
# One cell imports what this notebook uses and starts the local API (0.1 s of latency per request).
# The measuring harness lives in `futureslab.lesson01`: the cells here show the concurrency, the
# package does the careful timing (read its source if you like).

# %%
import os
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import matplotlib.pyplot as plt

import futureslab
from futureslab import checks
from futureslab.checks import nb01 as check
from futureslab.claims import claim, cpu_race, sequential_executor
from futureslab.cores import granted_cores
from futureslab.lesson01 import (claim_gil, gil_enabled, io_race, process_sweep, python_summary,
                                 slice_names, start_ups_measured, tiny_tasks,
                                 transfer_times)
from futureslab.plots import speedup_curve
from futureslab.server import LocalAPI
from futureslab.tasks import count_primes, count_primes_in, fetch_post, prime_ranges, sha256_rounds
from futureslab.timing import fmt_cores, fmt_seconds, fmt_us, stopwatch
from futureslab.trace import plot_timelines

START_METHOD = futureslab.setup()
GIL = gil_enabled()  # False only on a free-threaded build (3.13+) running without the GIL
api = LocalAPI(latency=0.1).start()
print("ready")

# %% [markdown]
# Which Python is this, and how does it start worker processes? (The *start method*: `fork` copies
# this process, `spawn` starts a fresh interpreter, `forkserver` forks from a small server process
# started on first use. Section 6 times all three.)

# %% tags=["nbval-ignore-output"]
print(sys.version)
print(python_summary())

# %% [markdown]
# ## 1. Two kinds of slow
#
# - **CPU-bound:** the program computes (counting primes, resizing images, parsing). The only way to go
#   faster is to compute on more cores at once.
# - **I/O-bound:** the program waits (for a web API, a database, a disk). The way to go faster is to
#   wait for many answers at the same time.
#
# CPython runs Python bytecode under the **GIL**: in one process, only one thread executes Python code
# at any instant. A thread that waits for the network *releases* the GIL, so others run meanwhile. A
# thread computing in pure Python holds it, handing it over every few milliseconds, so two computing
# threads take turns rather than run together. Separate **processes** each have their own interpreter
# and GIL, so they can compute on different cores at once, but inputs and results must be copied
# between them.
#
# ## 2. How many cores do you get?
#
# `os.cpu_count()` counts the machine's CPUs. Your process may be allowed fewer: a CPU *affinity*
# (`taskset`, a job scheduler) or a container's CPU *quota* (Docker's `--cpus`, most Binder and
# JupyterHub set-ups) gives it, say, 2 CPUs' worth of time on a 64-CPU host. Python's own
# `os.process_cpu_count()` (3.13+) sees the affinity but not a quota;
# `futureslab.cores.granted_cores()` reads both. Below, **cores granted** means that figure.

# %% tags=["nbval-ignore-output"]
print("os.cpu_count():   ", os.cpu_count())
print("granted_cores():  ", granted_cores())

# %% [markdown]
# **How the claims below are judged.** With `w` workers and `c` cores granted, at most `min(w, c)`
# slices can be computed at once: that is the **ideal** CPU speed-up. Other programs may keep some of
# those cores busy, so while a claim is measured the package also measures **other programs' load**
# (the CPU time every process outside this notebook used). A claim then prints one of three lines:
#
# - `✓ claim (figures)`: it held;
# - `⚠ claim — cannot be shown right now: …`: your machine lacked the free cores it needs (too few
#   granted, or other programs busy). Close other programs and re-run that cell;
# - an error with the numbers: the claim is wrong on a machine that had what it needs.
#
# ## 3. A CPU-bound job: one after another, on threads, on processes
#
# The job counts the primes in four equal slices of numbers with `count_primes_in` (plain trial
# division, pure Python). Here is all the concurrency there is to it:

# %%
RANGES = prime_ranges(2_120_000, 4, start=2_000_000)  # four (start, end) slices


def count_on(pool_class, workers=2):
    with pool_class(max_workers=workers) as pool:
        return sum(pool.map(count_primes_in, RANGES))


with stopwatch() as sequential:
    TOTAL = sum(count_primes_in(r) for r in RANGES)
with stopwatch() as threads:
    assert count_on(ThreadPoolExecutor) == TOTAL
with stopwatch() as processes:
    assert count_on(ProcessPoolExecutor) == TOTAL
print(f"{TOTAL} primes.  one after another {sequential}   2 threads {threads}   2 processes {processes}")

# %% [markdown]
# One run each is a first look, not a proof: the process time includes starting the processes, and a
# busy moment can spoil any single run. `cpu_race` measures fairly: it starts both pools first, then
# runs the three ways in turn for a few rounds, keeps each one's fastest run and its timeline, and
# measures other programs' load. The same cell judges three claims. Two threads are the *control*:
# the same work, the same rounds, and (under the GIL) no parallelism, so processes must beat them.
#
# - **parallel:** processes reach 60% of the ideal speed-up *and* run at least 1.25× faster than the
#   threads;
# - **at the same time:** bars that overlap prove nothing (threads overlap too). The timelines must
#   show two different worker *processes* busy at once, with each slice no more than 1.75× as long
#   as in the sequential run. That ratio is the **stretch**: two threads sharing one GIL, or two
#   processes sharing one core, stretch every slice about 2× or more; two virtual CPUs that share one
#   physical core (hyperthreads, common on laptops and cloud machines) stretch them less, often
#   1.4–1.6×;
# - **threads:** under the GIL, two tasks are in progress at once, yet the two threads together keep at
#   most 1.3 cores busy (the CPU time this process used, divided by the wall time): they take turns.
#   Their speed-up over the sequential run is printed but not judged, because a single process's
#   speed swings with the virtual CPU it happens to run on (by half as much again, on the 2-vCPU
#   machine this course is tested on); the CPU time they used does not.

# %%
race = cpu_race(count_primes_in, RANGES, workers=2)  # sequential, 2 threads (control), 2 processes
race.claim_parallel("2 processes counted the primes in parallel")
race.claim_overlap("2 worker processes computed at the same time, each slice well under twice as long as alone")
claim_gil(race, "2 threads took turns holding the GIL: two tasks in progress, one core's worth of CPU" if GIL else
          "2 threads computed in parallel: this Python runs without a GIL")
print(f"measured with {fmt_cores(race.room.free)}: the cores granted, minus other programs' load")

# %%
plot_timelines({f"one after another ({fmt_seconds(race.times['sequential'])})": race.tracers["sequential"],
                f"2 threads ({fmt_seconds(race.times['control'])})": race.tracers["control"],
                f"2 processes ({fmt_seconds(race.times['parallel'])})": race.tracers["parallel"]},
               labels=slice_names(RANGES))
plt.show()

# %% [markdown]
# *One row per worker, one bar per slice, all on one time scale: compare the **length** of the bars.*
# Thread bars overlap but each is about twice as long as a sequential one (the threads take turns
# with the GIL); process bars overlap *and* stay as short as sequential ones: two cores at work.
#
# **Explore it.** Set the kind to *cpu* and compare `thread` and `process` with 1, 2 and 4 workers:
# with a GIL, more threads never shorten the cpu job; more processes do, up to your cores.

# %% tags=["nbval-ignore-output"]
from futureslab.explorer import explore

explore(kind="cpu", executor="process", workers=2)

# %% [markdown]
# ### More processes than cores?
#
# The same job on 1, 2 and 4 processes (with more cores granted, on 1, the cores, and twice the
# cores). One process is the control this time: processes must beat it up to the cores granted, and
# gain little past them, since extra processes only take turns on the same cores. "Little" is judged
# at 1.5×, halfway between what computing predicts (1×) and what waiting would give (2×): on a
# 2-vCPU machine run-to-run noise alone moved this gain by over 25%, and a few uneven tasks can
# balance better on more processes.
#
# Speed is not the only witness. The sweep also records the cores each run kept busy (the CPU time
# of the notebook and its workers divided by the wall time): up to the cores granted, processes must
# keep at least 70% of them busy, which threads under the GIL, one shared CPU or a plain loop cannot
# do. If they did and the speed-up still fell short, your CPUs slowed each other down while all were
# busy (two virtual CPUs sharing one physical core, or a clock that drops under load): the line then
# says the claim *cannot be shown*, and shows the cores it measured.

# %%
sweep = process_sweep(count_primes_in, RANGES)
sweep.claim_scales("up to the cores granted, more processes were faster, at least 60% of the ideal")
sweep.claim_flat_beyond("past the cores granted, twice the processes gained at most 1.5x (waiting work would gain 2x)")
print(f"measured with {fmt_cores(sweep.room.free)}")

# %%
speedup_curve(sweep.counts, list(sweep.speedups().values()), kind="cpu", cores=sweep.room.granted,
              title="count primes on processes")
plt.show()

# %% [markdown]
# *The blue line follows the grey ideal up to the dotted cores line, then goes flat.*
#
# ### CPU work that threads *can* speed up
#
# The GIL only serialises Python bytecode. C code may release it while it works on its own data:
# `hashlib` does for buffers over 2 KiB, as do NumPy and many compression libraries. So threads can
# compute in parallel after all, when the computing happens inside such C code. `sha256_rounds`
# hashes 8 MB of data four times; we race one after another against 2 threads (the control here runs
# the tasks one at a time, so threads must beat it by 1.25×).

# %%
hashing = cpu_race(sha256_rounds, [8.0] * 4, workers=2, pool=ThreadPoolExecutor, control=sequential_executor)
hashing.claim_parallel("2 threads hashed in parallel: hashlib releases the GIL on large buffers")
print(f"measured with {fmt_cores(hashing.room.free)}")

# %% [markdown]
# **About "3-4x on a quad core".** Claims like that describe someone else's quiet machine. The honest
# figure is a fraction of *your* ideal, `min(workers, cores granted)`: four processes on two cores can
# never beat 2x. And until free-threaded Python (3.13+, without the GIL) is the norm, the rule holds:
# **threads for waiting and GIL-releasing C code, processes for pure-Python computing.**
#
# ## 4. An I/O-bound job: one after another, and on threads
#
# `fetch_post(n)` makes a real HTTP request with `requests` to the local API, which waits 0.1 s before
# answering, like a distant server. Eight posts, one after another and then on 8 threads. Waiting
# costs no CPU, so the ideal speed-up with `N` threads is `N` on any machine; the claim accepts 60% of
# it, and the server itself reports how many requests it saw at once.

# %%
POST_IDS = list(range(1, 9))
fetched = io_race(fetch_post, POST_IDS, api=api)  # one after another, then on 8 threads
fetched.claim_overlaps("8 threads fetched 8 posts at least 60% of the ideal 8x faster")
fetched.claim_peak("the server saw at least 6 requests in flight at once", at_least=6)
print(f"one after another {fmt_seconds(fetched.times['sequential'])}, 8 threads {fmt_seconds(fetched.times['parallel'])}")

# %%
plot_timelines({f"one after another ({fmt_seconds(fetched.times['sequential'])})": fetched.tracers["sequential"],
                f"8 threads ({fmt_seconds(fetched.times['parallel'])})": fetched.tracers["parallel"]})
plt.show()

# %% [markdown]
# *Eight short bars stacked at the same moment:* while a thread waits for its answer it has let go of
# the GIL, so the others send their requests too.
#
# ## 5. The lambda that a process pool refuses
#
# A popular way to write the CPU demo passes a lambda to the pool. On threads it works; on processes:

# %%
with ThreadPoolExecutor(max_workers=2) as pool:
    print("threads, with a lambda:", sum(pool.map(lambda r: count_primes(*r), RANGES)) == TOTAL)

try:
    with ProcessPoolExecutor(max_workers=2) as pool:
        sum(pool.map(lambda r: count_primes(*r), RANGES, timeout=30))
except Exception as exc:
    error = exc
claim(isinstance(error, pickle.PicklingError), "the process pool raised a PicklingError for the lambda")
print("processes, with a lambda:", type(error).__name__)

# %% [markdown]
# The exact message varies between Python versions (and holds a memory address), so it sits in a cell
# whose output is not compared: *can't pickle `<lambda>`*.

# %% tags=["nbval-ignore-output"]
print(repr(error))

# %% [markdown]
# **Why.** A thread shares this process's memory and calls the function object directly. A worker
# process cannot see our memory: the function and its arguments are turned into bytes with `pickle`,
# sent through a pipe and rebuilt there. Pickle does **not** copy a function's code; it writes down
# its *module and name*, and the worker imports the module and looks the name up. A lambda's name is
# `<lambda>`, which no module has, so there is nothing to write down. (The pool pickles in a
# background thread; the future carries the error, and `map` re-raises it as you read results.)
#
# On some Pythons (3.12.1 and 3.13.0 among those this course is tested on) a pool handling this error
# can also deadlock as it shuts down: rarely, and then for good. That is CPython bug gh-125451, and
# `futureslab.setup()` fixed it in this kernel if your Python has it; notebook 09 shows the race.

# %%
data = pickle.dumps(count_primes_in)
print("under 100 bytes:", len(data) < 100, "| names its module:", b"futureslab.tasks" in data,
      "| names the function:", b"count_primes_in" in data)

# %% [markdown]
# **The fix** is what section 3 did: a function defined at module level in an importable module.
#
# One more trap (notebook 05a returns to it): a function you `def` in a notebook cell pickles by name
# too, but its module is the notebook's `__main__`. Under `fork` the worker is a copy of the notebook
# and finds it; under `spawn` (macOS, Windows) or `forkserver` (the default on Linux and other POSIX
# systems except macOS from Python 3.14) it does not. The cell then shows `BrokenProcessPool`, and the
# worker's own traceback (`AttributeError: Can't get attribute …`) is written to its standard error.
# On Linux and macOS, ipykernel 6 and newer forward that to the notebook: it appears under the running
# cell as standard-error text. On Windows, and from a script, it appears in the terminal that started
# Jupyter or the script. Keep work for process pools in a `.py` module and import it.
#
# ## 6. What a process costs
#
# **Start-up**, from creating a one-worker pool to its first result, for threads and for each start
# method your platform offers. `fork` copies the running interpreter; `spawn` starts a fresh one that
# must import the task's module; `forkserver` forks from a server process (started the first time, then
# reused), which must import the modules too. Each is the best of three tries.

# %%
# start_up_times() inside a LoadMeter: other programs' load distorts these timings unequally, so the
# claims need a quiet machine; while others are busy it measures again (3 tries at most)
starts, room, _ = start_ups_measured()  # starts: {"threads": s, "fork": s, ...}, as available
for name, seconds in starts.items():  # threads answer in well under a millisecond: shown in µs
    print(f"{name:<11} first result after {fmt_us(seconds) if name == 'threads' else fmt_seconds(seconds)}")
claim(all(starts[m] > 3 * starts["threads"] for m in starts if m != "threads"),
      "every start method took over 3x longer to start a pool than threads did",
      needs_cores=room.granted, room=room, **starts)
if "fork" in starts and "spawn" in starts:
    claim(starts["spawn"] > 2 * starts["fork"], "spawn took over 2x longer to start a worker than fork",
          needs_cores=room.granted, room=room, fork=starts["fork"], spawn=starts["spawn"])

# %% [markdown]
# (A thread pool answers in well under a millisecond, so its time is printed in µs.) **Data:** a 16 MB
# argument, and a 16 MB result, with a worker that is already running:

# %%
there_thread, back_thread = transfer_times(ThreadPoolExecutor, size_mb=16)
there_process, back_process = transfer_times(ProcessPoolExecutor, size_mb=16)
claim(there_process > 2 * there_thread and there_process > 0.001,
      "sending 16 MB to a process took far longer than handing it to a thread",
      thread=there_thread, process=there_process)
claim(back_process > 1.5 * back_thread, "a 16 MB result came back from a process much slower than from a thread",
      thread=back_thread, process=back_process)
print(f"16 MB to a thread {fmt_seconds(there_thread)}, to a process {fmt_seconds(there_process)}")
print(f"16 MB back from a thread {fmt_seconds(back_thread)}, from a process {fmt_seconds(back_process)}")

# %% [markdown]
# A thread gets a reference to the same bytes: nothing is copied. A process gets a pickled copy through
# a pipe, and its result travels back the same way. When each task is tiny, that per-task trip is all
# there is: 2000 calls of `square` on a running pool of 2 processes, against a plain loop.

# %%
loop_s, pool_s = tiny_tasks(ProcessPoolExecutor, n=2000)
claim(pool_s > 5 * loop_s, "for tiny tasks the process pool was over 5x slower than a plain loop",
      loop=loop_s, pool=pool_s)
print(f"2000 squares: plain loop {fmt_seconds(loop_s)}, process pool {fmt_seconds(pool_s)}")

# %% [markdown]
# **What it means.** Give a process pool tasks that each compute for tens of milliseconds or more, with
# small arguments (a range, a file name), not big data. Notebook 04 shows how `map`'s `chunksize`
# rescues many small tasks.
#
# ## Your turn
#
# Replace `raise NotImplementedError`, run the cell, then the checker cell under it: it tells you
# whether the answer is right **and** whether it really ran concurrently (it runs your function
# against its own local API, or records a timeline of it). Stuck? Read the hint it prints.
#
# ### Exercise 01.1: fetch post titles on threads
#
# Write `fetch_titles(post_ids)` that returns the titles of those posts, in the order of `post_ids`,
# fetching them concurrently with `fetch_post`.

# %%
def fetch_titles(post_ids):
    raise NotImplementedError


# %%
check.fetch_titles(fetch_titles)

# %% [markdown]
# ### Exercise 01.2: count primes on processes
#
# Write `count_primes_parallel(task, ranges, workers)` that returns the sum of `task(r)` for every
# `r` in `ranges`, computed on `workers` processes. `task` behaves like `count_primes_in` (the checker
# passes a traced version of it, to see which process ran what). Remember section 5.

# %%
def count_primes_parallel(task, ranges, workers):
    raise NotImplementedError


# %%
check.count_primes_parallel(count_primes_parallel)

# %% [markdown]
# ### Exercise 01.3: fetch politely
#
# A real API may block you if you hammer it. Write `fetch_politely(user_ids, max_in_flight)` that
# returns the users (use `fetch_user` from `futureslab.tasks`), in order, never having more than
# `max_in_flight` requests in flight at once, but using all of them.

# %%
from futureslab.tasks import fetch_user


def fetch_politely(user_ids, max_in_flight):
    raise NotImplementedError


# %%
check.fetch_politely(fetch_politely)

# %% [markdown]
# To see a worked solution (try first!), remove the `#` and run:

# %%
# checks.solution("01.1")

# %% [markdown]
# ## Recap
#
# - With the GIL, threads overlap *waiting* (up to `N`x on `N` threads) and GIL-releasing C code, but
#   not pure-Python *computing*; processes compute in parallel, up to `min(workers, cores granted)`x.
# - A process pool pickles the function by name and its arguments by value: module-level functions
#   (never lambdas), long tasks, small arguments. Starting one costs most under `spawn`.
# - Judge a speed-up against the cores your machine grants right now, not someone's "3-4x".
#
# **Next:** [02 · Futures](02-futures.ipynb): what `submit` gives you back, and everything you can do with it.

# %%
api.stop()  # every notebook stops what it started
