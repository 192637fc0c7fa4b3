"""Proving a lesson's claim on the machine that runs it, with three honest outcomes.

A notebook states a claim ("two processes counted the primes in parallel"), measures it, and calls
:func:`claim`. There are three outcomes, and only three:

* it **holds**: one line ``"✓ <claim>"`` (with the measured figure, in a format the tests mask);
* it **fails**: :class:`ClaimFailed`, with the measured numbers;
* it **cannot be shown right now**: the machine does not have what the claim needs at this moment —
  the operating system grants this process too few cores (``taskset``, a container's CPU quota), or
  other programs kept the cores busy while it was measured (then even numbers that pass prove
  nothing: under load the noise exceeds the bars' margins). One line says so, with that evidence
  and what to do. Never a ✓ that did not happen, and never a failure that is not the lesson's.

The yardstick for "right now" comes from outside the work being judged (:mod:`futureslab.cores`):
what the OS grants, and the CPU other programs used during the measurement. A speed-up of the pool
under test is never its own bar.

For parallel CPU work, :func:`cpu_race` measures a task sequentially, on a *control* that cannot
compute in parallel (threads under the GIL), and on the pool being taught, in interleaved rounds;
:func:`cpu_parallel` and :func:`overlap_parallel` are the bars it is judged by.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from ._validate import check_callable, check_int, check_number
from .interrupts import stopping_workers

__all__ = ["ClaimFailed", "Room", "claim", "measure_until", "quiet", "cpu_parallel", "overlap_parallel",
           "cpu_race", "Race", "sequential_executor", "slowed_cores", "HELD", "UNSHOWN"]

HELD, UNSHOWN = "held", "unshown"
#: A claim that needs N free cores is "cannot be shown" (rather than failed) when other programs
#: left fewer than N - SLACK of them free while it was measured.
SLACK = 0.3
#: The share of the ideal parallel speed-up, min(workers, granted cores), that processes must reach.
FLOOR = 0.6
#: How much faster than the no-parallelism control a parallel run must be.
MARGIN = 1.25
#: Mean slice length while overlapping, relative to the sequential mean slice, at most.
STRETCH = 1.75
#: Share of min(workers, granted cores) that the parallel run must keep busy (CPU time / wall time).
BUSY = 0.7
#: Most cores a control that cannot compute in parallel (threads under the GIL, one process) keeps
#: busy: measured 0.99-1.02 here; more means the control computed in parallel too.
CONTROL_CORES_MAX = 1.3

LOG_ENV = "FUTURESLAB_CLAIMS_LOG"


class Outcome(str):
    """``"held"`` or ``"unshown"``: a string that a notebook does not display as a cell's result."""

    def _ipython_display_(self) -> None:  # a cell ending in claim(...) shows only the claim's line
        pass


class ClaimFailed(AssertionError):
    """A lesson's claim did not hold on this machine, although the machine had what it needs."""


@dataclass(frozen=True)
class Room:
    """The cores a claim could use while it was measured: granted by the OS, minus other programs'."""

    granted: float
    other: float = 0.0
    detail: str = ""

    @property
    def free(self) -> float:
        return max(0.0, self.granted - self.other)

    def __str__(self) -> str:
        return (f"{self.detail or f'{self.granted:g} cores granted'}; other programs kept "
                f"{self.other:.2f} of them busy while it was measured")

    @classmethod
    def now(cls, load=None) -> "Room":
        """The room right now: :func:`~futureslab.cores.granted_cores`, and ``load.other`` of a
        :class:`~futureslab.cores.LoadMeter` that ran around the measurement (0 if None)."""
        from .cores import granted_cores

        grant = granted_cores()
        return cls(granted=grant.cores, other=0.0 if load is None else load.other, detail=str(grant))


def _log(text: str, outcome: str, needs, room, measured, excused: bool = False) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    entry = {"time": time.time(), "pid": os.getpid(), "text": text, "outcome": outcome, "needs": needs,
             "excuse": excused,
             "granted": None if room is None else room.granted,
             "other": None if room is None else round(room.other, 3),
             "measured": {k: (round(v, 4) if isinstance(v, float) else repr(v))
                          for k, v in measured.items()}}
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    except OSError:
        pass


def _details(measured: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v!r}"
                     for k, v in measured.items())


def claim(holds: bool, text: str, *, needs_cores: float | None = None, room: Room | None = None,
          show: str = "", excuse: str | None = None, **measured) -> str:
    """Judge a claim; print its line or raise :class:`ClaimFailed`. Returns ``"held"`` or ``"unshown"``.

    ``needs_cores=None``: the claim does not depend on free cores (an order, a count, waiting on I/O):
    ✓ or :class:`ClaimFailed`. ``needs_cores=N`` (with ``room``): the claim needs ``N`` cores of
    this machine, so it cannot be shown when the OS grants fewer, or when other programs left fewer
    than ``N - 0.3`` of them free while it was measured: never a ✓ then, even if the numbers happen
    to pass (under load, run-to-run noise can exceed the margins the bars rely on), and never a
    failure that is the machine's, not the lesson's.
    Upper bounds ("no faster than") need the whole machine quiet: pass ``needs_cores=room.granted``.
    ``show`` is appended to the ✓ line, e.g. the measured speed-up.
    ``excuse``: when the claim did not hold, why the machine (not the lesson) could not show it, from
    evidence the caller measured (e.g. :func:`slowed_cores`); it is then "cannot be shown" with that
    reason, logged with ``"excuse": true`` so that the test of logged claims checks its evidence.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty string that states the claim")
    if needs_cores is not None:
        needs_cores = check_number("needs_cores", needs_cores, low=0)
        if not isinstance(room, Room):
            raise TypeError(f"room must be a Room (e.g. Room.now(load)) when needs_cores is given, "
                            f"got {room!r}")
    why = None
    if needs_cores is not None and room.granted < needs_cores:
        why = (f"{room.detail or f'{room.granted:g} cores are granted'}, and this needs "
               f"{needs_cores:g}. Run it where the process may use {needs_cores:g} cores")
    elif needs_cores is not None and room.free < needs_cores - SLACK:
        why = (f"other programs kept {room.other:.2f} of the {room.granted:g} cores busy while it "
               f"was measured, leaving {room.free:.2f} free, and this needs {needs_cores:g}. "
               f"Close other programs and re-run the cell that measures it")
    if why is None and not holds and excuse:
        if not isinstance(excuse, str):
            raise TypeError(f"excuse must be a string that says why the machine could not show it, got {excuse!r}")
        why = excuse
    if why is not None:
        details = _details(measured)
        print(f"\u26a0 {text} \u2014 cannot be shown right now: {why}"
              + (f" (measured: {details})" if details else "") + ".")
        _log(text, UNSHOWN, needs_cores, room, measured, excused=why == excuse)
        return Outcome(UNSHOWN)
    if holds:
        print(f"\u2713 {text}" + (f" ({show})" if show else ""))
        _log(text, HELD, needs_cores, room, measured)
        return Outcome(HELD)
    _log(text, "failed", needs_cores, room, measured)
    details = _details(measured)
    raise ClaimFailed(f"This claim did not hold on this machine: {text}"
                      + (f" (measured: {details})" if details else "")
                      + (f"; {room}" if room is not None else "") + ".")


def measure_until(measure: Callable[[], object], holds: Callable[[object], bool],
                  attempts: int = 3):
    """Call ``measure()`` up to ``attempts`` times, stopping at the first result for which
    ``holds(result)`` is true; return that result, or the last one (for :func:`claim` to report).

    The bar is ``holds``; pass one that does not depend on the measurement it judges."""
    check_callable("measure", measure)
    check_callable("holds", holds)
    attempts = check_int("attempts", attempts, low=1)
    result = None
    for _ in range(attempts):
        result = measure()
        if holds(result):
            return result
    return result


def quiet(room: Room, needs_cores: float) -> bool:
    """Whether other programs left ``room`` enough free cores for a claim that needs ``needs_cores``
    (the test :func:`claim` applies), or whether measuring again could not help (fewer cores granted).

    The measuring helpers measure again, within their budget, while this is false: in a window of
    half a second one burst of another program reads as a third of a core, and passes. Which run is
    kept then depends on the load only, never on whether the claim holds."""
    if not isinstance(room, Room):
        raise TypeError(f"room must be a Room (e.g. Room.now(load)), got {room!r}")
    needs_cores = check_number("needs_cores", needs_cores, low=0)
    return room.granted < needs_cores or room.free >= needs_cores - SLACK


def slowed_cores(pairs, control: tuple | None = None) -> str | None:
    """Why a speed bar can fail although the workers did compute in parallel, or ``None``.

    ``pairs``: ``(cores_used, cores_bar)`` for each parallel run judged. When every run kept at least
    its bar of cores busy (CPU time / wall time: what a wrong mechanism - threads under the GIL, one
    shared CPU, no parallelism - cannot do), a speed-up or stretch that still fell short means each
    core ran slower while the others were busy: virtual CPUs that share a physical core, a clock that
    drops under load, a neighbour on the same host. The lesson's mechanism worked; its speed could
    not be shown. ``control``: ``(cores_used, most)`` of the run that must not compute in parallel;
    when it kept more than ``most`` cores busy the control was no control (e.g. threads on work that
    releases the GIL), and there is no excuse. Returns the reason, for :func:`claim`'s ``excuse``."""
    pairs = [(check_number("cores_used", used, low=0), check_number("cores_bar", bar, low=0))
             for used, bar in pairs]
    if not pairs or any(used < bar for used, bar in pairs):
        return None
    if control is not None and check_number("control cores_used", control[0], low=0) > control[1]:
        return None
    kept = " and ".join(f"{used:.2f}" for used, _ in pairs)
    return (f"the workers kept {kept} cores busy (bar {max(b for _, b in pairs):.2f}), so they did compute in "
            f"parallel, yet ran slower per core than one task alone: this machine's CPUs slowed each other "
            f"down while all were busy (virtual CPUs sharing a physical core, or a clock that drops under "
            f"load). Re-run the cell; on a laptop, plug it in")


def cpu_parallel(sequential_s: float, parallel_s: float, control_s: float, workers: int,
                 granted: float, cores_used: float | None = None) -> tuple[bool, dict]:
    """The bar for "the pool computed pure-Python work in parallel".

    Holds when the speed-up over the sequential run reaches ``0.6 * min(workers, granted)`` *and*
    the parallel run is at least 1.25x faster than the control (the same work, in the same
    measuring rounds, on something that cannot compute in parallel: threads under the GIL), *and*,
    when ``cores_used`` (CPU time of this process tree / wall time of the parallel run) is given,
    it kept at least ``BUSY * min(workers, granted)`` cores busy. Speed ratios swing with the virtual
    CPU each run lands on (a Python 3.15 run here gave threads 1.26x over the loop and 1.32x over
    other threads); CPU time does not: threads under the GIL, one shared CPU or no parallelism keep
    one core busy, processes on two cores 1.6-2.0.
    """
    seq = check_number("sequential_s", sequential_s, low=0)
    par = check_number("parallel_s", parallel_s, low=1e-9)
    ctl = check_number("control_s", control_s, low=1e-9)
    workers = check_int("workers", workers, low=1)
    granted = check_number("granted", granted, low=0)
    ideal = float(min(workers, granted))
    facts = {"speedup": seq / par, "bar": FLOOR * ideal, "vs_control": ctl / par,
             "control_bar": MARGIN}
    holds = ideal >= 2 - 1e-9 and facts["speedup"] >= facts["bar"] and facts["vs_control"] >= MARGIN
    if cores_used is not None:
        facts.update(cores_used=check_number("cores_used", cores_used, low=0), cores_bar=BUSY * ideal)
        holds = holds and cores_used >= BUSY * ideal
    return holds, facts


def overlap_parallel(tracer, sequential_tracer, cores_used: float | None = None) -> tuple[bool, dict]:
    """Did different worker *processes* compute at the same time, at full speed?

    Overlapping bars alone prove nothing (threads under the GIL and one shared core overlap too,
    with each slice stretched). So this needs at least two distinct process ids among the workers,
    two tasks running at once, and a mean slice length at most 1.75x the sequential one (two virtual
    CPUs that share one physical core, hyperthreads, stretched slices 1.4-1.6x on the 2-vCPU machines
    the course is tested on; sharing one CPU or the GIL, 2x or more). With ``cores_used`` (CPU time
    / wall time of the parallel run), it must also be at least ``2 * BUSY``: the stretch leans on the
    sequential run's speed, which swings with the virtual CPU it lands on; CPU time does not.
    """
    recs, seq = list(tracer.records), list(sequential_tracer.records)
    if not recs or not seq:
        raise ValueError("both tracers must hold records: run the work with tracer.wrap(task) first")
    pids = {r.pid for r in recs}
    stretch = (sum(r.duration for r in recs) / len(recs)) / (sum(r.duration for r in seq) / len(seq))
    facts = {"processes": len(pids), "at_once": tracer.max_concurrency(), "stretch": stretch,
             "stretch_bar": STRETCH}
    holds = len(pids) >= 2 and facts["at_once"] >= 2 and stretch <= STRETCH
    if cores_used is not None:  # two processes at once on one shared CPU keep one core busy
        facts.update(cores_used=check_number("cores_used", cores_used, low=0), cores_bar=2 * BUSY)
        holds = holds and cores_used >= 2 * BUSY
    return holds, facts


class _SequentialExecutor:
    """An executor that runs each task at once in the calling thread (no parallelism at all)."""

    def __init__(self, max_workers=None, **_):
        from concurrent.futures import Executor

        self._base = Executor

    def submit(self, fn, /, *args, **kwargs):
        from concurrent.futures import Future

        f = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - delivered through the future, like a pool
            f.set_exception(e)
        return f

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        return [fn(*args) for args in zip(*iterables)]

    def shutdown(self, wait=True, *, cancel_futures=False):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


def sequential_executor(max_workers=None, **kwargs):
    """A stand-in executor with no parallelism (for tests that feed a claim the wrong mechanism)."""
    return _SequentialExecutor(max_workers, **kwargs)


@dataclass
class Race:
    """What :func:`cpu_race` measured: the best time of each way, its timeline, and the room."""

    workers: int
    times: dict = field(default_factory=dict)       # way -> best seconds
    tracers: dict = field(default_factory=dict)     # way -> Tracer of its best run
    rounds: int = 0
    room: Room | None = None
    pids: dict = field(default_factory=dict)        # way -> distinct worker pids seen
    cores_used: dict = field(default_factory=dict)  # way -> CPU seconds of this process tree / wall
                                                    # seconds, in its best run: cores kept busy

    def speedup(self, way: str) -> float:
        return self.times["sequential"] / self.times[way]

    def parallel(self) -> tuple[bool, dict]:
        """:func:`cpu_parallel` on the best runs."""
        return cpu_parallel(self.times["sequential"], self.times["parallel"], self.times["control"],
                            self.workers, self.room.granted, self.cores_used.get("parallel"))

    def overlap(self) -> tuple[bool, dict]:
        """:func:`overlap_parallel` on the best runs' timelines."""
        return overlap_parallel(self.tracers["parallel"], self.tracers["sequential"],
                                self.cores_used.get("parallel"))

    def settled(self) -> bool:
        """Both bars hold on the best runs so far (overlap only where the pool has worker processes).

        :func:`cpu_race` measures more rounds, within its budget, until this is true: noise (another
        program's burst, a migrated vCPU) passes, a wrong mechanism fails every round."""
        if not self.parallel()[0]:
            return False
        return len(self.pids.get("parallel", ())) < 2 or self.overlap()[0]

    def claim_parallel(self, text: str) -> str:
        """Judge "the pool computed in parallel" (speed-up floor and control margin) with three outcomes."""
        from .timing import fmt_speedup

        holds, facts = self.parallel()
        excuse = None
        if "cores_used" in facts and "control" in self.cores_used and min(self.workers, self.room.granted) >= 2:
            excuse = slowed_cores([(facts["cores_used"], facts["cores_bar"])],
                                  control=(self.cores_used["control"], CONTROL_CORES_MAX))
            facts["control_cores"] = self.cores_used["control"]
        return claim(holds, text, needs_cores=2, room=self.room, excuse=excuse,
                     show=f"{fmt_speedup(facts['speedup'])}, bar {fmt_speedup(facts['bar'])}; "
                          f"{fmt_speedup(facts['vs_control'])} the control's speed",
                     **facts)

    def claim_overlap(self, text: str) -> str:
        """Judge "worker processes computed at the same time, at full speed" with three outcomes."""
        holds, facts = self.overlap()
        excuse = None
        if "cores_used" in facts and facts["processes"] >= 2 and facts["at_once"] >= 2:
            excuse = slowed_cores([(facts["cores_used"], facts["cores_bar"])])
        return claim(holds, text, needs_cores=2, room=self.room, excuse=excuse, **facts)


def cpu_race(task: Callable, items, workers: int = 2, *, pool=None, control=None, rounds: int = 2,
             budget: float = 6.0, check: Callable | None = None) -> Race:
    """Run ``task`` over ``items`` three ways and keep the best run of each, in interleaved rounds.

    * ``"sequential"``: a plain loop in this process;
    * ``"control"``: on ``control(workers)`` (default: a ``ThreadPoolExecutor``, which cannot compute
      pure-Python work in parallel under the GIL; on a free-threaded build, where threads can, an
      executor that runs each task in the calling thread) — same work, same rounds, no parallelism;
    * ``"parallel"``: on ``pool(workers)`` (default: a ``ProcessPoolExecutor``), its workers started
      before any clock runs.

    A :class:`~futureslab.cores.LoadMeter` runs around every measured run, so ``race.room`` says how
    many cores were granted and how busy other programs kept them. After ``rounds`` rounds, it stops
    as soon as :meth:`Race.settled` (the speed-up and overlap bars hold) and other programs left the
    two cores the claims need (:func:`quiet`), or ``budget`` seconds have passed. ``check(results)`` may verify each run's results (raise if wrong). ``pool``/``control`` are executor factories: the
    tests pass the wrong ones (threads, workers pinned to one CPU, a sequential executor) to show
    the claims then fail or say they cannot be shown.
    """
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    from .cores import BusyCores, LoadMeter
    from .timing import warm_up
    from .trace import Tracer

    check_callable("task", task)
    items = list(items)
    if not items:
        raise ValueError("items must not be empty")
    workers = check_int("workers", workers, low=1)
    rounds = check_int("rounds", rounds, low=1)
    budget = check_number("budget", budget, low=0)
    pool = ProcessPoolExecutor if pool is None else pool
    if control is None:  # threads cannot compute pure Python in parallel - unless there is no GIL
        gil = getattr(sys, "_is_gil_enabled", lambda: True)()
        control = ThreadPoolExecutor if gil else sequential_executor
    check_callable("pool", pool)
    check_callable("control", control)
    race, load = Race(workers=workers), LoadMeter()
    t_start = time.perf_counter()

    def run(way, executor):
        tracer = Tracer()
        traced = tracer.wrap(task)
        try:
            with BusyCores() as busy:
                results = [traced(x) for x in items] if executor is None else list(executor.map(traced, items))
            seconds = busy.seconds
            if check is not None:
                check(results)
            records = tracer.records
        finally:
            tracer.close()
        if way not in race.times or seconds < race.times[way]:
            race.times[way] = seconds
            race.tracers[way] = _Frozen(records)
            race.cores_used[way] = busy.cores
        race.pids.setdefault(way, set()).update(r.pid for r in records)

    with control(workers) as ctl, stopping_workers(ctl), pool(workers) as par, stopping_workers(par):
        for ex in (ctl, par):
            if not isinstance(ex, _SequentialExecutor):
                warm_up(ex, workers)
        for n in range(1, 1000):
            with load:  # other programs' load over every way's runs, not just the parallel ones
                run("sequential", None)
                run("control", ctl)
                run("parallel", par)
            race.rounds = n
            race.room = Room.now(load)
            if n >= rounds and ((race.settled() and quiet(race.room, 2))
                                or time.perf_counter() - t_start > budget):
                break
    return race


class _Frozen:
    """The records of one traced run, with the parts of a Tracer a lesson reads and plots."""

    def __init__(self, records):
        self.records = list(records)

    @property
    def workers(self):
        from .trace import _worker_order

        return sorted({r.worker for r in self.records}, key=_worker_order)

    def max_concurrency(self) -> int:
        from .trace import max_concurrency

        return max_concurrency(self.records)

    def plot(self, ax=None, title=None, **kwargs):
        from .trace import plot_timeline

        return plot_timeline(self.records, ax=ax, title=title, **kwargs)
