"""The plumbing behind notebooks 05a and 05b (pitfalls), kept out of the lesson cells.

* :func:`fmt_us` (from :mod:`futureslab.timing`, re-exported here) prints a sub-millisecond
  duration in microseconds (``"12.3 µs"``), the one format the test suite masks for such durations.
* :func:`run_in_fresh_pool` runs one call in a new one-worker process pool with a chosen start
  method and returns the result *or* the exception, so a cell can show what went wrong.
* :func:`worker_last_words` shows what a worker process writes on its standard error as it dies:
  it runs a fresh Python in a subprocess, whose ``__main__`` defines a function as a notebook cell
  does, and captures that subprocess's standard error. Nothing in the notebook's own process is
  redirected, so its forkserver and resource tracker (started on first use, and inheriting the
  kernel's standard error from then on) keep reporting where the learner can see it.
* :func:`workers_per_core` times the same CPU work on one and on two worker processes per core,
  with the load other programs put on the machine meanwhile (for an upper-bound claim).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

from ._validate import check_callable, check_int, check_number
from .interrupts import stopping_workers, terminate_workers as _terminate_workers
from .timing import fmt_us

__all__ = ["fmt_us", "run_in_fresh_pool", "WorkerDeath", "worker_last_words", "workers_per_core"]


def run_in_fresh_pool(method: str, fn, *args, timeout: float = 30.0):
    """Run ``fn(*args)`` in a new one-worker ``ProcessPoolExecutor`` started with ``method``.

    Returns the result, or the exception the call raised (``BrokenProcessPool`` when the worker died,
    ``TimeoutError`` when it ran past ``timeout`` s: the worker is then terminated, so the call
    returns after about ``timeout`` s however long the task would run). The pool is shut down
    before returning, so no worker is left running.
    """
    from concurrent.futures import TimeoutError as FuturesTimeout
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    if method not in mp.get_all_start_methods():
        raise ValueError(f"method must be one of {mp.get_all_start_methods()} on this platform, got {method!r}")
    check_callable("fn", fn)
    timeout = check_number("timeout", timeout, low=0.1)
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context(method)) as pool:
        try:
            outcome = pool.submit(fn, *args).result(timeout=timeout)
        except FuturesTimeout as exc:  # stop the worker: leaving the `with` would wait for the task
            outcome = exc
            _terminate_workers(pool)
        except Exception as exc:  # shown to the learner, not handled
            outcome = exc
    if isinstance(outcome, Exception):
        time.sleep(0.2)  # a dying worker's last words reach the notebook through the kernel: let them land here
    return outcome


# A fresh Python whose __main__ defines `cube` in its own code, as a notebook cell does: like a
# notebook, `python -c` has no file a worker could import to find it again.
_SCRIPT = r'''
import sys
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor


def cube(n):
    return n ** 3


if __name__ == "__main__":
    method, timeout = sys.argv[1], float(sys.argv[2])
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context(method)) as pool:
        try:
            print(pool.submit(cube, 3).result(timeout=timeout))
        except Exception as exc:
            print(type(exc).__name__)
'''


@dataclass(frozen=True)
class WorkerDeath:
    """What :func:`worker_last_words` saw: the outcome in the parent and the worker's stderr."""

    method: str
    outcome: str        #: what ``result()`` gave the parent: ``"27"`` or an exception's name
    cause: str | None   #: the last ``SomethingError: ...`` line the dying worker wrote, if any
    stderr: str         #: everything the subprocess and its workers wrote on standard error


def worker_last_words(method: str, timeout: float = 60.0) -> WorkerDeath:
    """Send a function defined in ``__main__`` to a process pool started with ``method``, in a fresh
    Python (a subprocess), and capture what its dying worker writes on standard error.

    Under fork the worker is a copy of ``__main__`` and finds the function (outcome ``"27"``); under
    spawn and forkserver it cannot, and the cause appears only on the worker's standard error.
    """
    import multiprocessing as mp

    if method not in mp.get_all_start_methods():
        raise ValueError(f"method must be one of {mp.get_all_start_methods()} on this platform, got {method!r}")
    timeout = check_number("timeout", timeout, low=1)
    env = dict(os.environ)
    env.pop("FUTURESLAB_START_METHOD", None)  # the script chooses its start method itself
    done = subprocess.run([sys.executable, "-c", _SCRIPT, method, str(timeout / 2)], capture_output=True,
                          text=True, timeout=timeout, env=env)
    errors = [line for line in done.stderr.splitlines() if line[:1].isupper() and "Error: " in line]
    outcome = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else f"exit code {done.returncode}"
    return WorkerDeath(method, outcome, errors[-1] if errors else None, done.stderr)


def workers_per_core(fn, items, cores: int, rounds: int = 3, extra_rounds: int = 3):
    """Time ``pool.map(fn, items)`` on two warmed-up process pools, one with ``cores`` workers and
    one with ``2 * cores``, in interleaved rounds (both see the same moments of the machine). After
    ``rounds`` rounds, while other programs kept the cores busy (the claim on it is an upper bound
    that needs every granted core: :func:`~futureslab.claims.quiet`), up to ``extra_rounds`` more.

    Returns ``({workers: best seconds}, room)``, where ``room`` is a :class:`~futureslab.claims.Room`
    with the cores the OS grants and the load other programs put on them while the pools ran.
    Pool start-up is not timed: it is a cost of its own, paid once per pool.
    """
    from concurrent.futures import ProcessPoolExecutor

    from .claims import Room, quiet
    from .cores import LoadMeter
    from .timing import warm_up

    check_callable("fn", fn)
    items = list(items)
    if not items:
        raise ValueError("items must not be empty")
    cores = check_int("cores", cores, low=1)
    rounds = check_int("rounds", rounds, low=1)
    extra_rounds = check_int("extra_rounds", extra_rounds, low=0)
    load, best = LoadMeter(), {cores: float("inf"), 2 * cores: float("inf")}
    with (ProcessPoolExecutor(cores) as one, stopping_workers(one),
          ProcessPoolExecutor(2 * cores) as two, stopping_workers(two)):
        warm_up(one, cores)
        warm_up(two, 2 * cores)
        for n in range(1, rounds + extra_rounds + 1):
            for workers, pool in ((cores, one), (2 * cores, two)):
                with load:
                    t0 = time.perf_counter()
                    list(pool.map(fn, items))
                    best[workers] = min(best[workers], time.perf_counter() - t0)
            room = Room.now(load)
            if n >= rounds and quiet(room, room.granted):
                break
    return best, room
