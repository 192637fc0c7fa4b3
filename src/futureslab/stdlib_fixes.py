"""A known deadlock in some Pythons' ``ProcessPoolExecutor``, found in the code and fixed in-process.

CPython bug **gh-125451**: a process pool that fails to pickle a task (a lambda sent to it: notebook
01's own pitfall) can deadlock as it shuts down. The pool's queue-feeder thread, handling the
pickling error, waits for the pool's ``shutdown_lock``, while the pool's manager thread holds that
lock and waits for the feeder thread to end. The pool, the ``with`` block around it and, at exit,
the interpreter itself then wait forever; no time-out of the learner's reaches inside.

Upstream fixed it in the 3.12 and 3.13 branches on 16 October 2024 (python/cpython#125598 and
#125599): the wake-up pipe got a lock of its own and the feeder stopped taking ``shutdown_lock``.
Which Pythons have the bug is read from the code of this Python's ``concurrent.futures.process``,
not from its version number (a distribution may patch its own build): the feeder's error handler
takes ``shutdown_lock``, and the manager thread joins the feeder while holding it (3.12's new
``_join_executor_internals``). 3.10 and 3.11 take the lock too but join the feeder outside it, so
they cannot deadlock this way. Here: 3.12.1 and 3.13.0 have it; 3.10.13, 3.11.7, 3.14.8 and 3.15.0
do not (``tests/test_stdlib_fixes.py`` forces the race on each of them).

:func:`fix_gh125451` makes the same two changes in the running process, only where the bug is
found; :func:`futureslab.setup` (every notebook's first line) and the exercise checkers call it. The
doctor says when it applies. A program outside the course keeps the bug: upgrade the Python.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from dataclasses import dataclass
from traceback import format_exception

GH125451 = "gh-125451"
GH125451_URL = "https://github.com/python/cpython/issues/125451"

_fixed = False
_apply_lock = threading.Lock()
_ORIGINAL: dict = {}  # the standard library's own functions, while the fix is in place


def _process_module():
    from concurrent.futures import process

    return process


def stdlib_has_gh125451() -> bool:
    """Whether this Python's standard library has gh-125451 (whether or not it is fixed in-process).

    Read from the code: the original queue-feeder error handler refers to ``shutdown_lock``, and the
    manager thread calls ``_join_executor_internals`` (which joins the feeder) under that lock.
    """
    process = _process_module()
    try:
        handler = _ORIGINAL.get("handler") or process._SafeQueue._on_queue_feeder_error
        join = process._ExecutorManagerThread.join_executor_internals
        return ("shutdown_lock" in handler.__code__.co_names
                and "_join_executor_internals" in join.__code__.co_names)
    except AttributeError:  # a Python whose pool is built otherwise (renamed, or not in Python code)
        return False


def gh125451_fixed_here() -> bool:
    """Whether :func:`fix_gh125451` has fixed the bug in this process."""
    return _fixed


def has_gh125451() -> bool:
    """Whether a process pool in this process can still meet gh-125451 (the bug, not fixed here)."""
    return stdlib_has_gh125451() and not _fixed


def _wakeup_lock(wakeup) -> threading.Lock:
    # the upstream fix gives each wake-up pipe its own lock; pipes made before the fix get theirs here
    lock = wakeup.__dict__.get("_lock")
    if lock is None:
        lock = wakeup.__dict__.setdefault("_lock", threading.Lock())
    return lock


def _wakeup_close(self) -> None:
    with _wakeup_lock(self):
        if not self._closed:
            self._closed = True
            self._writer.close()
            self._reader.close()


def _wakeup_wakeup(self) -> None:
    with _wakeup_lock(self):
        if not self._closed:
            self._writer.send_bytes(b"")


def _feeder_error(self, e, obj) -> None:
    """The queue feeder's pickling-error handler, without ``shutdown_lock`` (the wake-up pipe now
    guards itself): fail the task's future with the error, and wake the manager thread."""
    process = _process_module()
    if not isinstance(obj, process._CallItem):
        return super(process._SafeQueue, self)._on_queue_feeder_error(e, obj)
    text = "".join(format_exception(type(e), e, e.__traceback__))
    e.__cause__ = process._RemoteTraceback(f'\n"""\n{text}"""')
    work_item = self.pending_work_items.pop(obj.work_id, None)
    self.thread_wakeup.wakeup()
    if work_item is not None:  # None when a worker died and the manager already failed every item
        work_item.future.set_exception(e)


def fix_gh125451() -> bool:
    """Fix gh-125451 in this process if its standard library has it; return whether it is fixed here.

    Idempotent and thread-safe. On a Python without the bug it changes nothing and returns False.
    """
    global _fixed
    with _apply_lock:
        if _fixed:
            return True
        if not stdlib_has_gh125451():
            return False
        process = _process_module()
        _ORIGINAL.update(handler=process._SafeQueue._on_queue_feeder_error,
                         close=process._ThreadWakeup.close, wakeup=process._ThreadWakeup.wakeup)
        process._ThreadWakeup.close = _wakeup_close
        process._ThreadWakeup.wakeup = _wakeup_wakeup
        process._SafeQueue._on_queue_feeder_error = _feeder_error
        _fixed = True
        return True


def undo_fix_gh125451() -> None:
    """Put the standard library's own code back (for a demonstration or a test of the bug)."""
    global _fixed
    with _apply_lock:
        if not _fixed:
            return
        process = _process_module()
        process._SafeQueue._on_queue_feeder_error = _ORIGINAL["handler"]
        process._ThreadWakeup.close = _ORIGINAL["close"]
        process._ThreadWakeup.wakeup = _ORIGINAL["wakeup"]
        _ORIGINAL.clear()
        _fixed = False


def gh125451_summary() -> str:
    """One line for the doctor and notebook 09: whether this Python has the bug, and what is done."""
    import platform

    where = f"Python {platform.python_version()}"
    if not stdlib_has_gh125451():
        return f"{where}: its ProcessPoolExecutor does not have {GH125451} (read from its code)"
    state = ("fixed in this process by futureslab" if _fixed
             else "futureslab.setup() fixes it in a notebook's process")
    return (f"{where}: its ProcessPoolExecutor has {GH125451} (a pool that cannot pickle a task can "
            f"deadlock as it shuts down); {state}, not in your own programs")


# gh-125451's race, made certain. One task, a lambda, and the pool shuts down at once. Its queue-
# feeder thread, handling the pickling error, wakes the manager thread (as a wake-up that arrives
# late would) and pauses between taking the task off the pending dict and waking the manager itself:
# the bug's window. With the bug, the manager (shutting down, nothing pending) takes shutdown_lock
# and joins the feeder, which then waits for that lock. Without it, the task's future gets the
# pickling error and the pool shuts down.
#
# A deadlock is recognised by what it is, not by a time limit: the feeder thread stopped inside its
# error handler (its innermost frame, on the same line) while the manager thread waits in the
# queue's join_thread for the feeder to end, both unchanged for SETTLE seconds. A pool that is only
# slow (a busy machine) is waited for, up to the time limit.
_RACE = """
    import os, sys, threading, time
    from concurrent.futures import ProcessPoolExecutor

    POOLS = []
    PAUSE, LIMIT, SETTLE = float(sys.argv[2]), float(sys.argv[3]), 1.0

    class SlowPop(dict):
        def pop(self, *args):
            value = super().pop(*args)
            if threading.current_thread().name == "QueueFeederThread" and not self:
                print("window", flush=True)
                self.wake()
                time.sleep(PAUSE)
            return value

    def run(box):
        pool = ProcessPoolExecutor(max_workers=2)
        POOLS.append(pool)
        pending = SlowPop()
        pending.wake = pool._executor_manager_thread_wakeup.wakeup
        pool._pending_work_items = pool._call_queue.pending_work_items = pending
        with pool:  # shuts down at once, while the feeder thread fails to pickle the lambda
            future = pool.submit(lambda: 1)
        box.append(type(future.exception()).__name__)

    def stacks():
        frames = sys._current_frames()
        found = {}
        for thread in threading.enumerate():
            frame = frames.get(thread.ident)
            names = []
            while frame is not None:
                names.append((frame.f_code.co_name, frame.f_lineno))
                frame = frame.f_back
            found[thread.name] = names  # innermost first
        return found

    def deadlock_state():
        found = stacks()
        feeder = found.get("QueueFeederThread") or [("", 0)]
        managers = [names for name, names in found.items() if "join_thread" in (n for n, _ in names)
                    and name != "QueueFeederThread"]
        if feeder[0][0] == "_on_queue_feeder_error" and managers:
            return feeder[0]
        return None

    if __name__ == "__main__":
        if sys.argv[1] == "fixed":
            from futureslab.stdlib_fixes import fix_gh125451
            fix_gh125451()
        box = []
        t = threading.Thread(target=run, args=(box,), daemon=True)
        start = time.monotonic()
        t.start()
        seen, since = None, None
        while t.is_alive() and time.monotonic() - start < LIMIT:
            t.join(0.05)
            state = deadlock_state() if t.is_alive() else None
            if state is None or state != seen:
                seen, since = state, time.monotonic()
            elif time.monotonic() - since >= SETTLE:
                break
        if t.is_alive():
            print("deadlocked" if seen is not None else "slow", flush=True)
            for pool in POOLS:
                for worker in list(pool._processes.values()):
                    worker.kill()
            os._exit(3)  # a normal exit would wait for the deadlocked pool's manager thread forever
        print(box[0], flush=True)
"""


class RaceTooSlow(RuntimeError):
    """The forced race's pool neither deadlocked nor finished within its time limit: the machine was
    too busy for the race to tell anything."""


def gh125451_race(fixed: bool, timeout: float = 30.0, pause: float = 0.3) -> bool:
    """Force gh-125451's race in a fresh interpreter of this Python; return True if its pool deadlocked.

    ``fixed``: apply :func:`fix_gh125451` there first (False: the standard library's own code).
    ``pause``: how long the feeder thread stays in the bug's window (s).
    A deadlock is recognised from the two threads' stacks (the feeder stopped in its error handler,
    the manager waiting for the feeder to end, both unchanged for 1 s), not from a time limit: a
    pool that is only slow is waited for, up to ``timeout`` s. The fresh interpreter then kills its
    workers and exits. Raises :class:`RuntimeError` if the race never reached the window, and
    :class:`RaceTooSlow` (a ``RuntimeError``) if the pool neither deadlocked nor finished within
    ``timeout`` s (a machine too busy to show it; :func:`gh125451_demo` judges that case).
    """
    if not isinstance(fixed, bool):
        raise TypeError(f"fixed must be True or False, got {fixed!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 2 <= timeout <= 300:
        raise ValueError(f"timeout must be a number of seconds from 2 to 300, got {timeout!r}")
    if isinstance(pause, bool) or not isinstance(pause, (int, float)) or not 0.05 <= pause <= 60:
        raise ValueError(f"pause must be a number of seconds from 0.05 to 60, got {pause!r}")
    posix = hasattr(os, "killpg")
    with tempfile.TemporaryDirectory(prefix="futureslab-race-") as temp:
        args = [sys.executable, "-c", textwrap.dedent(_RACE), "fixed" if fixed else "stdlib", str(pause),
                str(timeout)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "TMPDIR": temp}, start_new_session=posix)
        try:
            out, err = proc.communicate(timeout=timeout + 60)
        finally:  # on a time-out or an interrupt too: nothing of it is left running
            if proc.poll() is None or posix:
                try:
                    os.killpg(proc.pid, signal.SIGKILL) if posix else proc.kill()
                except (ProcessLookupError, PermissionError):
                    pass
            if proc.poll() is None:
                proc.communicate()
    lines = out.split()
    outcome = lines[-1] if lines else ""
    if "window" not in lines:
        raise RuntimeError(f"the race never reached gh-125451's window, so it shows nothing: printed "
                           f"{out.strip()!r}, exit code {proc.returncode}\n{err[-1500:]}")
    if outcome == "deadlocked":
        return True
    if outcome == "slow":
        raise RaceTooSlow(f"the pool neither deadlocked nor finished within {timeout:g} s: the machine "
                          f"is too busy to show the race now; run it again later")
    if outcome in ("PicklingError", "AttributeError"):  # 3.14+ / up to 3.13 for a local lambda
        return False
    raise RuntimeError(f"the race ended neither in a deadlock nor in the pickling error: printed "
                       f"{out.strip()!r}, exit code {proc.returncode}\n{err[-1500:]}")


@dataclass(frozen=True)
class RaceDemo:
    """Both forced races (:func:`gh125451_demo`): ``stuck`` (the standard library's code) and
    ``with_fix`` are True (deadlocked), False (the task got its pickling error) or None (too slow to
    tell within ``timeout`` s); ``room`` is how much of the machine other programs left while they ran."""

    stuck: bool | None
    with_fix: bool | None
    room: object  # futureslab.claims.Room
    timeout: float

    def __str__(self) -> str:
        def said(outcome):
            return {True: "deadlocked", False: "the task got its pickling error",
                    None: f"no answer within {self.timeout:g} s"}[outcome]
        return f"forced race: {said(self.stuck)} | with the fix: {said(self.with_fix)}"

    def judge(self, which: str, expected: bool, text: str) -> str:
        """Claim ``text``: race ``which`` (``"stuck"`` or ``"with_fix"``) deadlocked exactly when
        ``expected``. A race with no answer cannot be shown while other programs kept the machine
        busy (measured), and fails the claim on a machine they left free: the machine would then have
        had the time."""
        from .claims import claim

        if which not in ("stuck", "with_fix"):
            raise ValueError(f"which must be 'stuck' or 'with_fix', got {which!r}")
        if not isinstance(expected, bool):
            raise TypeError(f"expected must be True or False, got {expected!r}")
        outcome = getattr(self, which)
        if outcome is None:
            return claim(False, text, needs_cores=1, room=self.room, answered_within=f"no answer in {self.timeout:g} s")
        return claim(outcome is expected, text, deadlocked=outcome)


def gh125451_demo(timeout: float = 30.0, pause: float = 0.3) -> RaceDemo:
    """Notebook 09's demonstration: :func:`gh125451_race` with the standard library's code, then with
    the fix, while a :class:`~futureslab.cores.LoadMeter` measures other programs' load. A race too
    slow to tell (:class:`RaceTooSlow`) is recorded as None, for :meth:`RaceDemo.judge`."""
    from .claims import Room
    from .cores import LoadMeter

    outcomes = []
    with LoadMeter() as load:
        for fixed in (False, True):
            try:
                outcomes.append(gh125451_race(fixed=fixed, timeout=timeout, pause=pause))
            except RaceTooSlow:
                outcomes.append(None)
    return RaceDemo(outcomes[0], outcomes[1], Room.now(load), timeout)
