"""The measuring behind notebook 01 · Threads vs processes, kept out of the lesson cells.

The notebook shows the few lines of concurrency it teaches; the fair measurement (pools started
before the clock, interleaved rounds, best runs, the load of other programs) lives here. Every
function that backs a claim takes the executor *factory* it judges as a parameter, so the tests can
feed it the wrong mechanism (threads for CPU work, processes pinned to one CPU, a sequential
executor) and see the claim fail or say it cannot be shown.

* :func:`python_summary` — the Python, its start method and its GIL, in one line.
* :func:`slice_names` — ``{"(2000000, 2030000)": "slice 1", ...}`` for timeline labels.
* :func:`gil_verdict` / :func:`claim_gil` — "threads gave pure-Python work no speed-up" from a
  :func:`~futureslab.claims.cpu_race` (its control run is the thread pool).
* :func:`process_sweep` — the same CPU job on 1, 2 and 4 processes (:class:`Sweep`), with two claims:
  it scales up to the granted cores, and gains nothing past them.
* :func:`io_race` — an I/O job one after another and on a thread pool (:class:`IORace`).
* :func:`start_up_times` — time to a first result for a thread pool and a process pool of each
  start method this platform has; :func:`start_ups_measured` runs it inside a
  :class:`~futureslab.cores.LoadMeter`, again while other programs are busy, for the claims.
* :func:`transfer_times`, :func:`tiny_tasks` — what shipping data and tiny tasks to a pool costs.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from ._validate import check_callable, check_int, check_number
from .claims import BUSY, CONTROL_CORES_MAX, FLOOR, MARGIN, SLACK, Room, claim, quiet, slowed_cores
from .interrupts import stopping_workers

__all__ = ["python_summary", "gil_enabled", "slice_names", "gil_verdict", "claim_gil", "Sweep",
           "process_sweep", "sweep_counts", "IORace", "io_race", "start_up_times", "StartUps",
           "start_ups_measured", "transfer_times",
           "tiny_tasks", "THREAD_CORES_MAX", "BEYOND_GAIN_MAX"]

#: Under a GIL, threads on pure-Python work keep at most this many cores busy together (one core's
#: worth, plus measuring slack); threads that compute in parallel keep ~2 busy.
THREAD_CORES_MAX = CONTROL_CORES_MAX  # 1.3
#: Processes past the granted cores may gain at most this factor over the best count within them.
BEYOND_GAIN_MAX = 1.5  # halfway between computing (1x: no core left) and waiting (2x)


def gil_enabled() -> bool:
    """False only on a free-threaded build running without its GIL (3.13+)."""
    return getattr(sys, "_is_gil_enabled", lambda: True)()


def python_summary() -> str:
    """One line: implementation, version, start method in force, and whether the GIL is on."""
    impl = sys.implementation.name
    version = ".".join(map(str, sys.version_info[:3]))
    return (f"{impl} {version}, start method {multiprocessing.get_start_method()!r} "
            f"(this platform offers {', '.join(multiprocessing.get_all_start_methods())}), "
            f"GIL {'on' if gil_enabled() else 'off (free-threaded build)'}")


def slice_names(ranges) -> dict:
    """``{repr((start, end)): "slice N"}``: the labels a timeline shows for prime-counting slices."""
    return {repr(tuple(r)): f"slice {i}" for i, r in enumerate(ranges, start=1)}


def _mean_slice(tracer) -> float:
    recs = list(tracer.records)
    if not recs:
        raise ValueError("the tracer holds no records")
    return sum(r.duration for r in recs) / len(recs)


def gil_verdict(race) -> tuple[bool, dict]:
    """What the thread-pool run of a :func:`~futureslab.claims.cpu_race` shows about the GIL.

    ``race``'s control must be the thread pool on pure-Python work. With a GIL the threads take turns:
    at least two tasks in progress at once, yet this process (and any children) kept at most
    :data:`THREAD_CORES_MAX` cores busy during that run (CPU time / wall time). Neither figure leans
    on the sequential run, whose speed swings with the virtual CPU it lands on (0.38-0.62 s for the
    same work in one minute on this course's 2-vCPU test machine); the speed-up over it and the
    stretch of the slices are reported, not judged. Threads that really compute in parallel (work
    that releases the GIL, or processes passed off as threads) keep ~2 cores busy; an executor with
    no parallelism never has two tasks in progress. On a free-threaded build (no GIL) they compute
    in parallel: the speed-up must reach ``FLOOR * min(workers, granted)``.
    """
    speed = race.times["sequential"] / race.times["control"]
    stretch = _mean_slice(race.tracers["control"]) / _mean_slice(race.tracers["sequential"])
    cores = race.cores_used["control"]
    at_once = race.tracers["control"].max_concurrency()
    facts = {"threads_speedup": speed, "stretch": stretch, "cores_used": cores, "at_once": at_once,
             "cores_bar": THREAD_CORES_MAX}
    if gil_enabled():
        return at_once >= 2 and cores <= THREAD_CORES_MAX, facts
    ideal = min(race.workers, race.room.granted)
    return ideal >= 2 and speed >= FLOOR * ideal, facts


def claim_gil(race, text: str) -> str:
    """Judge :func:`gil_verdict` with three outcomes. Under a GIL the claim is an upper bound (a
    burst of load on the sequential run could fake a speed-up), so it needs every granted core quiet;
    on a free-threaded build it is a parallel claim and needs two cores."""
    from .timing import fmt_speedup

    holds, facts = gil_verdict(race)
    needs = race.room.granted if gil_enabled() else 2
    return claim(holds, text, needs_cores=needs, room=race.room,
                 show=f"{facts['at_once']} tasks at once on {facts['cores_used']:.2f} cores; "
                      f"{fmt_speedup(facts['threads_speedup'])}, each slice {fmt_speedup(facts['stretch'])} as long",
                 **facts)


# ---------------------------------------------------------------------------------- process sweep

def sweep_counts(granted: float) -> tuple[int, ...]:
    """The process counts 01 sweeps: ``(1, 2, 4)`` up to 2 granted cores, else ``(1, G, 2G)`` with
    ``G`` the whole granted cores, so the sweep always reaches one count past the cores."""
    g = max(1, int(check_number("granted", granted, low=0)))
    return (1, 2, 4) if g <= 2 else (1, g, 2 * g)


@dataclass
class Sweep:
    """What :func:`process_sweep` measured: best seconds of each count, and the room."""

    counts: tuple
    sequential: float = float("inf")
    times: dict = field(default_factory=dict)   # count -> best seconds
    room: Room | None = None
    rounds: int = 0
    cores_used: dict = field(default_factory=dict)  # count -> cores kept busy in its best run
                                                    # (CPU time of this process tree / wall time)

    def speedups(self) -> dict:
        return {n: self.sequential / t for n, t in self.times.items()}

    def _judged(self) -> list:
        return [n for n in self.counts if min(n, self.room.granted) >= 2]

    def scales(self) -> tuple[bool, dict]:
        """Each count with ``min(n, granted) >= 2`` reached ``FLOOR * min(n, granted)`` *and* beat
        one process by at least ``MARGIN`` (one worker is the control: it cannot compute in
        parallel, and it pays the same pickling and hand-over costs) *and*, where its CPU time was
        recorded, kept at least ``BUSY * min(n, granted)`` cores busy: the sequential baseline's
        speed swings with the virtual CPU it lands on, CPU time does not."""
        s, g = self.speedups(), self.room.granted
        judged = self._judged()
        facts = {f"speedup_{n}": s[n] for n in self.counts}
        facts.update(granted=g, floor=FLOOR, margin=MARGIN)
        holds = bool(judged) and all(s[n] >= FLOOR * min(n, g) and s[n] >= MARGIN * s[1] for n in judged)
        for n in judged:
            if n in self.cores_used:
                facts[f"cores_used_{n}"] = self.cores_used[n]
                facts[f"cores_bar_{n}"] = BUSY * min(n, g)
                holds = holds and self.cores_used[n] >= BUSY * min(n, g)
        return holds, facts

    def slowed(self) -> str | None:
        """:func:`~futureslab.claims.slowed_cores` for the judged counts: every one kept its cores
        busy and one process (the control) kept at most one core's worth, yet the speed fell short."""
        judged = self._judged()
        if not judged or any(n not in self.cores_used for n in judged + [1]):
            return None
        return slowed_cores([(self.cores_used[n], BUSY * min(n, self.room.granted)) for n in judged],
                            control=(self.cores_used[1], CONTROL_CORES_MAX))

    def flat_beyond(self) -> tuple[bool, dict]:
        """Every count above the granted cores gained at most ``BEYOND_GAIN_MAX`` over the best count
        within them (there is no core left to run the extra processes on)."""
        s, g = self.speedups(), self.room.granted
        within = [n for n in self.counts if n <= g] or [1]
        beyond = [n for n in self.counts if n > g]
        best_within = max(s[n] for n in within)
        facts = {f"speedup_{n}": s[n] for n in self.counts}
        facts.update(granted=g, gain_bar=BEYOND_GAIN_MAX)
        holds = bool(beyond) and all(s[n] <= BEYOND_GAIN_MAX * best_within for n in beyond)
        return holds, facts

    def claim_scales(self, text: str) -> str:
        from .timing import fmt_speedup

        holds, facts = self.scales()
        shown = "; ".join(f"{n}: {fmt_speedup(facts[f'speedup_{n}'])}"
                          + (f" on {facts[f'cores_used_{n}']:.2f} cores" if f"cores_used_{n}" in facts else "")
                          for n in self._judged())
        return claim(holds, text, needs_cores=2, room=self.room, excuse=self.slowed(), show=shown, **facts)

    def claim_flat_beyond(self, text: str) -> str:
        holds, facts = self.flat_beyond()
        return claim(holds, text, needs_cores=self.room.granted, room=self.room, **facts)


def _warm(executor, workers: int):
    from .timing import warm_up

    if isinstance(executor, Executor):  # a stand-in such as claims.sequential_executor has no workers
        warm_up(executor, workers)
    return executor


def process_sweep(task: Callable, items, counts=None, *, pool: Callable = ProcessPoolExecutor,
                  rounds: int = 2, budget: float = 8.0, check: Callable | None = None) -> Sweep:
    """Time ``task`` over ``items`` sequentially and on ``pool(n)`` for each ``n`` in ``counts``.

    ``counts`` defaults to :func:`sweep_counts` of the granted cores. Every pool is started and
    warmed up before any clock runs; rounds interleave (sequential, then each pool), the best time
    of each is kept, and a :class:`~futureslab.cores.LoadMeter` runs around every round. After
    ``rounds`` rounds it stops as soon as both claims hold and other programs left every granted
    core free (:func:`~futureslab.claims.quiet`), or when ``budget`` seconds have passed.
    ``check(results)`` may verify each run's results. Each count's best run also records the cores
    it kept busy (``sweep.cores_used``: CPU time of this process and its children / wall time).
    """
    from contextlib import ExitStack

    from .cores import BusyCores, LoadMeter, granted_cores

    check_callable("task", task)
    check_callable("pool", pool)
    items = list(items)
    if not items:
        raise ValueError("items must not be empty")
    if counts is None:
        counts = sweep_counts(granted_cores().cores)
    counts = tuple(check_int("counts", n, low=1) for n in counts)
    if 1 not in counts or len(counts) < 2:
        raise ValueError(f"counts must include 1 (the control) and at least one more, got {counts!r}")
    rounds = check_int("rounds", rounds, low=1)
    budget = check_number("budget", budget, low=0)
    sweep, load = Sweep(counts=counts), LoadMeter()
    t_start = time.perf_counter()
    with ExitStack() as stack:
        # an interrupt terminates the workers before each pool's shutdown waits for them
        pools = {n: _warm(stack.enter_context(stopping_workers(stack.enter_context(pool(n)))), n) for n in counts}
        for n_round in range(1, 1000):
            with load:  # other programs' load over every run, the sequential baseline included
                t0 = time.perf_counter()
                results = [task(x) for x in items]
                sweep.sequential = min(sweep.sequential, time.perf_counter() - t0)
                if check is not None:
                    check(results)
                for n, ex in pools.items():
                    with BusyCores() as busy:
                        results = list(ex.map(task, items))
                    seconds = busy.seconds
                    if check is not None:
                        check(results)
                    if seconds < sweep.times.get(n, float("inf")):
                        sweep.times[n] = seconds
                        sweep.cores_used[n] = busy.cores
            sweep.rounds = n_round
            sweep.room = Room.now(load)
            if n_round >= rounds and ((sweep.scales()[0] and sweep.flat_beyond()[0]
                                       and quiet(sweep.room, sweep.room.granted))
                                      or time.perf_counter() - t_start > budget):
                break
    return sweep


# ---------------------------------------------------------------------------------------- I/O race

@dataclass
class IORace:
    """What :func:`io_race` measured: best seconds and timelines, and the server's peak in flight."""

    workers: int
    times: dict = field(default_factory=dict)
    tracers: dict = field(default_factory=dict)
    peak: int = 0
    room: Room | None = None

    def speedup(self) -> float:
        return self.times["sequential"] / self.times["parallel"]

    def overlaps(self) -> tuple[bool, dict]:
        """Waiting needs no core: the pool must reach ``FLOOR * workers``, on any machine."""
        facts = {"speedup": self.speedup(), "bar": FLOOR * self.workers}
        return facts["speedup"] >= facts["bar"], facts

    def claim_overlaps(self, text: str) -> str:
        from .timing import fmt_speedup

        holds, facts = self.overlaps()
        # waiting needs no core, but each request's Python work needs some CPU inside the wait
        return claim(holds, text, needs_cores=1, room=self.room, show=f"{fmt_speedup(facts['speedup'])}, bar {fmt_speedup(facts['bar'])}",
                     **facts)

    def claim_peak(self, text: str, at_least: int) -> str:
        return claim(self.peak >= at_least, text, peak_in_flight=self.peak, bar=at_least)


def io_race(fetch: Callable, ids, *, pool: Callable = ThreadPoolExecutor, api=None, rounds: int = 2,
            check: Callable | None = None) -> IORace:
    """Run ``fetch`` over ``ids`` one after another and on ``pool(len(ids))``; best of ``rounds``.

    With ``api`` (a running :class:`~futureslab.server.LocalAPI`), ``race.peak`` is the most requests
    the server saw at once during the pool's runs.
    """
    from .trace import Tracer

    check_callable("fetch", fetch)
    check_callable("pool", pool)
    ids = list(ids)
    if not ids:
        raise ValueError("ids must not be empty")
    rounds = check_int("rounds", rounds, low=1)
    from .cores import LoadMeter

    race, load = IORace(workers=len(ids)), LoadMeter()
    for _ in range(rounds):
        for way in ("sequential", "parallel"):
            tracer = Tracer()
            try:
                traced = tracer.wrap(fetch)
                if way == "parallel" and api is not None:
                    api.reset_stats()
                with load:
                    t0 = time.perf_counter()
                    if way == "sequential":
                        results = [traced(i) for i in ids]
                    else:
                        with pool(len(ids)) as ex:
                            results = list(ex.map(traced, ids))
                    seconds = time.perf_counter() - t0
                race.room = Room.now(load)
                if way == "parallel" and api is not None:
                    race.peak = max(race.peak, api.stats()["peak_in_flight"])
                if check is not None:
                    check(results)
                records = tracer.records
            finally:
                tracer.close()
            if seconds < race.times.get(way, float("inf")):
                race.times[way] = seconds
                race.tracers[way] = records
    return race


# ------------------------------------------------------------------------------------ what it costs

def _time_to_first_result(make_pool) -> float:
    from .tasks import identity

    t0 = time.perf_counter()
    with make_pool() as ex:
        ex.submit(identity, 1).result(timeout=60)
        first = time.perf_counter() - t0
    return first


def start_up_times(methods=None, *, rounds: int = 3, thread_pool: Callable = ThreadPoolExecutor,
                   process_pool: Callable = ProcessPoolExecutor) -> dict:
    """Best time from creating a one-worker pool to its first result: ``{"threads": s, method: s}``.

    One entry per start method in ``methods`` (default: every one this platform offers). A thread
    start is so short that a busy moment easily doubles it: threads get ``3 * rounds`` tries.
    ``process_pool(max_workers=1, mp_context=ctx)`` makes each process pool.
    """
    check_callable("thread_pool", thread_pool)
    check_callable("process_pool", process_pool)
    rounds = check_int("rounds", rounds, low=1)
    available = multiprocessing.get_all_start_methods()
    # a fixed order (3.14+ lists the default method first, so the list's order varies by version)
    order = ["fork", "forkserver", "spawn"]
    available = sorted(available, key=lambda m: order.index(m) if m in order else len(order))
    methods = list(available if methods is None else methods)
    for m in methods:
        if m not in available:
            raise ValueError(f"methods must be among {available} on this platform, got {m!r}")
    times = {"threads": min(_time_to_first_result(lambda: thread_pool(max_workers=1))
                            for _ in range(3 * rounds))}
    for m in methods:
        ctx = multiprocessing.get_context(m)
        times[m] = min(_time_to_first_result(lambda: process_pool(max_workers=1, mp_context=ctx))
                       for _ in range(rounds))
    return times


class StartUps(NamedTuple):
    """What :func:`start_ups_measured` returns: the times, the room they were measured in, and how
    many measurements it took to find the machine quiet (``attempts`` when it never was)."""

    times: dict
    room: Room
    attempts: int


def start_ups_measured(methods=None, *, attempts: int = 3, **kwargs) -> StartUps:
    """:func:`start_up_times` measured inside a :class:`~futureslab.cores.LoadMeter`, for claims
    that compare those times (``kwargs`` go to :func:`start_up_times`).

    Other programs' load stretches the times unequally (a thread answers in microseconds, a spawned
    worker in a tenth of a second), so the claims need the whole machine: ``needs_cores=room.granted``.
    One measurement lasts under a second, and in so short a window a single burst of another
    program's work (or of the notebook client's) reads as a third of a core. So while the meter saw
    other programs take more than :data:`~futureslab.claims.SLACK` cores, this measures again, up to
    ``attempts`` times, and returns the last measurement with its room. Which attempt is kept
    depends only on the load, never on the times measured, so retrying cannot make a claim hold.
    """
    from .claims import measure_until
    from .cores import LoadMeter

    attempts = check_int("attempts", attempts, low=1)
    tries = []

    def once():
        load = LoadMeter()
        with load:
            times = start_up_times(methods, **kwargs)
        tries.append(1)
        return times, Room.now(load)

    times, room = measure_until(once, lambda measured: quiet(measured[1], measured[1].granted), attempts)
    return StartUps(times, room, len(tries))


def transfer_times(pool: Callable, size_mb: float = 16, rounds: int = 3) -> tuple[float, float]:
    """Best seconds to send ``size_mb`` MB to a worker of ``pool(1)`` (a small result back), and to
    get ``size_mb`` MB back from it (a small argument there). The worker is started first."""
    from .tasks import identity, make_payload, payload_size

    check_callable("pool", pool)
    size_mb = check_number("size_mb", size_mb, low=0.001, high=512)
    rounds = check_int("rounds", rounds, low=1)
    payload = make_payload(size_mb)
    there = back = float("inf")
    with pool(1) as ex:
        ex.submit(identity, 0).result()
        for _ in range(rounds):
            t0 = time.perf_counter()
            n = ex.submit(payload_size, payload).result()
            there = min(there, time.perf_counter() - t0)
            t0 = time.perf_counter()
            m = len(ex.submit(make_payload, size_mb).result())
            back = min(back, time.perf_counter() - t0)
            if n != len(payload) or m != len(payload):
                raise AssertionError(f"the pool lost data: sent {len(payload)} bytes, got {n} and {m}")
    return there, back


def tiny_tasks(pool: Callable, n: int = 2000, workers: int = 2) -> tuple[float, float]:
    """Seconds for ``n`` calls of ``square``: in a plain loop, and mapped on ``pool(workers)`` whose
    workers were started first (so only the per-task cost is timed, not the start-up)."""
    from .tasks import square

    check_callable("pool", pool)
    n = check_int("n", n, low=1)
    workers = check_int("workers", workers, low=1)
    numbers = list(range(n))
    t0 = time.perf_counter()
    expected = [square(x) for x in numbers]
    loop = time.perf_counter() - t0
    with pool(workers) as ex, stopping_workers(ex):
        _warm(ex, workers)
        t0 = time.perf_counter()
        got = list(ex.map(square, numbers))
        on_pool = time.perf_counter() - t0
    if got != expected:
        raise AssertionError("the pool returned wrong squares")
    return loop, on_pool
