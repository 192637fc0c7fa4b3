# Source of notebooks/06-real-world-pipeline.ipynb (build with: python src/notebooks/build.py 06)

# %% [markdown]
# # 06 · A real-world pipeline
#
# **Why this matters.** Real jobs mix kinds of work: fetch data from a service (waiting), crunch it
# (computing), write the results (waiting again). Each stage wants a different tool, the service
# sometimes fails, and a job that runs for an hour must not quietly drop items on the way. This
# notebook builds such a pipeline twice, first stage by stage, then streaming items from one stage to
# the next as soon as they are ready, and proves both times that **nothing is lost**: every input ends
# as saved, or as failed with its reason.
#
# **In this notebook you will**
# - download with threads, with timeouts and retries against a flaky API;
# - process with processes, and measure that the work is heavy enough for them to pay off;
# - save with threads into a temporary folder (never the current one);
# - compare a staged and a streaming pipeline: total time, time to first result, and a timeline;
# - keep an account of every item, and recover when one stage fails partway.
#
# **Time:** about 30 minutes. **Prerequisites:** notebooks 01 to 05, especially `as_completed` and
# `wait` (02, 04) and broken pools and lost exceptions (05).
#
# **Previous:** [05 · Pitfalls](05-pitfalls.ipynb) ·
# **Next:** [07 · Tuning and scaling](07-tuning-and-scaling.ipynb)

# %% [markdown]
# ## Set-up
#
# The local API answers after 0.05 s plus up to 0.1 s of random jitter, and fails 15% of requests
# with HTTP 503 ("try again later"), like a busy real service. Results go to a temporary folder that
# is deleted at the end. The inputs are 16 post ids, plus id 999, which does not exist.
#
# The building blocks live in `futureslab.pipeline` (short; read it): a process pool can only run
# functions it can import, and the retry logic is worth reusing. The pipelines themselves are written
# out below.

# %%
import inspect
import os
import tempfile
from functools import partial
from concurrent.futures import (FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor,
                                as_completed, wait)

import matplotlib.pyplot as plt

import futureslab
from futureslab import checks, pipeline
from futureslab.checks import nb06 as check
from futureslab.claims import claim, measure_until
from futureslab.server import LocalAPI
from futureslab.timing import (cpu_count, fmt_cores, fmt_seconds, fmt_speedup, free_cores, ideal_speedup,
                               measure, speedup, stopwatch)
from futureslab.trace import Tracer, plot_timeline

futureslab.setup()
api = LocalAPI(latency=0.05, jitter=0.1, failure_rate=0.15, seed=6).start()
workdir = tempfile.TemporaryDirectory(prefix="futureslab-06-")
CORES = cpu_count()
INPUTS = list(range(1, 17)) + [999]
print(f"{len(INPUTS)} inputs; results go to a temporary folder")

# %% [markdown]
# ## 1. The three stages, one at a time
#
# ### Download: timeouts and retries
#
# `pipeline.get_with_retry` is the heart of the download stage. Every request has a **timeout** (the
# article this course grew from calls `requests.get(url)` with none: one stuck connection then hangs
# a worker forever). A *temporary* failure (HTTP 503, a timeout, a refused connection) is retried after
# a pause that doubles each time (**exponential back-off**), so a struggling server gets air. A
# *permanent* failure (HTTP 404) is not retried: it will not get better. When it gives up, it raises
# `FetchFailed` whose message is the reason.

# %%
print(inspect.getsource(pipeline.get_with_retry))

# %% [markdown]
# Three calls show the three outcomes: a flaky endpoint that fails half the time (retried until it
# answers), a request that is too slow for its timeout, and a post that does not exist.

# %%
for url, options in [(f"{api.url}/flaky?rate=0.5", dict(retries=12, backoff=0.005)),
                     (f"{api.url}/slow?seconds=2", dict(retries=1, timeout=0.2)),
                     (f"{api.url}/posts/999", dict(retries=3))]:
    try:
        pipeline.get_with_retry(url, **options)
        print(f"{url.split('/', 3)[3]:<17} ok")
    except pipeline.FetchFailed as exc:
        print(f"{url.split('/', 3)[3]:<17} FetchFailed: {exc}")

# %% [markdown]
# ### Analyse: heavy enough for processes?
#
# `pipeline.analyse(post)` summarises a post and computes a deliberately expensive fingerprint in pure
# Python (tens of milliseconds per post). The article's version of this stage summed a few numbers:
# far too little work to pay for a process pool (notebook 05, section 2). Is ours heavy enough? Measure,
# counting the workers' start-up, since the pipeline pays it too. The most it can give is one post
# per *free* core at a time, so the pool's free cores are measured too, just after (notebook 01).

# %%
posts = [pipeline.download(i, retries=6) for i in range(1, 17)]


def analyse_in_processes():
    """(seconds, summaries, free cores): the workers start on the first task, so the clock counts their
    start-up; the free cores are measured after the clock stops, on the same pool."""
    with ProcessPoolExecutor(max_workers=CORES) as pool:
        with stopwatch() as sw:
            summaries = list(pool.map(pipeline.analyse, posts))
        return sw.elapsed, summaries, free_cores(pool, CORES)


def compare_analysis():
    one = measure(lambda: [pipeline.analyse(p) for p in posts], repeat=1)
    many, summaries, free = analyse_in_processes()
    assert one.result == summaries, "both ways must give the same summaries"
    return one.best, many, free


def analysis_holds(result):
    one, many, free = result
    return speedup(one, many) >= 0.6 * ideal_speedup(CORES, "cpu", cores=free)


sequential, in_processes, free = measure_until(compare_analysis, analysis_holds)
print(f"16 posts, one after another:  {fmt_seconds(sequential)}"
      f"  ({fmt_seconds(sequential / 16)} a post)")
print(f"16 posts, {CORES} processes:         {fmt_seconds(in_processes)}"
      f"  ({fmt_speedup(speedup(sequential, in_processes))} faster, on {fmt_cores(free)})")

# %%
claim(analysis_holds((sequential, in_processes, free)),
      "processes analysed the posts at 60% or more of min(workers, free cores), start-up included",
      speedup=speedup(sequential, in_processes), free_cores=free)

# %% [markdown]
# ### Save: into a temporary folder
#
# `pipeline.Saver(folder).save(result)` writes `post_<id>.json` and returns the file name. It writes to
# a temporary name and renames, so a crash never leaves half a file, and saving the same result twice
# simply overwrites it: the stage is **idempotent**, which makes re-running safe. (The article's
# version wrote `result_<n>.json` into the current folder, and named the files after a count that
# several results share, so one overwrote another.)

# %%
first = pipeline.analyse(posts[0])
print(first)
print("saved as", pipeline.Saver(workdir.name).save(first))

# %% [markdown]
# ## 2. The staged pipeline
#
# The simplest shape: all downloads, then all analyses, then all saves, each stage in its own pool.
# Every input gets exactly one entry in `outcomes`: `("saved", file)` or `("failed", "stage: reason")`.
# A failure in one item is recorded, and the rest carry on. A `Tracer` records every task for the
# timeline (threads are named after their stage with `thread_name_prefix`).

# %%
def traced_stages(tracer, saver):
    """The three stage functions (downloads retry up to 5 times), wrapped so the tracer records
    them, labelled by post id."""
    return (tracer.wrap(partial(pipeline.download, retries=5)),
            tracer.wrap(pipeline.analyse, label=pipeline.item_label),
            tracer.wrap(saver.save, label=pipeline.item_label))


def failure(stage, exc):
    return ("failed", f"{stage}: {type(exc).__name__}: {exc}")


def run_staged(inputs, saver, tracer):
    download, analyse, save = traced_stages(tracer, saver)
    outcomes, first_saved = {}, None
    with stopwatch() as clock:
        downloaded = {}
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="download") as pool:
            futures = {pool.submit(download, item): item for item in inputs}
            for future in as_completed(futures):
                item = futures[future]
                try:
                    downloaded[item] = future.result()
                except Exception as exc:
                    outcomes[item] = failure("download", exc)
        analysed = {}
        with ProcessPoolExecutor(max_workers=CORES) as pool:
            futures = {pool.submit(analyse, post): item for item, post in downloaded.items()}
            for future in as_completed(futures):
                item = futures[future]
                try:
                    analysed[item] = future.result()
                except Exception as exc:
                    outcomes[item] = failure("analyse", exc)
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="save") as pool:
            futures = {pool.submit(save, result): item for item, result in analysed.items()}
            for future in as_completed(futures):
                item = futures[future]
                try:
                    outcomes[item] = ("saved", future.result())
                    first_saved = first_saved or clock.lap()
                except Exception as exc:
                    outcomes[item] = failure("save", exc)
    return outcomes, clock.elapsed, first_saved


def new_folder(name):
    path = os.path.join(workdir.name, name)
    os.makedirs(path)
    return path


with Tracer() as staged_trace:
    staged_saver = pipeline.Saver(new_folder("staged"))
    staged, staged_total, staged_first = run_staged(INPUTS, staged_saver, staged_trace)
print(f"staged: everything in {fmt_seconds(staged_total)}, first file saved after {fmt_seconds(staged_first)}")

# %% [markdown]
# ## 3. The streaming pipeline
#
# In the staged version, the first file is saved only after *every* download and *every* analysis has
# finished, and the processes sit idle while the downloads wait. Instead, hand each item to the next
# stage **as soon as it is ready**. All three pools stay open together; one loop in the main thread
# waits for whichever future finishes first (`wait(..., return_when=FIRST_COMPLETED)`) and submits that
# item's next stage. Only the main thread submits, so no task ever waits on another (notebook 05,
# section 4), and every future is read, so no error is lost.

# %%
def run_streaming(inputs, saver, tracer, timeout=30):
    """Returns (outcomes, total seconds, seconds to the first saved file, unsaved results)."""
    download, analyse, save = traced_stages(tracer, saver)
    outcomes, unsaved, first_saved = {}, {}, None
    with stopwatch() as clock, \
            ThreadPoolExecutor(max_workers=8, thread_name_prefix="download") as downloads, \
            ProcessPoolExecutor(max_workers=CORES) as analysers, \
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="save") as savers:
        in_flight = {downloads.submit(download, item): ("download", item, None) for item in inputs}
        while in_flight:
            done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
            if not done:  # nothing finished for `timeout` s: give up on what is left, but say so
                for future, (stage, item, _) in in_flight.items():
                    future.cancel()
                    outcomes[item] = ("failed", f"{stage}: no answer within {timeout} s")
                break
            for future in done:
                stage, item, given = in_flight.pop(future)
                try:
                    value = future.result()
                except Exception as exc:
                    outcomes[item] = failure(stage, exc)
                    if stage == "save":
                        unsaved[item] = given  # keep the work done so far: it can be saved later
                    continue
                if stage == "download":
                    in_flight[analysers.submit(analyse, value)] = ("analyse", item, value)
                elif stage == "analyse":
                    in_flight[savers.submit(save, value)] = ("save", item, value)
                else:
                    outcomes[item] = ("saved", value)
                    first_saved = first_saved or clock.lap()
    return outcomes, clock.elapsed, first_saved, unsaved


with Tracer() as streaming_trace:
    streaming_saver = pipeline.Saver(new_folder("streaming"))
    streaming, streaming_total, streaming_first, _ = run_streaming(INPUTS, streaming_saver,
                                                                   streaming_trace)
print(f"streaming: everything in {fmt_seconds(streaming_total)}, "
      f"first file saved after {fmt_seconds(streaming_first)}")

# %% [markdown]
# **The picture.** One row per worker, grouped by stage; bars of one colour belong to one post. In the
# staged run (top) each stage waits for the previous one to finish completely. In the streaming run
# (bottom) analysis starts while downloads are still going on, and saving starts with the first
# analysed post.

# %%
fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True, layout="constrained")
plot_timeline(pipeline.stage_records(staged_trace), ax=top, title="staged: one stage after another")
plot_timeline(pipeline.stage_records(streaming_trace), ax=bottom,
              title="streaming: each item moves on as soon as it is ready")
top.set_xlim(0, 1.02 * max(r.end for tr in (staged_trace, streaming_trace) for r in tr.records))
plt.show()

# %%
print(f"time to first result: staged {fmt_seconds(staged_first)}, streaming {fmt_seconds(streaming_first)}")
print(f"total time:           staged {fmt_seconds(staged_total)}, streaming {fmt_seconds(streaming_total)}")
claim(streaming_first <= 0.5 * staged_first,
      "the streaming pipeline saved its first file in at most half the staged pipeline's time",
      staged=staged_first, streaming=streaming_first)
claim(streaming_total <= 1.1 * staged_total,
      "and it was no slower overall (within 10%), since analysis overlapped the downloads",
      staged=staged_total, streaming=streaming_total)

# %% [markdown]
# Streaming pays most when the stages take similar time and items arrive unevenly; its first result
# arrives early in any case, which matters when a person or a later job is waiting for it.
#
# ## 4. Nothing lost
#
# The accounting: every input must end with exactly one outcome, and the folder must hold one file per
# "saved". `pipeline.tally` counts. Which posts the flaky server failed depends on timing (concurrent
# requests share its random number generator), so the checks below rely on the account, not on which
# items failed. The retries usually save every existing post; the post that does not exist always
# fails, with its reason.

# %% tags=["nbval-ignore-output"]
for name, outcomes in (("staged", staged), ("streaming", streaming)):
    print(name, pipeline.tally(INPUTS, outcomes))
    print("   failed:", {item: why for item, (status, why) in outcomes.items() if status == "failed"})
print("server:", api.stats())

# %%
for name, outcomes, saver in (("staged", staged, staged_saver), ("streaming", streaming, streaming_saver)):
    count = pipeline.tally(INPUTS, outcomes)
    claim(count["missing"] == count["unexpected"] == 0 and count["saved"] + count["failed"] == len(INPUTS),
          f"{name}: every one of the {len(INPUTS)} inputs ended saved or failed, none twice", **count)
    claim(len(saver.files()) == count["saved"], f"{name}: one file on disk for each saved item",
          files=len(saver.files()), saved=count["saved"])
claim(staged[999] == streaming[999] == ("failed", "download: FetchFailed: HTTP 404 (not retried)"),
      "post 999 failed at download with its reason, HTTP 404, and was not retried")
claim(api.stats()["failures"] > 0 and all(staged[i][0] == streaming[i][0] == "saved" for i in range(1, 17)),
      "the server failed some requests, yet retries saved every existing post in both runs",
      failures=api.stats()["failures"])

# %% [markdown]
# ## 5. When a stage fails partway
#
# Halfway through a long run the disk fills up. Every save from then on fails, but the downloads and
# the analyses that fed them succeeded and took time. Two rules keep the damage small:
#
# 1. **Record the failure with its reason, and keep the work already done.** `run_streaming` keeps the
#    analysed result of every item whose save failed (`unsaved`).
# 2. **Make stages safe to repeat, and resume only what is missing.** Once there is room again, only
#    the failed saves run again: no download, no analysis repeated. (Because saving is idempotent,
#    re-running *everything* would also be safe, only slower.)
#
# `Saver(folder, fail_after=5)` simulates the disk: after 5 files every save raises `OSError` (ENOSPC).

# %%
api.configure(failure_rate=0)  # this section is about the disk, not the network
with Tracer() as partway_trace:
    full_disk = pipeline.Saver(new_folder("partway"), fail_after=5)
    partway, _, _, unsaved = run_streaming(INPUTS, full_disk, partway_trace)
count = pipeline.tally(INPUTS, partway)
reasons = sorted({why for status, why in partway.values() if status == "failed"})
print(f"saved {count['saved']}, failed {count['failed']}, kept for a retry: {len(unsaved)}")
for why in reasons:
    print("  reason:", why)

# %%
full_disk.make_room()  # someone frees some space
requests_before = api.stats()["requests"]
with ThreadPoolExecutor(max_workers=4) as pool:
    futures = {pool.submit(full_disk.save, result): item for item, result in unsaved.items()}
    for future in as_completed(futures):
        partway[futures[future]] = ("saved", future.result())  # an error here would show: nothing hides it
count = pipeline.tally(INPUTS, partway)
print(f"after resuming: saved {count['saved']}, failed {count['failed']}")
claim(count["saved"] == 16 and count["missing"] == 0 and len(full_disk.files()) == 16,
      "after resuming, all 16 existing posts are saved and accounted for")
claim(api.stats()["requests"] == requests_before, "resuming downloaded nothing again")

# %% [markdown]
# If instead the *process* stage breaks partway (a worker dies: `BrokenProcessPool`, notebook 05,
# section 7), the same two rules apply: the items in flight in that pool fail with that reason, their
# downloaded posts are still in hand, and they can be analysed again in a fresh pool.
#
# ## Your turn
#
# Run each checker as is first: it says *not solved yet*. Stuck? `checks.solution("06.1")` prints a
# worked solution.
#
# ### Exercise 06.1: a GET that retries
#
# Complete `fetch_json(session, url, retries, backoff, timeout)`: GET `url` with `session` and the
# given `timeout`, return the decoded JSON; retry HTTP 503 and timeouts up to `retries` more times,
# sleeping `backoff`, then `2 × backoff`, `4 × backoff`... between tries; do **not** retry a 404; when
# giving up, raise an exception (any type) whose message says why. Write it yourself rather than
# calling `pipeline.get_with_retry`. The checker uses its own local API.

# %%
def fetch_json(session, url, retries, backoff, timeout):
    raise NotImplementedError


# %%
check.fetch_json(fetch_json)

# %% [markdown]
# ### Exercise 06.2: download everything, lose nothing
#
# Complete `download_all(ids, fetch, workers)`: call `fetch(i)` for every id on a pool of `workers`
# threads and return `(ok, failed)`: `ok` maps each id that worked to its result, `failed` maps each id
# that raised to a short reason string (include the exception's type and message). Every id must end
# up in exactly one of them.

# %%
def download_all(ids, fetch, workers):
    raise NotImplementedError


# %%
check.download_all(download_all)

# %% [markdown]
# ### Exercise 06.3: your own streaming pipeline
#
# Complete `stream(ids, download, analyse, save)`: download on threads, analyse on **processes**, save
# on threads, handing each item to the next stage as soon as it is ready (section 3). Return
# `outcomes`: for every id, `("saved", whatever save returned)` or `("failed", reason)`. The checker
# makes one download much slower than the others: a streaming pipeline saves the others before it
# arrives; a staged one cannot.

# %%
def stream(ids, download, analyse, save):
    raise NotImplementedError


# %%
check.stream(stream)

# %% [markdown]
# ## Recap
#
# - Threads for waiting (with timeouts and retries), processes for computing (when each task is heavy
#   enough, measured), and files only in a folder you own.
# - Streaming items from stage to stage gives the first result much sooner and overlaps the stages.
# - Account for every input: saved, or failed with a reason; keep finished work so a failed stage
#   can resume without starting over.
#
# **Next:** [07 · Tuning and scaling](07-tuning-and-scaling.ipynb), choosing worker counts by measuring.

# %%
api.stop()  # every notebook stops what it started
workdir.cleanup()  # and deletes what it wrote
