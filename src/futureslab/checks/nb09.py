"""Checkers for the exercises of notebook 09 (newer Pythons and clusters)."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from futureslab.checks import describe, exercise, expect, owned_pool, run_with_timeout
from futureslab.server import LocalAPI
from futureslab.tasks import count_primes, count_primes_in, prime_ranges
from futureslab.trace import Tracer

__all__ = ["first_n_then_stop", "total_primes", "fastest_first"]

_calls = itertools.count()

#: How long each checker waits for an answer (the worked solutions take well under a second).
TIME_LIMIT = 10.0


def _is_future(value) -> bool:
    return isinstance(value, Future) or type(value).__module__.startswith("distributed")


@exercise("09.1", "Stop early with cancel_futures",
          hint="`with` waits for every queued request. Which argument of pool.shutdown() drops the "
               "tasks that have not started, and where must that call go so it runs however you leave "
               "the function?",
          solution="futureslab.solutions.nb09:first_n_then_stop")
def first_n_then_stop(answer):
    ids, n = list(range(1, 41)), 4
    with LocalAPI(latency=0.1) as api:
        results = run_with_timeout(answer, ids, n, timeout=TIME_LIMIT)
        time.sleep(0.15)  # anything still running would reach the server by now
        stats = api.stats()
    expect(isinstance(results, (list, tuple)), f"return a list of posts, got {describe(results)}.")
    expect(not any(_is_future(r) for r in results),
           "you returned futures: return the posts themselves (future.result()).")
    expect(stats["requests"] > 0, "no request reached the server: fetch the posts with fetch_post.")
    expect(len(results) == n, f"return exactly the first {n} posts, got {len(results)}.")
    got = [r.get("id") if isinstance(r, dict) else r for r in results]
    expect(all(i in ids for i in got) and len(set(got)) == n, f"expected {n} different posts, got ids {got}.")
    expect(stats["peak_in_flight"] >= 2, "the requests ran one at a time: submit them all to a pool.")
    expect(stats["peak_in_flight"] <= 4,
           f"{stats['peak_in_flight']} requests were in flight at once: use a pool of 4 threads, so that "
           f"most requests wait in its queue (that queue is what you cancel).")
    expect(stats["requests"] <= 16,
           f"the server got {stats['requests']} of the {len(ids)} requests: the queued ones still ran "
           f"after you had your {n}. Shut the pool down so that queued tasks are cancelled.")
    return f"{n} posts arrived, and {len(ids) - stats['requests']} queued requests were never sent."


@exercise("09.2", "One function, any executor",
          hint="Hand every range to executor.submit(task, ...) first, and only then wait for results, "
               "in whatever order they finish. Use the `task` you are given, and nothing that only one "
               "kind of pool has.",
          solution="futureslab.solutions.nb09:total_primes")
def total_primes(answer):
    # ranges of ~20 ms each: long enough that two threads' runs overlap even with the GIL
    ranges = prime_ranges(200_000, chunks=8)
    expected = count_primes(0, 200_000)
    with Tracer() as tracer, owned_pool(ThreadPoolExecutor(max_workers=4)) as pool:
        total = run_with_timeout(answer, pool, ranges, task=tracer.wrap(count_primes_in), timeout=TIME_LIMIT)
    expect(not _is_future(total), "you returned a future: return the total itself (future.result()).")
    expect(isinstance(total, int) and not isinstance(total, bool),
           f"return the number of primes (an int), got {describe(total)}.")
    expect(tracer.records, f"the task you were given was never called (you returned {describe(total)} "
                           f"without it): pass `task` to executor.submit.")
    workers = set(tracer.workers)
    expect(all(w.startswith("thread-") for w in workers),
           "some ranges ran in the calling thread: hand every one to the executor.")
    expect(len(tracer.records) == len(ranges),
           f"the task ran {len(tracer.records)} times for {len(ranges)} ranges: run it once per range.")
    expect(total == expected, f"there are {expected} primes below 200000, you counted {total}.")
    expect(tracer.max_concurrency() >= 2, "the ranges ran one after another: submit them all before you "
                                          "wait for any result.")
    return "the same code runs on a thread pool, a process pool or a Dask cluster's executor."


class _Recorder:
    """Stands in for the Dask client: passes every call through to it, and notes when each future that
    ``submit`` / ``map`` made finished (a done-callback, as Dask reports completion to the client)."""

    def __init__(self, client):
        self._client = client
        self._lock = threading.Lock()
        self.finished: list = []  # (time, future), in the order the client learnt of them
        self.futures: list = []

    def __getattr__(self, name):
        return getattr(self._client, name)

    def _watch(self, future):
        self.futures.append(future)

        def done(f):
            with self._lock:
                self.finished.append((time.perf_counter(), f))
        future.add_done_callback(done)
        return future

    def submit(self, *args, **kwargs):
        return self._watch(self._client.submit(*args, **kwargs))

    def map(self, *args, **kwargs):
        futures = self._client.map(*args, **kwargs)
        return [self._watch(f) for f in futures] if isinstance(futures, list) else futures


class _TaskStream:
    """``with stream:`` records the tasks the cluster's workers computed meanwhile (distributed's
    ``get_task_stream``), for :meth:`most_at_once`; ``None`` from it if the stream could not be read."""

    def __init__(self, client):
        self._client, self._stream, self.data = client, None, None

    def __enter__(self):
        try:
            from distributed import get_task_stream

            self._stream = get_task_stream(client=self._client)
            self._stream.__enter__()
        except Exception:
            self._stream = None
        return self

    def __exit__(self, *exc):
        if self._stream is not None:
            try:
                self._stream.__exit__(None, None, None)
                self.data = list(self._stream.data)
            except Exception:
                self.data = None
        return False

    def most_at_once(self) -> int | None:
        """The most tasks the workers computed at the same moment."""
        if not self.data:
            return None
        edges = sorted((ss[edge], +1 if edge == "start" else -1)
                       for task in self.data for ss in task.get("startstops", ())
                       if ss.get("action") == "compute" for edge in ("start", "stop"))
        running = most = 0
        for _, step in edges:  # at a tie an end sorts first: back-to-back tasks did not overlap
            running += step
            most = max(most, running)
        return most


def _completion_order(recorder: _Recorder, delays: list) -> list | None:
    """The values of the answer's futures in the order they finished; ``None`` if that is not known
    (the answer used something other than client.submit / client.map, or a future failed)."""
    deadline = time.monotonic() + 2
    while len(recorder.finished) < len(recorder.futures) and time.monotonic() < deadline:
        time.sleep(0.01)
    if len(recorder.futures) != len(delays) or len(recorder.finished) != len(delays):
        return None
    try:
        return [f.result(timeout=5) for _, f in sorted(recorder.finished, key=lambda pair: pair[0])]
    except Exception:
        return None


@exercise("09.3", "as_completed on a Dask cluster",
          hint="Submit a task for every delay first, then let distributed's own as_completed hand "
               "you the futures as they finish (the standard one does not accept Dask's futures).",
          solution="futureslab.solutions.nb09:fastest_first")
def fastest_first(answer, client):
    expect(hasattr(client, "submit") and hasattr(client, "cancel"),
           f"pass the notebook's Dask client as the second argument, got {describe(client)}.")
    # Two slots run the first two delays at once; the rest wait for a free slot, so (with 2 workers
    # of 1 thread, as in the notebook) the order they finish is neither the order submitted nor sorted.
    # A new small offset on each call gives new Dask keys, so no result of an earlier check is reused.
    offset = (next(_calls) % 9 + 1) / 1000
    delays = [round(d + offset, 3) for d in (0.45, 0.05, 0.3, 0.15)]
    recorder = _Recorder(client)
    stream = _TaskStream(client)
    t0 = time.perf_counter()
    try:
        with stream:
            results = run_with_timeout(answer, recorder, delays, timeout=TIME_LIMIT)
    except BaseException:
        client.cancel(recorder.futures)
        raise
    elapsed = time.perf_counter() - t0
    expect(isinstance(results, (list, tuple)), f"return a list, got {describe(results)}.")
    expect(not any(_is_future(r) for r in results),
           "you returned futures: return their results (future.result()).")
    expect(sorted(results) == sorted(delays), f"expected the values {delays} in some order, got {results}.")
    expect(recorder.futures or elapsed >= 0.9 * max(delays),
           f"you returned after {elapsed:.2f} s, before the {max(delays)} s task could have finished: "
           f"run sleep_then_return(d, d) on the cluster for every delay.")
    # The workers' own record of when each task computed says whether two ran at once; the wall time
    # alone (the sum of the delays, minus a margin) also counts Dask's overhead, which a busy machine
    # stretches: the worked solution once took 1.01 s against a bar of 0.86 s in a full test run.
    at_once = stream.most_at_once()
    expect(at_once >= 2 if at_once is not None else elapsed < 0.9 * sum(delays),
           f"the tasks took {elapsed:.2f} s in all"
           + ("" if at_once is None else ", and the workers never computed two of them at once")
           + ": one after another. Submit them all before waiting for any.")
    finished = _completion_order(recorder, delays)
    expect(list(results) != delays or finished == delays,
           "you returned the results in the order you submitted them: collect each as it completes "
           "(distributed.as_completed), not with gather() or in a loop over your futures.")
    if finished is not None:
        expect(list(results) == finished or sorted(results) != list(results),
               f"the tasks finished in the order {finished}, but you returned {list(results)}: "
               f"sorting the results is not the order they completed in.")
        expect(list(results) == finished,
               f"the tasks finished in the order {finished}, but you returned {list(results)}: "
               f"collect each result as its task completes.")
    else:
        expect(results[0] == min(delays), f"the first result was {results[0]}, but the "
                                          f"{min(delays)} s task finished first.")
    return "the cluster ran the tasks together and you took each result as it arrived."
