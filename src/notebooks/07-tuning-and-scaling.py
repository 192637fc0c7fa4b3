# Source of notebooks/07-tuning-and-scaling.ipynb (build with: python src/notebooks/build.py 07)

# %% [markdown]
# # 07 · Tuning and scaling
#
# **Why this matters.** "Use more workers" stops paying at some point, and where that point lies
# depends on the job and on the machine. Waiting jobs keep gaining long after CPU-bound jobs have hit
# the core count, and any step that cannot be spread out caps the gain for good (Amdahl's law). Guessing
# `max_workers` from a rule of thumb gets it wrong in both directions; measuring takes a minute.
#
# **In this notebook you will**
# - measure speed-up against worker count for an I/O-bound and a CPU-bound job, against the ideal;
# - fit Amdahl's law to measurements that can determine it, and read off the serial fraction that
#   caps the speed-up;
# - learn the default `max_workers` of each executor, per Python version, and why `os.cpu_count()`
#   can overstate the cores you get;
# - pick a worker count by measuring, in a few lines of code.
#
# **Time:** about 50 minutes. **Prerequisites:** notebooks 01 (threads vs processes) and 04 (map).
#
# **Previous:** [06 · A real-world pipeline](06-real-world-pipeline.ipynb) ·
# **Next:** [08 · asyncio and executors](08-asyncio-and-executors.ipynb)

# %% [markdown]
# ## Set-up
#
# The local API answers every request after 0.1 s, like a distant web service. The sweeps are
# measured by `futureslab.lesson07` (and `lesson01`): pools started before the clock, best of a few
# runs, other programs' load measured alongside.

# %%
import os
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import matplotlib.pyplot as plt

import futureslab
from futureslab import checks
from futureslab.checks import nb07 as check
from futureslab.claims import claim
from futureslab.cores import granted_cores
from futureslab.lesson07 import (amdahl_sweep, cpu_counts, cpu_fit_points, cpu_ranges, io_sweep,
                                 process_sweep)
from futureslab.plots import speedup_curve
from futureslab.scaling import amdahl_limit, amdahl_speedup, fit_amdahl
from futureslab.server import LocalAPI
from futureslab.tasks import count_primes_in, fetch_post
from futureslab.timing import fmt_cores, fmt_seconds, fmt_speedup

futureslab.setup()
api = LocalAPI(latency=0.1).start()
GRANTED = granted_cores().cores  # CPU affinity and a container's CPU quota, whichever is smaller

# %% [markdown]
# ## 1. An I/O-bound job: speed-up against worker count
#
# **The idea.** Sixteen requests that each wait 0.1 s. One worker waits for them one after another; `n`
# workers wait for `n` at a time. Waiting uses no CPU, so the ideal speed-up is `n`, on any machine,
# until there are more workers than requests.
#
# **The measurement and the check.** The same job on 1, 2, 4, 8 and 16 threads; speed-up is the
# 1-worker time divided by the `n`-worker time. Each must reach 70% of its ideal (threads start, JSON
# is parsed, results come back); `io_sweep` sweeps up to three times, keeping each count's best time,
# until they do.

# %%
IO_WORKERS = [1, 2, 4, 8, 16]
POST_IDS = list(range(1, 17))

io = io_sweep(fetch_post, POST_IDS, IO_WORKERS)  # on ThreadPoolExecutor(n) for each n
io.claim_near_ideal("for waiting, every worker count up to 16 reached at least 70% of the ideal speed-up")
for n, s in io.speedups().items():
    print(f"{n:>2} threads: {fmt_seconds(io.times[n])}  speed-up {fmt_speedup(s)}  (ideal {n})")

# %% [markdown]
# ## 2. A CPU-bound job: the curve meets the cores
#
# **The idea.** Counting primes keeps a core busy. Processes run on separate cores, so the speed-up can
# grow with workers only up to the cores this process is granted (notebook 01, section 2); past that,
# workers take turns. The job: `count_primes_in` over equal ranges that take tens of milliseconds each,
# at least as many ranges as the largest pool has workers. The counts are 1, 2, 4, the cores granted
# and twice that, so they differ between machines, and so does the table below.
#
# **The checks** (notebook 01 explains the three outcomes). Up to the cores granted, each count must
# reach 60% of the ideal `min(n, cores)` *and* beat one process by 1.25×: one process is the control,
# paying the same costs with no parallelism, *and* keep 70% of `min(n, cores)` busy (CPU time over
# wall time, the witness 01 introduced). Twice as many processes as cores may gain at most 1.5× over
# the best count within the cores (waiting work would gain 2×): no core is left to run them on. Both
# need the machine's cores free; if a line says they cannot be shown, it says why (other programs'
# load, or cores that slowed each other down), and re-running this cell measures again.

# %%
CPU_WORKERS = cpu_counts(GRANTED)
CPU_RANGES = cpu_ranges(GRANTED)
cpu = process_sweep(count_primes_in, CPU_RANGES, CPU_WORKERS)  # on ProcessPoolExecutor(n) for each n
cpu.claim_scales("up to the cores granted, every process count reached 60% of the ideal and beat one process")
cpu.claim_flat_beyond("twice as many processes as cores gained at most 1.5x over one per core")
print(f"measured with {fmt_cores(cpu.room.free)}")

# %% tags=["nbval-ignore-output"]
print(f"{GRANTED:g} cores granted; sequential: {fmt_seconds(cpu.sequential)}")
for n, s in cpu.speedups().items():
    print(f"{n:>2} processes: speed-up {fmt_speedup(s)}  (ideal {min(n, GRANTED):g})")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
speedup_curve(IO_WORKERS, list(io.speedups().values()), ax=left, kind="io", title="I/O-bound: 16 requests on threads")
speedup_curve(CPU_WORKERS, list(cpu.speedups().values()), ax=right, kind="cpu", cores=cpu.room.granted,
              title="CPU-bound: primes on processes")
plt.show()

# %% [markdown]
# *Left, waiting follows the dashed diagonal; right, computing climbs to the dotted cores line and goes
# flat.*
#
# ## 3. Amdahl's law: the part you cannot spread out
#
# **The idea.** Suppose a fraction `p` of the one-worker time can be shared among workers and the rest,
# `1 - p`, cannot. Then `n` workers give at best
#
# $$S(n) = \frac{1}{(1 - p) + p / n}$$
#
# and no number of workers beats $1 / (1 - p)$: with `p = 0.9`, even a thousand workers stay under 10×.
#
# **An example with a known `p`.** A job that first fetches a user and then that user's posts (two
# requests that must happen in order), then the comments of 16 posts on `n` threads (these may
# overlap). With 0.1 s per request, one worker spends 0.2 s in the serial part and 1.6 s in the
# parallel part: `p = 16/18 ≈ 0.89` by design, a ceiling of 9×, and at 16 workers Amdahl predicts
# `1 / (2/18 + 1/18) = 6×`.
#
# **Fitting `p` to the measurements.** `futureslab.scaling.fit_amdahl` finds the `p` that best fits
# the measured speed-ups (least squares on `1/S(n) = 1 - p·(1 - 1/n)`, a straight line in `p`: no SciPy
# needed; read its source, a dozen lines). Three checks that could each fail: the fit finds the
# designed `p` (within 0.05); 16 workers land within 15% of the predicted 6×, far below the ideal 16×;
# and the pure waiting of section 1 fits a larger `p` than this job.

# %%
job = amdahl_sweep(IO_WORKERS)  # serial_then_parallel(n) on ThreadPoolExecutor(n) for each n
p_job, p_io = job.fitted_p(), fit_amdahl(IO_WORKERS, list(io.speedups().values()))
job.claim_fits_design("the fitted parallel fraction of the job is within 0.05 of the designed 16/18")
job.claim_follows_prediction("16 workers gave the speed-up Amdahl's law predicts for p = 16/18, within 15%")
claim(p_io > p_job, "the pure waiting job of section 1 fits a larger parallel fraction than the job with two serial steps",
      needs_cores=1, room=max(io.room, job.room, key=lambda room: room.other), p_io=p_io, p_job=p_job)
for n, s in job.speedups().items():
    print(f"{n:>2} threads: speed-up {fmt_speedup(s)}  (Amdahl with p = 16/18: "
          f"{fmt_speedup(amdahl_speedup(job.designed_p, n))})")

# %%
ns = list(range(1, max(IO_WORKERS) + 1))
fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
ax.plot(ns, ns, "--", color="grey", label="ideal: workers")
ax.plot(ns, [amdahl_speedup(p_job, n) for n in ns], "-", label="Amdahl, fitted p")
ax.plot(IO_WORKERS, list(job.speedups().values()), "o", label="measured")
ax.axhline(amdahl_limit(job.designed_p), color="tab:red", alpha=0.5, linestyle=":", label="ceiling 1/(1-p) = 9")
ax.set_xticks(IO_WORKERS, [str(n) for n in IO_WORKERS])
ax.set(xlabel="workers", ylabel="speed-up", title="2 serial requests, then 16 on n threads", ylim=(0, 17))
ax.legend(loc="upper left")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# *The dots follow the fitted curve, which bends away from the ideal diagonal towards the 9× ceiling.*
#
# **And the CPU curve?** A fit needs measurements that can tell values of `p` apart: worker counts
# above 1 and no higher than the cores granted (past the cores, `n` workers compute like `cores`
# workers, so those points add nothing). With 2 cores granted there is one such point, 2 workers, and
# one parameter always passes exactly through one point: the fit would "explain" any measurement and
# test nothing. With 3 or more cores granted the cell below fits the CPU curve; on 2 it says what is
# missing. Where a fit is possible, the serial part it finds is *not* starting the processes (the pools
# were started before the clock): it is handing out the ranges and collecting results in this process,
# and the last ranges, when fewer remain than there are workers and cores sit idle.

# %% tags=["nbval-ignore-output"]
informative = cpu_fit_points(CPU_WORKERS, GRANTED)
if len(informative) >= 2:
    p_cpu = fit_amdahl(CPU_WORKERS, list(cpu.speedups().values()), cores=int(GRANTED))
    print(f"fitted p of the CPU job, from {informative} workers: {p_cpu:.3f} "
          f"(a ceiling of {amdahl_limit(p_cpu):.1f}x with unlimited cores)")
else:
    print(f"{GRANTED:g} cores granted: {len(informative)} informative point(s) {informative}, too few to fit "
          f"Amdahl's law to the CPU curve (the I/O job above has {len(IO_WORKERS) - 1}).")
print(f"fitted p: pure waiting {p_io:.3f}, job with two serial requests {p_job:.3f}")

# %% [markdown]
# **What it means.** The serial part is often not in your code at all: a login request, opening a
# database connection, starting worker processes, merging the results. Shrinking it (or overlapping it
# with the parallel part) does more than adding workers once you are near `1 / (1 - p)`.
#
# ## 4. The default `max_workers`, and why `os.cpu_count()` can lie
#
# | executor | default `max_workers` | since |
# |---|---|---|
# | `ThreadPoolExecutor` | `cpu_count() * 5` | 3.5–3.7 |
# | `ThreadPoolExecutor` | `min(32, cpu_count() + 4)`: at least 5 threads for I/O, at most 32 so a big machine does not start hundreds | 3.8 |
# | `ProcessPoolExecutor` | `cpu_count()` | 3.2 |
# | `ProcessPoolExecutor` on Windows | at most 61 (a Windows limit on waiting for handles) | 3.8 |
# | both | `cpu_count()` above means `os.process_cpu_count()`, the CPUs this process may use | 3.13 |
# | `InterpreterPoolExecutor` | like `ThreadPoolExecutor` | 3.14 |
#
# Before 3.13 the defaults use `os.cpu_count()`, which counts the machine's CPUs even when this process
# may use fewer (`taskset`, a container's CPU set, a job scheduler). So does the advice "use
# `max_workers=os.cpu_count()`" you will find in many articles. From 3.13, `os.process_cpu_count()`
# respects the affinity, and the `PYTHON_CPU_COUNT` environment variable (or `-X cpu_count=N`) overrides
# both counts. No standard function reads a container's CPU *quota* (Docker's `--cpus`, most Binder
# and JupyterHub set-ups): in a container limited to 2 CPUs of a 64-CPU host, the default process pool
# starts 64 workers that share 2 CPUs' worth of time. `futureslab.cores.granted_cores()` reads the
# affinity and the quota; pass `max_workers` yourself, or set `PYTHON_CPU_COUNT`.
#
# The values on this machine (they differ between machines; the check below does not). The pool's
# `_max_workers` attribute is private: fine for a look, not for your programs.

# %% tags=["nbval-ignore-output"]
with ThreadPoolExecutor() as tp, ProcessPoolExecutor() as pp:
    thread_default, process_default = tp._max_workers, pp._max_workers
print(f"Python {sys.version.split()[0]}: os.cpu_count() = {os.cpu_count()}; {granted_cores()}")
print(f"ThreadPoolExecutor() -> {thread_default} threads, ProcessPoolExecutor() -> {process_default} processes")

# %%
counted = os.process_cpu_count() if hasattr(os, "process_cpu_count") else os.cpu_count()
claim(thread_default == min(32, counted + 4), "the thread pool default is min(32, cpu_count + 4)")
claim(process_default == (min(counted, 61) if sys.platform == "win32" else counted),
      "the process pool default is the CPU count")

# %% [markdown]
# ## 5. Picking a number by measuring
#
# The rule of thumb ("CPU work: one process per usable core; waiting: more threads than cores") gives a
# starting point; the curve tells the rest. A useful choice is the **smallest** worker count whose time
# is within a few percent of the fastest: more workers cost memory, connections and start-up for no
# gain, and a remote service may not thank you for the extra load. For I/O, the ceiling is usually set
# by the other side (a rate limit, a connection pool), not by your machine.
#
# For the 16 requests of section 1 (the table there shows why):

# %%
fastest = min(io.times.values())
choice = min(n for n in IO_WORKERS if io.times[n] <= 1.10 * fastest)
print(f"smallest worker count within 10% of the fastest: {choice}")

# %% [markdown]
# ## Your turn
#
# Replace `raise NotImplementedError`, run the cell, then the checker cell under it. Stuck? Read the
# hint it prints.
#
# **Exercise 07.1 — Sweep the worker count.** Write `sweep(task, items, workers_list)`: for each `n` in
# `workers_list`, run `task` over every item on a `ThreadPoolExecutor(max_workers=n)`, time it, and
# return `{n: seconds}`. The checker gives you a task that waits 0.05 s and watches how many overlap.

# %%
def sweep(task, items, workers_list):
    raise NotImplementedError


# %%
check.sweep(sweep)

# %% [markdown]
# **Exercise 07.2 — Pick `max_workers` by measuring.** Write `pick_workers(run, candidates, tolerance=0.10)`:
# time `run(n)` for every `n` in `candidates` (best of two runs), and return the smallest `n` whose time
# is within `tolerance` of the fastest. The checker's `run(n)` fetches 8 posts on `n` threads.

# %%
def pick_workers(run, candidates, tolerance=0.10):
    raise NotImplementedError


# %%
check.pick_workers(pick_workers)

# %% [markdown]
# **Exercise 07.3 — Size a process pool for CPU work.** Write `count_primes_fast(limit, task=count_primes_in)`
# that counts the primes below `limit` on one process per core **granted to this process** (section 4;
# round a fractional quota up), by splitting the range with `prime_ranges` and mapping `task` over the
# pieces. (Use the `task` argument: the checker passes a traced version to see which processes ran what.)

# %%
from futureslab.tasks import prime_ranges


def count_primes_fast(limit, task=count_primes_in):
    raise NotImplementedError


# %%
check.count_primes_fast(count_primes_fast)

# %% [markdown]
# To see a worked solution (try first!), remove the `#` and run:

# %%
# checks.solution("07.1")

# %% [markdown]
# ## Recap
#
# - Waiting scales with workers up to the number of waits; computing scales up to the cores granted, then goes flat.
# - Amdahl's law: a serial fraction `1 - p` caps the speed-up at `1 / (1 - p)`; fit `p` only to
#   measurements that can tell values of `p` apart.
# - Defaults are a start (`min(32, cpu + 4)` threads, `cpu` processes); pick the smallest count that is about as fast as the best.
#
# **Next:** [08 · asyncio and executors](08-asyncio-and-executors.ipynb): waiting without threads, and
# blocking calls from async code.

# %%
api.stop()  # every notebook stops what it started
