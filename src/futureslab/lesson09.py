"""The plumbing behind notebook 09 · Newer Pythons and clusters, kept out of the lesson cells.

The notebook shows the few lines of each new API and a claim on what was measured; the feature
probes, the fresh interpreters, the reproducers and the Dask bookkeeping live here.

Version facts:

* :func:`features` — which of the 3.9–3.15 additions this Python has, read from its standard
  library (not from its version number); :func:`feature_table` prints them.
* :func:`fresh_python` — run code in a new interpreter of this Python, with a time limit.
* :func:`wait_until_running` — wait until a future's task has started; :func:`child_pids`.
* :func:`recycled_workers`, :func:`recycling_refuses_fork` — ``max_tasks_per_child`` (3.11).
* :func:`max_tasks_hang`, :func:`known_hang` — the ``max_tasks_per_child`` hang (gh-115634): does
  this Python hang, and is it a release known to hang or known to be fixed?
* :func:`threads_on_cpu` — pure-Python CPU work on two threads against a plain loop
  (:class:`ThreadsOnCPU`): no speed-up with the GIL, a real one without it.
* :func:`defaults_on_one_cpu` — the pools' default ``max_workers`` in a fresh Python pinned to one CPU.
* :func:`counted` — an iterator that counts what was taken from it (``map(buffersize=)``, 3.14).
* :func:`fresh_start_method`, :func:`failed_preload`, :func:`lazy_import_probe` — a fresh
  interpreter's default start method (forkserver from 3.14), forkserver preload errors (3.15), and
  the lazy imports of ``concurrent.futures`` (3.15).

Dask (needs ``distributed``):

* :func:`start_cluster` — a TLS-secured ``LocalCluster`` and its client (:class:`LabCluster`), with
  Dask's scratch files in a temporary folder that :meth:`LabCluster.close` deletes.
* :func:`stranger_attempts` — a client without the cluster's certificate tries to connect.
* :func:`primes_report` — one function written against the standard executor API.
* :func:`outcome` — ``"worked"`` or the exception a call raised.
* :func:`shutdown_nowait_on_dask`, :func:`running_keys` — what ``shutdown(wait=False)`` does to a
  running task on Dask's executor.
* :func:`nap`, :func:`flaky` — tasks for the as_completed and retries demos.
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import inspect
import multiprocessing
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ._validate import check_callable, check_int, check_number

__all__ = ["features", "feature_table", "fresh_python", "wait_until_running", "child_pids", "Recycled",
           "recycled_workers", "recycling_refuses_fork", "max_tasks_hang", "known_hang",
           "ThreadsOnCPU", "threads_on_cpu", "PinnedDefaults", "defaults_on_one_cpu", "Counted",
           "counted", "fresh_start_method", "failed_preload", "LazyProbe", "lazy_import_probe",
           "LabCluster", "start_cluster", "stranger_attempts", "primes_report", "outcome",
           "running_keys", "DaskShutdown", "shutdown_nowait_on_dask", "nap", "flaky",
           "THREADS_BAR"]

#: Two threads on pure-Python CPU work: with the GIL no faster than this (times the plain loop);
#: without it, at least this fast.
THREADS_BAR = 1.3


# ------------------------------------------------------------------------------------ version facts

def _parameters(fn) -> set:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def features() -> dict:
    """``{feature: ((major, minor) that added it, present in this Python?)}`` for the additions to
    ``concurrent.futures`` and around it from 3.9 to 3.15, each probed in the standard library
    (``hasattr``, ``inspect.signature``), never inferred from ``sys.version_info``."""
    return {
        "shutdown(cancel_futures=)": ((3, 9), "cancel_futures" in _parameters(cf.Executor.shutdown)),
        "max_tasks_per_child": ((3, 11), "max_tasks_per_child" in _parameters(ProcessPoolExecutor)),
        "TimeoutError alias": ((3, 11), cf.TimeoutError is TimeoutError),
        "sys._is_gil_enabled()": ((3, 13), hasattr(sys, "_is_gil_enabled")),
        "os.process_cpu_count()": ((3, 13), hasattr(os, "process_cpu_count")),
        "InterpreterPoolExecutor": ((3, 14), hasattr(cf, "InterpreterPoolExecutor")),
        "map(buffersize=)": ((3, 14), "buffersize" in _parameters(cf.Executor.map)),
        "terminate_workers()": ((3, 14), hasattr(ProcessPoolExecutor, "terminate_workers")),
        "kill_workers()": ((3, 14), hasattr(ProcessPoolExecutor, "kill_workers")),
        "forkserver preload on_error=": ((3, 15), "on_error" in _parameters(multiprocessing.set_forkserver_preload)),
    }


def feature_table(found: dict | None = None) -> str:
    """The rows of :func:`features` (or of ``found``, a dict shaped like it) as aligned text lines,
    headed by this Python's version and platform."""
    found = features() if found is None else found
    if not isinstance(found, dict):
        raise TypeError(f"found must be a dict like features() returns, got {found!r}")
    lines = [f"Python {sys.version.split()[0]} on {sys.platform}"]
    for name, entry in found.items():
        try:
            (major, minor), here = entry
        except (TypeError, ValueError):
            raise ValueError(f"found[{name!r}] must be ((major, minor), bool), got {entry!r}") from None
        lines.append(f"  {name:<30} since {major}.{minor:<3} {'yes' if here else 'no'}")
    return "\n".join(lines)


def fresh_python(code: str, timeout: float = 30) -> str:
    """Run ``code`` (dedented) in a new interpreter of this Python, with its own temporary folder;
    return what it printed, stripped. Raises :class:`RuntimeError` with its stderr if it fails, and
    :class:`subprocess.TimeoutExpired` (after killing it) if it runs longer than ``timeout`` s."""
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"code must be a non-empty string of Python, got {code!r}")
    timeout = check_number("timeout", timeout, low=0.1)
    with tempfile.TemporaryDirectory(prefix="futureslab-fresh-") as temp:  # its temporary files too
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": temp})
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:  # a timeout, or the learner interrupting the cell: never leave it behind
            proc.kill()
            proc.communicate()
            raise
    if proc.returncode != 0:
        raise RuntimeError(f"the fresh interpreter failed (exit code {proc.returncode}):\n{err[-1500:]}")
    return out.strip()


def wait_until_running(future, timeout: float = 10) -> None:
    """Return as soon as ``future`` is running or done; raise :class:`TimeoutError` after
    ``timeout`` seconds. (A process pool marks a task running when it is queued for a worker.)"""
    if not (hasattr(future, "running") and hasattr(future, "done")):
        raise TypeError(f"future must be a concurrent.futures.Future, got {future!r}")
    timeout = check_number("timeout", timeout, low=0)
    deadline = time.monotonic() + timeout
    while not (future.running() or future.done()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the task did not start within {timeout:g} s")
        time.sleep(0.001)


@dataclass
class Recycled:
    """What :func:`recycled_workers` saw: the worker pids of the tasks that finished in time."""

    tasks: int
    pids: list = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return len(self.pids) == self.tasks


def child_pids() -> set:
    """The process ids of this process's live ``multiprocessing`` children (pool workers included)."""
    return {p.pid for p in multiprocessing.active_children()}


def recycled_workers(tasks: int = 4, workers: int = 2, max_tasks_per_child: int = 1,
                     timeout: float = 8) -> Recycled | None:
    """Run ``tasks`` tasks on ``ProcessPoolExecutor(workers, mp_context=spawn,
    max_tasks_per_child=...)``, waiting at most ``timeout`` s (the pool may hang: see
    :func:`max_tasks_hang`); return the process ids that ran them. ``None`` before Python 3.11."""
    tasks = check_int("tasks", tasks, low=1)
    workers = check_int("workers", workers, low=1)
    max_tasks_per_child = check_int("max_tasks_per_child", max_tasks_per_child, low=1)
    timeout = check_number("timeout", timeout, low=0)
    if sys.version_info < (3, 11):
        return None
    from .tasks import whoami

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               max_tasks_per_child=max_tasks_per_child)
    jobs = [pool.submit(whoami) for _ in range(tasks)]
    done, not_done = cf.wait(jobs, timeout=timeout)
    pool.shutdown(wait=not not_done, cancel_futures=True)  # a hung pool is abandoned, not waited for
    return Recycled(tasks=tasks, pids=[f.result()[0] for f in jobs if f in done])


def recycling_refuses_fork() -> bool | None:
    """Does ``ProcessPoolExecutor(max_tasks_per_child=1, mp_context=fork)`` raise ``ValueError``?
    ``None`` where there is no fork or no ``max_tasks_per_child`` (before 3.11)."""
    if sys.version_info < (3, 11) or "fork" not in multiprocessing.get_all_start_methods():
        return None
    try:
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), max_tasks_per_child=1)
    except ValueError:
        return True
    pool.shutdown()
    return False


_REPRODUCER = """
    import multiprocessing, os
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=2) as pool:
        print(len({f.result() for f in [pool.submit(os.getpid) for _ in range(10)]}))
"""


def max_tasks_hang(timeout: float = 6) -> bool | None:
    """The reproducer of CPython gh-115634 in a fresh interpreter: one worker that retires after 2
    tasks, 10 tasks. True if it did not finish within ``timeout`` s (it is killed then), False if
    it finished; ``None`` before Python 3.11 (no ``max_tasks_per_child``)."""
    timeout = check_number("timeout", timeout, low=0.5)
    if sys.version_info < (3, 11):
        return None
    try:
        fresh_python(_REPRODUCER, timeout=timeout)
    except subprocess.TimeoutExpired:
        return True
    return False


def known_hang(version=None) -> bool | None:
    """Is ``version`` (default: this Python's ``sys.version_info``) a release known to hang on
    :func:`max_tasks_hang` (True), known to be fixed (False), or neither known (None)?

    Known to hang: every 3.11 and 3.12 release, 3.13.0–3.13.5, 3.14.0–3.14.3 (all released before
    the fix). Known fixed: 3.14.8 and later 3.14 releases, and 3.15 from 3.15.0b4."""
    v = tuple(sys.version_info if version is None else version)
    if len(v) < 3 or not all(isinstance(n, int) for n in v[:3]):
        raise ValueError(f"version must look like sys.version_info (major, minor, micro, ...), got {version!r}")
    if v[:2] < (3, 11):
        return None
    if v[:2] in ((3, 11), (3, 12)) or (3, 13, 0) <= v[:3] <= (3, 13, 5) or (3, 14, 0) <= v[:3] <= (3, 14, 3):
        return True
    if (3, 14, 8) <= v[:3] < (3, 15) or v[:2] > (3, 15):
        return False
    if v[:2] == (3, 15):
        level = v[3] if len(v) > 3 else "final"
        serial = v[4] if len(v) > 4 else 0
        order = {"alpha": 0, "beta": 1, "candidate": 2, "final": 3}
        if v[2] > 0 or order.get(level, 3) > 1 or (level == "beta" and serial >= 4):
            return False
    return None


@dataclass
class ThreadsOnCPU:
    """What :func:`threads_on_cpu` measured: the threads' speed-up over the plain loop, and the cores
    the threads' run kept busy (CPU time of this process and its children / wall time)."""

    speedup: float
    gil_enabled: bool
    room: object = None
    cores_used: float | None = None
    attempts: int = 1  # how many times threads_on_cpu measured

    def as_predicted(self) -> bool:
        """With the GIL: the threads kept at most one core's worth busy
        (:data:`~futureslab.claims.CONTROL_CORES_MAX`); the speed-up is shown, not judged, since the
        plain loop's speed swings with the virtual CPU it lands on (notebook 01). Without it: a
        speed-up of at least :data:`THREADS_BAR` on at least ``2 * BUSY`` cores."""
        from .claims import BUSY, CONTROL_CORES_MAX

        if self.cores_used is None:
            raise ValueError("cores_used was not measured: use threads_on_cpu(...)")
        if self.gil_enabled:
            return self.cores_used <= CONTROL_CORES_MAX
        return self.speedup >= THREADS_BAR and self.cores_used >= 2 * BUSY

    def needs_cores(self) -> float:
        """The cores the claim needs: every granted one with the GIL (an upper bound), else two."""
        if self.room is None:
            raise ValueError("room was not measured: use threads_on_cpu(...)")
        return self.room.granted if self.gil_enabled else 2

    def claim(self, text: str) -> str:
        """Judge :meth:`as_predicted` with three outcomes. With the GIL it is an upper bound, so it
        needs every granted core quiet; without the GIL it is a parallel claim and needs two cores."""
        from .claims import BUSY, CONTROL_CORES_MAX, claim
        from .timing import fmt_speedup

        bar = CONTROL_CORES_MAX if self.gil_enabled else 2 * BUSY
        return claim(self.as_predicted(), text, needs_cores=self.needs_cores(),
                     room=self.room, show=f"{self.cores_used:.2f} cores busy; {fmt_speedup(self.speedup)}",
                     speedup=self.speedup, cores_used=self.cores_used, cores_bar=bar)


def threads_on_cpu(ranges, *, pool: Callable = ThreadPoolExecutor, attempts: int = 3) -> ThreadsOnCPU:
    """Count primes in ``ranges`` (two of them, say) one after another, then on ``pool(2)`` (an
    executor factory: the tests pass a process pool), with the load of other programs measured
    around each run and the CPU time the pool's run used; repeat up to ``attempts`` times until the
    result is as this build predicts and other programs left the cores it needs free
    (:func:`~futureslab.claims.quiet`)."""
    from .claims import Room, measure_until, quiet
    from .cores import BusyCores, LoadMeter
    from .lesson01 import gil_enabled
    from .tasks import count_primes_in
    from .timing import speedup, stopwatch

    ranges = list(ranges)
    if len(ranges) < 2:
        raise ValueError(f"ranges must hold at least 2 ranges to share between 2 threads, got {len(ranges)}")
    check_callable("pool", pool)
    attempts = check_int("attempts", attempts, low=1)
    gil, tries = gil_enabled(), []

    def measure():
        tries.append(1)
        load = LoadMeter()  # this attempt's own: the room judged is the room of the run kept
        with load, stopwatch() as seq:
            expected = [count_primes_in(r) for r in ranges]
        with pool(2) as ex:
            list(ex.map(count_primes_in, [(0, 10)] * 4))  # its workers started before the clock
            with load, BusyCores() as par:
                got = list(ex.map(count_primes_in, ranges))
        if got != expected:
            raise AssertionError(f"the pool counted {got}, the loop {expected}")
        return ThreadsOnCPU(speedup(seq, par.seconds), gil, room=Room.now(load), cores_used=par.cores,
                            attempts=len(tries))

    return measure_until(measure, lambda r: r.as_predicted() and quiet(r.room, r.needs_cores()),
                         attempts=attempts)


@dataclass
class PinnedDefaults:
    """What a fresh Python pinned to one CPU reported (``process_cpu_count`` is None before 3.13)."""

    cpu_count: int
    process_cpu_count: int | None
    process_pool: int
    thread_pool: int


_PINNED = """
    import os, concurrent.futures as cf
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(os.cpu_count(), getattr(os, "process_cpu_count", lambda: None)(),
          cf.ProcessPoolExecutor()._max_workers, cf.ThreadPoolExecutor()._max_workers)
"""


def defaults_on_one_cpu() -> PinnedDefaults | None:
    """In a fresh interpreter pinned to one CPU (``os.sched_setaffinity``): ``os.cpu_count()``,
    ``os.process_cpu_count()`` and the pools' default ``max_workers`` (read from their private
    ``_max_workers``, only to check the documented default). ``None`` where the OS does not let a
    process choose its CPUs (macOS, Windows) or there is only one CPU."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return None
    values = [None if w == "None" else int(w) for w in fresh_python(_PINNED).split()]
    return PinnedDefaults(*values)


class Counted:
    """An iterator over ``iterable`` that counts, in ``taken``, how many items were taken from it."""

    def __init__(self, iterable):
        try:
            self._it = iter(iterable)
        except TypeError:
            raise TypeError(f"iterable must be iterable, got {iterable!r}") from None
        self.taken = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._it)
        self.taken += 1
        return item


def counted(iterable) -> Counted:
    """``Counted(iterable)``: how many items ``map`` pulled from its input shows in ``.taken``."""
    return Counted(iterable)


def fresh_start_method() -> tuple[str, str]:
    """``(default start method, first of get_all_start_methods())`` in a fresh interpreter of this
    Python (this kernel's may have been changed by ``futureslab.setup()``)."""
    method, first = fresh_python("import multiprocessing as mp; "
                                 "print(mp.get_start_method(), mp.get_all_start_methods()[0])").split()
    return method, first


_PRELOAD = """
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


def failed_preload() -> str | None:
    """In a fresh interpreter: ask the forkserver to preload a module that does not exist (with
    ``on_error="fail"`` where that exists, 3.15+), then run a task. Returns one line, starting
    ``"no on_error: the pool ran"`` (no such argument, the failure went unnoticed) or ``"the pool
    failed to start:"``; ``None`` where the platform has no forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    return fresh_python(_PRELOAD)


@dataclass
class LazyProbe:
    """What a fresh ``import concurrent.futures`` loaded, and what the executor's name held first."""

    loaded_at_import: bool
    placeholder: str
    loaded_after_use: bool


_LAZY = """
    import sys
    import concurrent.futures as cf
    before = "multiprocessing" in sys.modules
    placeholder = type(vars(cf).get("ProcessPoolExecutor")).__name__
    cf.ProcessPoolExecutor
    print(before, placeholder, "multiprocessing" in sys.modules)
"""


def lazy_import_probe() -> LazyProbe:
    """In a fresh interpreter: is ``multiprocessing`` loaded by ``import concurrent.futures``, what
    type does ``vars(concurrent.futures)["ProcessPoolExecutor"]`` hold before first use (``NoneType``
    when the module ``__getattr__`` provides it, ``lazy_import`` under PEP 810), and is
    ``multiprocessing`` loaded after touching ``ProcessPoolExecutor``?"""
    before, placeholder, after = fresh_python(_LAZY).split()
    return LazyProbe(before == "True", placeholder, after == "True")


# --------------------------------------------------------------------------------------------- Dask

@dataclass
class LabCluster:
    """A cluster from :func:`start_cluster`: its ``cluster``, a ``client`` that holds its certificate,
    and the temporary folder its scratch files go to. :meth:`close` stops all of them."""

    cluster: object
    client: object
    scratch: tempfile.TemporaryDirectory
    existed_before: frozenset = frozenset()
    attempts: int = 1  # clusters started until every worker stayed (see _workers_missing)
    _closed: bool = False

    def new_path(self, name: str) -> str:
        """A path in the scratch folder that does not exist yet (``name`` plus a number)."""
        if not isinstance(name, str) or not name or os.sep in name or (os.altsep and os.altsep in name):
            raise ValueError(f"name must be a plain file name, got {name!r}")
        for n in range(1, 100_000):
            path = os.path.join(self.scratch.name, f"{name}-{n}")
            if not os.path.exists(path):
                return path
        raise RuntimeError(f"no free name for {name!r} in {self.scratch.name}")

    def close(self) -> list:
        """Close the client and the cluster, delete the scratch folder; return the paths still left
        behind (the scratch folder, or a ``dask-scratch-space`` Dask made elsewhere): ``[]`` if none."""
        from .interrupts import interrupt_held

        if not self._closed:
            self._closed = True
            try:
                with interrupt_held():  # an interrupt waits: a half-closed cluster cannot be closed again
                    self.client.close()
                    self.cluster.close()
            finally:
                self.scratch.cleanup()
        return [p for p in (self.scratch.name, *_elsewhere()) if os.path.exists(p) and p not in self.existed_before]

    def __enter__(self) -> "LabCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _elsewhere() -> tuple:
    return (os.path.join(os.getcwd(), "dask-scratch-space"),
            os.path.join(tempfile.gettempdir(), "dask-scratch-space"))


def start_cluster(security, n_workers: int = 2, threads_per_worker: int = 1) -> LabCluster:
    """``LocalCluster(n_workers, threads_per_worker, processes=True, host="127.0.0.1",
    security=security, dashboard_address=None)`` and ``Client(cluster, security=security)``, with
    Dask's scratch space (and its lock files) in a new temporary folder, worker logs silenced (tasks
    fail on purpose in the lesson) and start-up warnings (a port in use) hidden. Returns once every
    worker is registered and running; a cluster that lost a worker as it started is closed and
    started again (up to :data:`START_ATTEMPTS` times, then ``RuntimeError``). A start still under
    way after :data:`START_TIMEOUT` s (a worker process stuck as it starts would keep Dask waiting
    for good) is ended: its processes are killed, the cluster closed, and ``RuntimeError`` says so.
    Interrupted, it closes
    what it started before raising ``KeyboardInterrupt`` (see :func:`~futureslab.interrupts.
    interrupt_held`): no port, thread or process of a half-started cluster is left behind.

    In a script, each worker is a new process that imports the script: called there (the script
    starts the cluster outside ``if __name__ == "__main__":``), it raises at once, and the script's
    own failed start names the unguarded line (instead of multiprocessing's "bootstrapping phase").

    ``security`` is a ``distributed.Security`` that requires TLS, e.g. ``Security.temporary()``."""
    import logging
    import warnings

    import dask
    from distributed import Client, LocalCluster, Security

    if not isinstance(security, Security) or not security.require_encryption:
        raise ValueError(f"security must be a distributed.Security that requires encryption "
                         f"(e.g. Security.temporary()), got {security!r}")
    n_workers = check_int("n_workers", n_workers, low=1, high=16)
    threads_per_worker = check_int("threads_per_worker", threads_per_worker, low=1, high=16)
    if _importing_main_in_a_child():
        raise RuntimeError(f"start_cluster was called while a new worker process imported the main script "
                           f"({_script_being_imported()}): {_MAIN_GUARD}")
    from distributed.deploy.spec import SpecCluster

    from .interrupts import interrupt_held

    existed = frozenset(p for p in _elsewhere() if os.path.exists(p))
    lost = []
    for attempt in range(1, START_ATTEMPTS + 1):
        scratch = tempfile.TemporaryDirectory(prefix="futureslab-dask-")
        cluster = client = None
        # An interrupt (or an error) inside LocalCluster(...) or Client(...) leaves no object to close,
        # while the half-started scheduler keeps its ports and threads: find them in Dask's registries.
        clusters_before, clients_before = set(SpecCluster._instances), set(Client._instances)
        children_before = _children()
        # A worker process that stops answering as it starts leaves the constructor waiting for it
        # for good (and the interpreter's exit after it): past START_TIMEOUT, the watchdog kills the
        # attempt's new processes that have not registered with the scheduler, so Dask sees those
        # workers die and the constructor ends. (A registered worker killed would be started again by
        # its nanny, which keeps the cluster from closing: seen on 3.14 and 3.15.)
        watchdog = _Watchdog(START_TIMEOUT, lambda: _kill(_unregistered(
            _children() - children_before, [c for c in set(SpecCluster._instances) if c not in clusters_before])))
        try:
            with warnings.catch_warnings(), dask.config.set({"temporary-directory": scratch.name}):
                warnings.simplefilter("ignore")
                # an interrupt waits until the constructors end: a half-built cluster cannot be closed
                with interrupt_held(), watchdog:  # the watchdog's thread inherits the held SIGINT's mask
                    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                           processes=True, host="127.0.0.1", security=security,
                                           dashboard_address=None, silence_logs=logging.CRITICAL,
                                           death_timeout=2 * START_TIMEOUT)  # Dask's own limit, a backstop
                    client = Client(cluster, security=security)
                if watchdog.fired:  # it ended as the watchdog killed its workers
                    raise TimeoutError(f"the cluster took more than {START_TIMEOUT:g} s to start")
                missing = _workers_missing(cluster, client, n_workers)
        except BaseException as exc:
            _close_quietly(client, cluster)
            for half in [c for c in set(Client._instances) if c not in clients_before]:
                _close_quietly(half, None)
            for half in [c for c in set(SpecCluster._instances) if c not in clusters_before]:
                _close_quietly(None, half)
            # Whatever stopped the start, none of its processes may outlive it. Killed only after
            # Dask's close: a nanny whose worker dies while it runs starts a new one.
            _kill(_children() - children_before)
            scratch.cleanup()
            unguarded = _unguarded_line() if isinstance(exc, Exception) else None
            if isinstance(exc, Exception) and (watchdog.fired or _timed_out(exc)):
                raise RuntimeError(f"a worker of the local Dask cluster did not start within {START_TIMEOUT:g} s "
                                   f"(lesson09.START_TIMEOUT), so its processes were stopped and the cluster "
                                   f"closed: the machine may be very busy; re-run the cell") from exc
            if unguarded:
                raise RuntimeError(f"the cluster's workers could not start ({type(exc).__name__}: {exc}): "
                                   f"{unguarded} starts it outside a main guard, and {_MAIN_GUARD}") from exc
            raise
        if not missing:
            return LabCluster(cluster, client, scratch, existed, attempts=attempt)
        lost.append(missing)
        _close_quietly(client, cluster)
        scratch.cleanup()
    raise RuntimeError(f"the local Dask cluster lost a worker as it started, {START_ATTEMPTS} times in a row "
                       f"({'; '.join(lost)}): re-run the cell; if it keeps failing, restart the kernel")


_MAIN_GUARD = ("each worker is a new process that imports the main script, so code at its top level "
               "runs again there and starts a cluster of its own: put the code that starts the cluster "
               "under `if __name__ == \"__main__\":`")


def _main_script() -> str:
    """The file the main module was run from (a script), or ``""`` (a notebook, IPython, the REPL, ``-c``)."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    ipython = sys.modules.get("IPython")
    if ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None:
        return ""  # a kernel's __main__ is the launcher's file, but the code runs in cells
    return path if isinstance(path, str) and path.endswith(".py") else ""


def _script_being_imported() -> str:
    """In a worker importing the main script: the script's file name (``"?"`` if not known)."""
    path = getattr(sys.modules.get("__mp_main__"), "__file__", None) or _main_script()
    return os.path.basename(path) if isinstance(path, str) and path else "?"


def _is_main_test(test, op=ast.Eq) -> bool:
    """``__name__ == "__main__"`` (either way round; ``op=ast.NotEq``: ``!=``), alone or within an ``and``."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) and op is ast.Eq:
        return any(_is_main_test(value) for value in test.values)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], op)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides)
            and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides))


def _unguarded_line() -> str:
    """``"script.py line N"`` if the main script's top-level code that is running now (line N, which
    called this, directly or through functions) is outside every ``if __name__ == "__main__":``
    block; ``""`` if it is inside one, or there is no script or no source to read."""
    path, main = _main_script(), sys.modules.get("__main__")
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)):
        frame = frame.f_back
    if not path or frame is None:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return ""
    line = frame.f_lineno
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        guarded = (node.body if _is_main_test(node.test)
                   else node.orelse if _is_main_test(node.test, ast.NotEq) else [])
        if guarded and guarded[0].lineno <= line <= (guarded[-1].end_lineno or line):
            return ""
    return f"{os.path.basename(path)} line {line}"


def _importing_main_in_a_child() -> bool:
    """True in a spawned (or forkserver) child while it imports the parent's main script. The script
    then runs as module ``__mp_main__`` (so a guarded ``if __name__ == "__main__":`` block is skipped),
    which becomes ``__main__`` only once it has run; multiprocessing marks the process as inheriting."""
    mp_main = sys.modules.get("__mp_main__")
    return ((mp_main is not None and mp_main is not sys.modules.get("__main__"))
            or bool(getattr(multiprocessing.process.current_process(), "_inheriting", False)))


#: Seconds :func:`start_cluster` gives the cluster to start; past them its processes are killed.
START_TIMEOUT = 60.0

#: How many times :func:`start_cluster` starts a cluster whose worker dropped out as it started.
START_ATTEMPTS = 5


def _workers_missing(cluster, client, n_workers: int, timeout: float = 15.0) -> str:
    """``""`` once the scheduler has ``n_workers`` workers and every nanny runs; else what is wrong.

    Measured on this course's test machine: a worker's TLS connection to the scheduler can close
    just after it registered ("worker-handle-scheduler-connection-broken"): the worker stops and its
    nanny closes gracefully, so it never comes back (Python 3.15: 8 of 45 starts and 4 of 20, 3.14: 1 of 20,
    3.11: 0 of 20, distributed 2026.8). A cluster short of a worker would break every demo that
    needs two, so :func:`start_cluster` starts a new one."""
    from distributed.core import Status

    alive = (Status.init, Status.starting, Status.running)
    deadline, seen_all = time.monotonic() + timeout, None
    while True:
        gone = [f"{name} ({w.status.name})" for name, w in cluster.workers.items()
                if getattr(w, "status", None) not in alive]
        if gone:
            return f"worker {', '.join(gone)} stopped"
        have = len(client.scheduler_info()["workers"])
        if have >= n_workers:
            seen_all = seen_all or time.monotonic()
            if time.monotonic() - seen_all >= 0.25:  # the drop follows registration within ~50 ms
                return ""
        else:
            seen_all = None
        if time.monotonic() > deadline:
            return f"{have} of {n_workers} workers registered after {timeout:g} s"
        time.sleep(0.05)


#: Seconds :func:`start_cluster` gives a client or cluster that failed to start to close (a clean
#: close takes about 0.2 s here). Measured: a cluster whose workers failed to start (a script without
#: ``if __name__ == "__main__":``, whose spawned workers re-run it) did not finish closing on 3.14 (4
#: runs of 4, stopped after 80 s or more) and at times on 3.15, so without a limit the error that
#: ended the start was never raised: the start hung.
CLOSE_TIMEOUT = 10.0


def _children() -> set:
    """This process's child processes (recursive), less multiprocessing's resource tracker and
    forkserver, which serve the interpreter for its whole life."""
    import psutil

    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue  # gone already
        if "resource_tracker" not in command and "forkserver" not in command:
            found.add(child)
    return found


def _kill(processes) -> None:
    """SIGKILL (on Windows, TerminateProcess) each of ``processes`` (``psutil.Process``) and wait
    (up to :data:`CLOSE_TIMEOUT` s) until each has ended. They are not reaped here: their parent's
    own ``multiprocessing`` objects read their exit codes."""
    import psutil

    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass
    deadline = time.monotonic() + CLOSE_TIMEOUT
    for process in processes:
        while time.monotonic() < deadline:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.Error:
                break  # gone
            time.sleep(0.05)


def _tear_down(cluster) -> None:
    """A half-started cluster that its own ``close()`` left unclosed: close its nannies and its
    scheduler one by one, then stop its event loop. Seen on 3.14 and 3.15: once a worker that never
    registered was killed, Dask's close stayed "closing" for good (its call to retire the workers
    failed on a closed connection), with the scheduler, a nanny and its worker still running."""
    from distributed.core import Status
    from distributed.deploy.spec import SpecCluster

    if not isinstance(cluster, SpecCluster) or getattr(cluster, "status", Status.closed) == Status.closed \
            or not hasattr(cluster, "scheduler"):  # a Client, closed already, or stopped before it had one
        return
    for part in {*getattr(cluster, "_created", ()), *getattr(cluster, "workers", {}).values(), cluster.scheduler}:
        try:
            cluster.sync(part.close, timeout=CLOSE_TIMEOUT)
        except Exception:
            pass  # closed already, or cannot be: its process is killed after this
    try:
        cluster._loop_runner.stop()
    except Exception:
        pass
    cluster.status = Status.closed


def _unregistered(processes: set, clusters) -> set:
    """Of ``processes`` (this attempt's new children), those whose pid no worker registered with the
    scheduler of ``clusters`` reported: the workers the start still waits for. All of them if every
    one registered (then the wait is elsewhere, and only ending the whole attempt ends it)."""
    registered = set()
    for cluster in clusters:
        for _ in range(3):  # the scheduler's event loop may change the dict meanwhile: read it again
            try:
                states = list(getattr(getattr(cluster, "scheduler", None), "workers", {}).values())
                break
            except RuntimeError:
                states = []
        registered.update(getattr(state, "pid", None) for state in states)
    stuck = {process for process in processes if process.pid not in registered}
    return stuck or set(processes)


class _Watchdog:
    """``with _Watchdog(seconds, action):`` calls ``action()`` (in a timer thread) if the block has
    not ended within ``seconds``; ``.fired`` says whether it did."""

    def __init__(self, seconds: float, action):
        self.fired = False

        def fire():
            self.fired = True
            action()
        self._timer = threading.Timer(seconds, fire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        self._timer.cancel()
        self._timer.join()  # an action under way finishes first
        return False


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from or while handling, is a time-out."""
    import asyncio

    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _close_quietly(client, cluster) -> None:
    """Close ``client``, then ``cluster`` (either may be ``None``), each within :data:`CLOSE_TIMEOUT`
    s, never raising; a cluster its own ``close()`` left unclosed is then torn down (:func:`_tear_down`)."""
    for part in (client, cluster):
        if part is not None:
            try:
                part.close(timeout=CLOSE_TIMEOUT)
            except Exception:  # a half-started cluster may fail to close cleanly, or in time: the
                pass           # caller raises the error that stopped it
    if cluster is not None:
        _tear_down(cluster)


_STRANGER = """
    from distributed import Client, Security
    address = {address!r}
    for target, security in [(address.replace("tls://", "tcp://"), None), (address, Security.temporary())]:
        try:
            with Client(target, security=security, timeout=10) as stranger:
                print("connected:", stranger.submit(sum, [1, 2], pure=False).result(timeout=20))
        except Exception as exc:
            print("refused:", type(exc).__name__)
"""


def stranger_attempts(address: str, timeout: float = 60) -> list:
    """From a fresh interpreter without this process's certificate, connect to ``address`` (a
    ``tls://`` scheduler address) over plain TCP and over TLS with a certificate of its own making,
    and run ``sum([1, 2])``. Returns one line per attempt: ``"refused: <exception>"`` or
    ``"connected: 3"``."""
    if not isinstance(address, str) or not address.startswith("tls://"):
        raise ValueError(f"address must be a tls:// scheduler address, got {address!r}")
    return fresh_python(_STRANGER.format(address=address), timeout=timeout).splitlines()


def primes_report(executor, ranges) -> tuple[int, int]:
    """Count the primes in ``ranges`` on ``executor`` with ``map``, then again with ``submit`` and
    ``concurrent.futures.as_completed``: only the standard executor API, so any executor runs it."""
    from .tasks import count_primes_in

    if not (hasattr(executor, "submit") and hasattr(executor, "map")):
        raise TypeError(f"executor must be a concurrent.futures.Executor, got {executor!r}")
    ranges = list(ranges)
    by_map = sum(executor.map(count_primes_in, ranges))
    futures = [executor.submit(count_primes_in, r) for r in ranges]
    by_completion = sum(f.result() for f in cf.as_completed(futures))
    return by_map, by_completion


def outcome(call: Callable, *args, **kwargs) -> str:
    """``"worked"`` if ``call(*args, **kwargs)`` returned, else ``"<ExceptionName>: <message>"``."""
    check_callable("call", call)
    try:
        call(*args, **kwargs)
        return "worked"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _executing(dask_worker) -> list:
    return [str(task.key) for task in dask_worker.state.executing]


def running_keys(client) -> list:
    """The keys of the tasks every worker of ``client``'s cluster is running right now."""
    if not hasattr(client, "run"):
        raise TypeError(f"client must be a distributed.Client, got {client!r}")
    return [key for keys in client.run(_executing).values() for key in keys]


@dataclass
class DaskShutdown:
    """What :func:`shutdown_nowait_on_dask` saw: was the running task's future cancelled, and was its
    code still running on a worker afterwards?"""

    cancelled: bool
    code_still_ran: bool


def shutdown_nowait_on_dask(client, seconds: float = 1.5) -> DaskShutdown:
    """Submit ``sleep_for(seconds)`` to ``client.get_executor(pure=False)``, wait until a worker runs
    it, call ``shutdown(wait=False)``, and look again at what the workers run. Before returning, waits
    (at most 10 s) for the worker to finish that code, so the next demo starts on idle workers."""
    from .tasks import sleep_for

    seconds = check_number("seconds", seconds, low=0.3, high=10)
    if not hasattr(client, "get_executor"):
        raise TypeError(f"client must be a distributed.Client, got {client!r}")
    executor = client.get_executor(pure=False)
    future = executor.submit(sleep_for, seconds)
    deadline = time.monotonic() + 10
    while not running_keys(client) and time.monotonic() < deadline:
        time.sleep(0.02)
    before = set(running_keys(client))
    executor.shutdown(wait=False)
    cf.wait([future], timeout=5)
    result = DaskShutdown(future.cancelled(), bool(before & set(running_keys(client))))
    while before & set(running_keys(client)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


def nap(seconds: float) -> tuple[float, float]:
    """Sleep ``seconds``; return ``(seconds, time.time() when it woke)``."""
    seconds = check_number("seconds", seconds, low=0, high=60)
    time.sleep(seconds)
    return seconds, time.time()


def flaky(counter_file: str, failures: int = 2) -> int:
    """Fail (``ConnectionError``) the first ``failures`` times it is called with ``counter_file``;
    then return the attempt number. The attempts are counted in that file, so the count survives
    between runs on any worker process of this machine."""
    if not isinstance(counter_file, (str, os.PathLike)):
        raise TypeError(f"counter_file must be a path, got {counter_file!r}")
    failures = check_int("failures", failures, low=0)
    with open(counter_file, "a+", encoding="ascii") as f:
        f.write("x")
        f.seek(0)
        attempt = len(f.read())
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt} failed")
    return attempt
