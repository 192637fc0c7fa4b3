"""The exercise-checker toolkit: a verdict the learner can read, a hint while unsolved, no traceback.

A notebook's checkers live in ``futureslab.checks.nbNN`` and are written with :func:`exercise`::

    @exercise("01.1", "Fetch ten users on threads",
              hint="Which executor method takes a function and a list of inputs?",
              solution="futureslab.solutions.nb01:fetch_users")
    def fetch_users(answer):
        result = run_with_timeout(answer, [1, 2, 3], timeout=10)
        expect(isinstance(result, list), f"fetch_users should return a list, got {describe(result)}.")
        return "All users fetched, with requests overlapping."

The decorated checker never raises: it returns a :class:`Verdict`, which displays as one short
paragraph in the notebook. Inside the checker body:

* :func:`expect` (or ``raise Wrong("...")``) says what is wrong with the answer;
* a ``NotImplementedError`` from the learner's code (the untouched starter) means "not solved yet";
* any other exception from the learner's code is reported by type and message, without a traceback;
  an exception from the checker's own code is reported as the checker's, never as "your code raised";
* :func:`run_with_timeout` calls the learner's function, says "still waiting for your code…" when
  it is slow, and gives up after ``timeout`` seconds: on POSIX, in the main thread (a notebook cell, a
  test), it interrupts the answer there (like Kernel → Interrupt, but only the answer); elsewhere it
  runs the answer on a helper thread and says plainly if the answer is still running;
  :func:`run_coroutine_with_timeout` does the same for an ``async def`` answer, in an event loop of
  its own;
* while a checker runs, what the ``concurrent.futures`` logger reports (a raising done-callback, say)
  and uncaught exceptions in threads are captured, not printed: the verdict mentions them in one
  line, and :func:`logged_errors` hands them to the checker for a diagnosis;
* the tasks a checker hands the answer can wait with :func:`pause` and be wrapped with
  :func:`stoppable`: once the check has given up on a timed-out answer they stop at once
  (:class:`CheckAbandoned`), so the answer's pools drain instead of running on; pools the checker
  creates go in :func:`owned_pool`, which cancels their queued work and stops their workers when the
  check gives up.

:func:`solution` shows the worked solution of an exercise, and :data:`EXERCISES` lists them all (the
test suite runs every checker on its solution).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib
import inspect
import logging
import os
import signal
import sysconfig
import threading
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["Verdict", "Wrong", "CheckAbandoned", "exercise", "expect", "run_with_timeout",
           "run_coroutine_with_timeout", "owned_pool", "pause", "stoppable", "logged_errors",
           "describe", "solution", "load_solution", "is_pickling_error", "EXERCISES"]

SOLVED, NOT_YET, WRONG = "solved", "not solved yet", "not right yet"
UNCHECKED = "could not be checked"

#: Seconds after which :func:`run_with_timeout` prints one "still waiting" line.
NOTICE_AFTER = 3.0

#: How long a check waits, after giving up on an answer, for its threads to notice and stop.
GRACE = 1.0


class Wrong(Exception):
    """Raised inside a checker: the answer ran but is not right; the message says why."""


class CheckAbandoned(Exception):
    """Raised in a checker's task once the check has given up on the answer (it timed out)."""

    def __init__(self, message: str = "the checker gave up on this answer (it took too long)"):
        super().__init__(message)


class _AnswerTimedOut(BaseException):
    """Raised in the main thread by the timer of :func:`run_with_timeout` (a BaseException, so a
    learner's ``except Exception`` does not swallow it)."""


# ------------------------------------------------------------------------------------------ verdict

@dataclass(frozen=True)
class Verdict:
    """What a checker found. ``bool(verdict)`` is True only when solved."""

    exercise: str
    title: str
    status: str
    message: str
    hint: str | None = None

    @property
    def solved(self) -> bool:
        return self.status == SOLVED

    def __bool__(self) -> bool:
        return self.solved

    def _icon(self) -> str:
        return {SOLVED: "\u2705", NOT_YET: "\u23f3", UNCHECKED: "\u26a0\ufe0f"}.get(self.status, "\u274c")

    def _show_hint(self) -> bool:
        return bool(self.hint) and self.status in (NOT_YET, WRONG)

    def __str__(self) -> str:
        text = f"{self._icon()} Exercise {self.exercise} ({self.title}): {self.status}. {self.message}"
        if self._show_hint():
            text += f"\n   Hint: {self.hint}"
        return text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {SOLVED: "#e6f4ea", NOT_YET: "#fff8e1", UNCHECKED: "#fff3e0"}.get(self.status, "#fdecea")
        body = (f"<b>{self._icon()} Exercise {html.escape(self.exercise)} "
                f"({html.escape(self.title)}): {self.status}.</b> {html.escape(self.message)}")
        if self._show_hint():
            body += f"<br><i>Hint:</i> {html.escape(self.hint)}"
        return (f'<div style="background:{colour};padding:6px 10px;border-radius:4px;'
                f'color:#222">{body}</div>')


@dataclass(frozen=True)
class _Exercise:
    id: str
    title: str
    hint: str | None
    solution: str | None
    check: Callable


EXERCISES: dict[str, _Exercise] = {}


def expect(condition: bool, message: str) -> None:
    """Inside a checker: if ``condition`` is false, the verdict is 'not right yet: message'."""
    if not condition:
        raise Wrong(message)


def is_pickling_error(exc: BaseException) -> bool:
    """Whether ``exc`` is pickle refusing to send something that has no importable name (a lambda, a
    nested function), as each Python says it: ``pickle.PicklingError`` on 3.14+ ("Can't pickle local
    object"); ``AttributeError`` before, "Can't pickle local object ..." on 3.10-3.12 but "Can't get
    local object ..." on 3.13 (tests/test_checks_toolkit.py checks it on the Python that runs); and
    ``TypeError: cannot pickle '...' object`` for an object that refuses (a lock, a socket)."""
    import pickle

    if isinstance(exc, pickle.PicklingError):
        return True
    text = str(exc)
    return isinstance(exc, (AttributeError, TypeError)) and (
        "pickle" in text.lower() or text.startswith("Can't get local object"))


def describe(value) -> str:
    """A short description of a value for a verdict: ``None``, ``a generator``, ``an int (42)``."""
    if value is None:
        return "None"
    if inspect.isgenerator(value):
        return "a generator (wrap it in list(...) to return a list)"
    if inspect.iscoroutine(value):
        return "a coroutine that was never awaited"
    if isinstance(value, (bool, int, float, complex, str, bytes)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{article} {name} ({text})"


# ------------------------------------------------------------------------------ the running check

class _Check:
    """The state of one checker call: captured log records, pools to stop, the 'given up' flag."""

    def __init__(self):
        self.abandoned = threading.Event()  # set when the check gives up on a timed-out answer
        self.records: list[logging.LogRecord] = []
        self.thread_errors: list = []  # threading.ExceptHookArgs-like tuples (exc_type, exc, thread)
        self.pools: list = []


_active: _Check | None = None
_task_local = threading.local()


def _current() -> _Check | None:
    return getattr(_task_local, "check", None) or _active


def pause(seconds: float) -> None:
    """Sleep ``seconds`` inside a checker's task; raise :class:`CheckAbandoned` at once if the check
    gives up on the answer meanwhile (so a timed-out answer's pool drains quickly)."""
    check = _current()
    if check is None:
        time.sleep(seconds)
        return
    if check.abandoned.wait(seconds):
        raise CheckAbandoned()


def stoppable(fn: Callable) -> Callable:
    """Wrap a checker's task so that it refuses to start (raises :class:`CheckAbandoned`) once the
    check has given up, and so that :func:`pause` inside it knows which check it belongs to, on any
    thread. Use only for thread-pool tasks (the wrapper does not pickle)."""
    check = _current()

    def task(*args, **kwargs):
        if check is not None and check.abandoned.is_set():
            raise CheckAbandoned()
        previous = getattr(_task_local, "check", None)
        _task_local.check = check
        try:
            return fn(*args, **kwargs)
        finally:
            _task_local.check = previous

    task.__name__ = getattr(fn, "__name__", "task")
    task.__qualname__ = getattr(fn, "__qualname__", task.__name__)
    task.__doc__ = getattr(fn, "__doc__", None)
    task.__wrapped__ = fn
    return task


def logged_errors() -> list[logging.LogRecord]:
    """The records the ``concurrent.futures`` logger emitted during the current check (e.g.
    "exception calling callback for <Future ...>", with ``record.exc_info``)."""
    check = _current()
    return list(check.records) if check is not None else []


def _stop_pool(pool) -> None:
    """Cancel a pool's queued work and stop its workers without waiting for running tasks."""
    with contextlib.suppress(Exception):
        pool.shutdown(wait=False, cancel_futures=True)
    terminate = getattr(pool, "terminate_workers", None)  # ProcessPoolExecutor, Python 3.14+
    if terminate is not None:
        with contextlib.suppress(Exception):
            terminate()
        return
    # Before 3.14 a process pool has no public way to stop running workers: terminate them through
    # CPython's internal table (a running task in a worker process cannot be stopped otherwise).
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            process.terminate()


@contextlib.contextmanager
def owned_pool(pool):
    """``with owned_pool(ThreadPoolExecutor(4)) as pool:`` — a pool the checker creates and hands to
    the answer. On a normal exit it shuts down and waits as ``with`` does; if the check gave up on
    the answer (or the block raised), it cancels queued work and stops the workers instead of
    waiting for tasks that may never end."""
    check = _current()
    if check is not None:
        check.pools.append(pool)
    ok = False
    try:
        yield pool
        ok = True
    finally:
        if ok and not (check is not None and check.abandoned.is_set()):
            pool.shutdown(wait=True)
        else:
            _stop_pool(pool)
            with contextlib.suppress(Exception):
                pool.shutdown(wait=True)  # returns once the stopped workers are gone


# ----------------------------------------------------------------------------------- capturing logs

class _Collector(logging.Handler):
    def __init__(self, check: _Check):
        super().__init__(logging.DEBUG)
        self._check = check

    def emit(self, record: logging.LogRecord) -> None:
        self._check.records.append(record)


@contextlib.contextmanager
def _captured(check: _Check):
    """Collect the concurrent.futures logger's records and uncaught thread exceptions into ``check``
    instead of printing them (a naive answer can log hundreds of tracebacks)."""
    logger = logging.getLogger("concurrent.futures")
    handler = _Collector(check)
    logger.addHandler(handler)
    old_propagate, logger.propagate = logger.propagate, False
    old_hook = threading.excepthook

    def hook(args):
        if args.exc_type in (SystemExit, CheckAbandoned):
            return
        check.thread_errors.append((args.exc_type, args.exc_value, args.thread))

    threading.excepthook = hook
    try:
        yield
    finally:
        if threading.excepthook is hook:
            threading.excepthook = old_hook
        logger.removeHandler(handler)
        logger.propagate = old_propagate


def _captured_note(check: _Check) -> str:
    parts = []
    records = [r for r in check.records if not (r.exc_info and r.exc_info[0] is CheckAbandoned)]
    if records:
        first = records[0]
        what = first.getMessage().split(" for <")[0]
        if first.exc_info and first.exc_info[0] is not None:
            what += f" ({_one_line(first.exc_info[1], first.exc_info[0])})"
        parts.append(f"{len(records)} error(s) reported by the concurrent.futures logger while your "
                     f"code ran were hidden here; the first: {what}")
    if check.thread_errors:
        exc_type, exc, thread = check.thread_errors[0]
        parts.append(f"{len(check.thread_errors)} uncaught exception(s) in threads were hidden here; "
                     f"the first, in {getattr(thread, 'name', 'a thread')}: {_one_line(exc, exc_type)}")
    return (" (" + "; ".join(parts) + ".)") if parts else ""


def _one_line(exc, exc_type=None) -> str:
    name = (exc_type or type(exc)).__name__
    text = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
    return f"{name}: {text}" if text else name


# ----------------------------------------------------------------------------- whose error was it?

_LEARNER_MARK = "_futureslab_from_answer"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = tuple(sorted({os.path.abspath(p) for k, p in sysconfig.get_paths().items()
                              if k in ("stdlib", "platstdlib", "purelib", "platlib") and p}))


def _mark(exc: BaseException) -> BaseException:
    with contextlib.suppress(Exception):
        setattr(exc, _LEARNER_MARK, True)
    return exc


def _from_answer(exc: BaseException, checker_file: str = "") -> bool:
    """Did ``exc`` come out of the learner's code? Yes if it passed through run_with_timeout, or if
    its traceback runs through a file that is neither this package nor an installed library (a
    notebook cell, a test file) other than the checker's own."""
    if getattr(exc, _LEARNER_MARK, False):
        return True
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<frozen"):
            path = os.path.abspath(filename)
            if (not path.startswith(_PACKAGE_DIR) and not path.startswith(_LIBRARY_DIRS)
                    and path != checker_file):
                return True
        tb = tb.tb_next
    return False


# --------------------------------------------------------------------------- running the answer

def _notice(timeout: float) -> None:
    print(f"\u23f3 still waiting for your code\u2026 (the checker gives up after {timeout:g} s)",
          flush=True)


def _timed_out_message(timeout: float, still_running: bool) -> str:
    text = (f"your code did not finish within {timeout:g} s. Is it waiting for something that can "
            f"never happen (a deadlock), or running everything one after another?")
    if still_running:
        text += (" It is still running in the background (a thread cannot be stopped from outside); "
                 "it stops when it returns. If it never does, restart the kernel "
                 "(Kernel \u2192 Restart).")
    return text


def _can_interrupt() -> bool:
    return (hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")
            and threading.current_thread() is threading.main_thread())


def _thread_ids() -> set:
    """Native ids of this process's threads, as the OS sees them (a ``threading.Thread`` whose join
    was interrupted can look stopped while its thread still runs)."""
    try:
        import psutil

        return {t.id for t in psutil.Process().threads()}
    except Exception:  # psutil cannot see threads here: fall back on the threading module
        return {t.native_id for t in threading.enumerate() if t.is_alive()}


def _notice_ids() -> set:
    return {t.native_id for t in threading.enumerate() if t.name.startswith("futureslab-notice")}


def _wait_for_threads(before: set, grace: float) -> set:
    """Wait up to ``grace`` s for threads started since ``before`` (native ids) to end; return the
    ids of those still running."""
    deadline = time.monotonic() + grace
    while True:
        left = _thread_ids() - before - _notice_ids()
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)


def _give_up(check: _Check | None) -> None:
    if check is not None:
        check.abandoned.set()
        for pool in list(check.pools):
            _stop_pool(pool)


def run_with_timeout(fn: Callable, *args, timeout: float = 10.0, **kwargs):
    """Call the learner's ``fn(*args, **kwargs)`` and return what it returns.

    After :data:`NOTICE_AFTER` s it prints one "still waiting for your code…" line. If ``fn`` has not
    returned within ``timeout`` s, the check gives up: checker tasks stop (:func:`pause`,
    :func:`stoppable`), pools in :func:`owned_pool` are stopped, and :class:`Wrong` is raised. In the
    main thread on POSIX the answer itself is interrupted (a timer signal raises inside it); elsewhere
    it runs on a helper thread, which cannot be stopped, and the verdict says so if it is still
    running. Exceptions from ``fn`` propagate unchanged (and are known to be the learner's)."""
    if not callable(fn):
        raise Wrong(f"expected a function, got {describe(fn)}. Pass the function itself, without "
                    f"calling it: check.name(name), not check.name(name()).")
    # an answer that sends a lambda to a process pool must not deadlock the check (and the kernel)
    # on a Python with CPython's gh-125451: fixed in this process where the bug is found
    __import__("futureslab.stdlib_fixes").stdlib_fixes.fix_gh125451()
    if _can_interrupt():
        return _run_here(fn, args, kwargs, timeout)
    return _run_on_thread(lambda: fn(*args, **kwargs), timeout)


def _run_here(fn, args, kwargs, timeout):
    check = _current()
    before = _thread_ids()
    state = {"running": True, "fired": 0}
    timer = threading.Timer(NOTICE_AFTER, _notice, args=(timeout,))
    timer.name, timer.daemon = "futureslab-notice", True

    def on_alarm(signum, frame):
        if not state["running"]:
            return
        state["fired"] += 1
        _give_up(check)
        if state["fired"] <= 20:  # re-raised every 0.25 s in case the answer swallows it
            raise _AnswerTimedOut()

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    t0 = time.monotonic()
    old_timer = signal.setitimer(signal.ITIMER_REAL, timeout, 0.25)
    if timeout > NOTICE_AFTER:
        timer.start()
    timed_out = False
    try:
        try:
            value = fn(*args, **kwargs)
        finally:
            state["running"] = False
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
    except _AnswerTimedOut:
        timed_out = True
    except BaseException as exc:
        if state["fired"]:
            timed_out = True  # whatever the answer raised on its way out of the interruption
        else:
            raise _mark(exc)
    finally:
        timer.cancel()
        signal.signal(signal.SIGALRM, old_handler)
        if old_timer[0] > 0:  # someone else's timer (pytest-timeout): give back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(0.001, old_timer[0] - (time.monotonic() - t0)),
                             old_timer[1])
    if timed_out or state["fired"]:
        _give_up(check)
        left = _wait_for_threads(before, GRACE)
        raise Wrong(_timed_out_message(timeout, still_running=bool(left)))
    return value


def _run_on_thread(call: Callable, timeout: float, on_timeout: Callable | None = None):
    check = _current()
    before = _thread_ids()
    box: dict = {}

    def target():
        if check is not None:
            _task_local.check = check
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    t = threading.Thread(target=target, name="futureslab-check", daemon=True)
    t.start()
    t.join(min(timeout, NOTICE_AFTER))
    if t.is_alive() and timeout > NOTICE_AFTER:
        _notice(timeout)
        t.join(timeout - NOTICE_AFTER)
    if t.is_alive():
        _give_up(check)
        if on_timeout is not None:
            on_timeout()
        left = _wait_for_threads(before, GRACE)
        raise Wrong(_timed_out_message(timeout, still_running=bool(left)))
    if "error" in box:
        raise _mark(box["error"])
    return box.get("value")


def run_coroutine_with_timeout(fn: Callable, *args, timeout: float = 10.0, **kwargs):
    """Await the learner's ``async def fn(*args, **kwargs)`` in a fresh event loop on a helper thread
    (a notebook cell already runs inside the kernel's loop) and return its result. Says "still
    waiting" after :data:`NOTICE_AFTER` s; after ``timeout`` s it cancels the answer's task and raises
    :class:`Wrong` (saying so if a blocking call keeps it running)."""
    if not inspect.iscoroutinefunction(fn):
        if callable(fn):
            raise Wrong(f"{getattr(fn, '__name__', 'your answer')} should be a coroutine function: "
                        f"define it with `async def`.")
        raise Wrong(f"expected an `async def` function, got {describe(fn)}.")
    where: dict = {}

    async def main():
        where["loop"] = asyncio.get_running_loop()
        where["task"] = asyncio.current_task()
        return await fn(*args, **kwargs)

    def cancel():
        loop, task = where.get("loop"), where.get("task")
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(task.cancel)

    def call():
        try:
            return asyncio.run(main())
        except asyncio.CancelledError:
            raise CheckAbandoned() from None

    return _run_on_thread(call, timeout, on_timeout=cancel)


# -------------------------------------------------------------------------------------- exercise

def exercise(exercise_id: str, title: str, hint: str | None = None,
             solution: str | None = None):
    """Decorator that turns a checker body ``check(answer, ...) -> success message`` into a
    checker that returns a :class:`Verdict` and never raises."""
    if not isinstance(exercise_id, str) or not exercise_id:
        raise ValueError(f"exercise_id must be a non-empty string, got {exercise_id!r}")
    if not isinstance(title, str) or not title:
        raise ValueError(f"title must be a non-empty string, got {title!r}")
    if solution is not None and (not isinstance(solution, str) or ":" not in solution):
        raise ValueError(f"solution must look like 'package.module:function', got {solution!r}")

    def decorate(body: Callable) -> Callable:
        own_file = os.path.abspath(getattr(getattr(body, "__code__", None), "co_filename", "") or "")

        def checker(*args, **kwargs) -> Verdict:
            global _active
            check, previous = _Check(), _active
            _active = check

            def verdict(status, message):
                if status != SOLVED:
                    message += _captured_note(check)
                return Verdict(exercise_id, title, status, message, hint)

            try:
                with _captured(check):
                    try:
                        message = body(*args, **kwargs)
                    finally:
                        for pool in check.pools:  # pools the body left open (it raised early)
                            if check.abandoned.is_set():
                                _stop_pool(pool)
            except Wrong as exc:
                return verdict(WRONG, str(exc))
            except NotImplementedError as exc:
                if _from_answer(exc, own_file):
                    return verdict(NOT_YET, "Replace `raise NotImplementedError` with your code, "
                                            "then run this cell again.")
                return verdict(UNCHECKED, _checker_failed(exc))
            except CheckAbandoned:
                return verdict(WRONG, "your code was stopped because it took too long.")
            except Exception as exc:
                if _from_answer(exc, own_file):
                    return verdict(WRONG, f"your code raised {_one_line(exc)}.")
                return verdict(UNCHECKED, _checker_failed(exc))
            finally:
                _active = previous
            return verdict(SOLVED, message or "Well done.")

        checker.__name__ = body.__name__
        checker.__qualname__ = body.__qualname__
        checker.__doc__ = f"Check exercise {exercise_id}: {title}."
        checker.__wrapped__ = body
        if exercise_id in EXERCISES and EXERCISES[exercise_id].check.__qualname__ != body.__qualname__:
            raise ValueError(f"exercise id {exercise_id!r} is used twice")
        EXERCISES[exercise_id] = _Exercise(exercise_id, title, hint, solution, checker)
        return checker

    return decorate


def _checker_failed(exc: BaseException) -> str:
    return (f"the checker itself failed with {_one_line(exc)}. That is a problem in the checker, not an "
            f"error in your code. Look at what your function returns; if it looks right, "
            f"please report this (with the message) to your instructor or the course's issue tracker.")


# -------------------------------------------------------------------------------------- solutions

def load_solution(exercise_id: str):
    """The worked-solution object of an exercise (imports its module)."""
    _load_all()
    if exercise_id not in EXERCISES:
        raise ValueError(f"exercise_id must be one of {sorted(EXERCISES)}, got {exercise_id!r}")
    ref = EXERCISES[exercise_id].solution
    if ref is None:
        raise ValueError(f"exercise {exercise_id} has no worked solution")
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def solution(exercise_id: str) -> None:
    """Print the worked solution of an exercise. Try it yourself first!"""
    obj = load_solution(exercise_id)
    print(f"# Worked solution to exercise {exercise_id}: {EXERCISES[exercise_id].title}")
    print(inspect.getsource(obj))


def _load_all() -> None:
    """Import every ``futureslab.checks.nbNN`` module so :data:`EXERCISES` is complete."""
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("nb"):
            importlib.import_module(f"{__name__}.{info.name}")
