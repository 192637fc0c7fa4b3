# Source of notebooks/00-start-here.ipynb (build with: python src/notebooks/build.py 00)

# %% [markdown]
# # 00 · Start here
#
# **Why this matters.** Most programs spend their time either *waiting* (for a network, a disk, a
# database) or *computing*. Python's `concurrent.futures` lets you overlap the waiting and spread the
# computing over your cores with a dozen lines of code, but only if you pick the right tool and avoid a
# handful of traps. This course shows each idea running on **your** machine, measures it, and draws it.
#
# **In this notebook you will**
# - learn how the course works: run order, exercises, checkers and solutions;
# - check that your machine is ready (the same check your instructor may ask you to run);
# - run your first thread pool, time it, and see it as a timeline.
#
# **Time:** about 15 minutes. **Prerequisites:** Python functions and `for` loops; no concurrency yet.
#
# **Next:** [01 · Threads vs processes](01-threads-vs-processes.ipynb)

# %% [markdown]
# ## How to use this course
#
# - **Run the cells in order**, top to bottom (Shift+Enter). If something looks odd, use
#   *Kernel → Restart Kernel and Run All Cells*: every notebook runs in well under a minute.
# - **Every number is measured here.** Timings come from your machine, so they differ from your
#   neighbour's. When the text claims something ("threads were faster"), a cell checks it right there and
#   prints a line starting with ✓. If a check fails on a very busy laptop, re-run that cell.
# - **No internet needed.** The "web API" the lessons call is a small server that runs inside this
#   notebook on `127.0.0.1`, shaped like a public JSON placeholder API (posts, users, comments).
# - **Exercises** ("Your turn") have a *starter* cell with `raise NotImplementedError` for you to
#   replace, and a *checker* cell that tells you whether your answer is right, and whether it really ran
#   concurrently. Stuck? `checks.solution("01.1")` prints the worked solution of exercise 01.1; the
#   solutions live in `src/futureslab/solutions/`, apart from the notebooks, so try first.
# - **Helpers.** The task functions, the local API, the timing and the timeline pictures come from the
#   small `futureslab` package beside the notebooks. Its code is short and meant to be read.

# %% [markdown]
# ## The course map

# %%
from IPython.display import Markdown
from futureslab.course import course_map_markdown, COURSE

Markdown(course_map_markdown())

# %%
print(f"{len(COURSE)} notebooks, about {sum(lesson.minutes for lesson in COURSE)} minutes in all.")

# %% [markdown]
# ## Is your machine ready?
#
# The *doctor* checks your Python, the packages, your CPU count, how your system starts worker processes
# (the *start method*: `fork`, `spawn` or `forkserver`, which matters in notebook 01), whether a process
# pool can run a task, and whether the local API answers. You can also run it in a terminal:
# `python -m futureslab.doctor`. Its report describes your machine, so yours will differ from anyone else's.

# %% tags=["nbval-ignore-output"]
from futureslab import doctor

exit_code = doctor.run()

# %%
from futureslab.claims import claim

claim(exit_code == 0, "the doctor found nothing broken on this machine")

# %% [markdown]
# ## A first taste: waiting, overlapped
#
# The set-up cell below imports what we need and starts the local API with a latency of 0.1 s per
# request: every call takes at least that long, like a real web API far away. `futureslab.setup()`
# applies the course's settings (small figures; a start method if your instructor set one).

# %%
import time
from concurrent.futures import ThreadPoolExecutor

import matplotlib.pyplot as plt

import futureslab
from futureslab.server import LocalAPI
from futureslab.tasks import fetch_post
from futureslab.timing import fmt_seconds, fmt_speedup, speedup, stopwatch
from futureslab.trace import Tracer

futureslab.setup()
api = LocalAPI(latency=0.1).start()
post = fetch_post(1)
print("post 1 is titled:", repr(post["title"]))

# %% [markdown]
# `fetch_post(n)` makes a real HTTP request with `requests` and returns the JSON. Let us fetch eight
# posts, first one after another, then with a pool of eight threads. `executor.map(f, items)` calls
# `f` on every item, spread over the pool's threads, and hands back the results in the order of the
# items. The `Tracer` records which thread ran which call, and when.

# %%
POST_IDS = list(range(1, 9))


def run_both():
    """Fetch POST_IDS sequentially, then on 8 threads; return both stopwatches and tracers."""
    with Tracer() as seq_trace, stopwatch() as seq:  # a tracer's clock starts when it is made
        traced = seq_trace.wrap(fetch_post)
        seq_posts = [traced(i) for i in POST_IDS]
    with Tracer() as pool_trace, stopwatch() as pooled:
        traced = pool_trace.wrap(fetch_post)
        with ThreadPoolExecutor(max_workers=8) as executor:
            pool_posts = list(executor.map(traced, POST_IDS))
    assert seq_posts == pool_posts, "both ways must fetch the same posts"
    return seq, pooled, seq_trace, pool_trace


seq, pooled, seq_trace, pool_trace = run_both()
print(f"one after another: {fmt_seconds(seq)}")
print(f"8 threads:         {fmt_seconds(pooled)}  ({fmt_speedup(speedup(seq, pooled))} faster)")

# %% [markdown]
# **The picture.** Each row is a worker, each bar one request, labelled with its post id. On the left
# the main thread does one request at a time; on the right eight threads each wait on one request, all
# at the same moment, so the whole batch takes about as long as one request.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2), sharex=True, layout="constrained")
seq_trace.plot(ax=left, title="one after another")
pool_trace.plot(ax=right, title="ThreadPoolExecutor(max_workers=8)")
plt.show()

# %% [markdown]
# **The check.** Eight requests that each wait 0.1 s overlap perfectly in theory, for a speed-up of 8.
# Real threads start, parse and hand back results, so we accept anything above half of that ideal. On
# a busy machine one run can be unlucky, so the check measures again (up to three times) before it
# gives up; it never lowers the bar.

# %%
from futureslab.claims import measure_until

ideal = len(POST_IDS)


def measured_speedup():
    global seq, pooled, seq_trace, pool_trace
    seq, pooled, seq_trace, pool_trace = run_both()
    return speedup(seq, pooled)


factor = measure_until(measured_speedup, lambda f: f >= 0.5 * ideal)
claim(factor >= 0.5 * ideal, "8 threads fetched 8 posts at least 4x faster than one thread", speedup=factor)
claim(pool_trace.max_concurrency() >= 4, "at least 4 requests were in flight at the same moment",
      peak=pool_trace.max_concurrency())
claim(api.stats()["peak_in_flight"] >= 4, "the server saw them arrive together, too",
      peak=api.stats()["peak_in_flight"])

# %% [markdown]
# That is the whole trick for *waiting*: while one thread waits for an answer, the others can wait too.
# For *computing* it is a different story, because of Python's Global Interpreter Lock. That is where
# notebook 01 starts.
#
# ## Your turn
#
# There is no exercise in this notebook; try this instead: change `max_workers=8` to `2` in `run_both`,
# re-run it and the picture, and predict the shape before you look. (Four rounds of two bars.)

# %% [markdown]
# ## Explore it yourself
#
# Choose a number of workers, a kind of task and an executor, then press **Run**: eight tasks run
# again and their timeline is redrawn. An *io* task waits 0.1 s; a *cpu* task computes a fixed amount
# of pure Python, about 0.1 s on one free core. Try *io* with 1, 2, 4 and 8 threads and predict the
# time before you press Run; then try *cpu* on threads and on processes (notebook 01 explains why
# they differ). Where widgets are not available,
# `explore(widgets=False, kind=..., executor=..., workers=...)` runs once and draws the same picture.
# The cell also stores a still picture of its first run, which is what a page without a kernel
# (GitHub, nbviewer, a course website) shows in place of the widget.

# %% tags=["nbval-ignore-output"]
from futureslab.explorer import explore

explore(kind="io", executor="thread", workers=4)

# %% [markdown]
# ## Recap
#
# - Run every notebook top to bottom; each claim is measured and checked on your machine.
# - The local API stands in for the internet; the `futureslab` package holds the helpers.
# - A thread pool overlaps waiting: eight 0.1 s requests took about the time of one or two.
#
# **Next:** [01 · Threads vs processes](01-threads-vs-processes.ipynb), where we meet the GIL.

# %%
api.stop()  # every notebook stops what it started
