"""The exercise-checker toolkit: a verdict the learner can read, a hint while unsolved, no traceback.

A notebook's checkers live in ``futureslab.checks.nbNN`` and are written with :func:`exercise`::

    @exercise("01.1", "Fetch ten users on threads",
              hint="Use ThreadPoolExecutor and executor.map.",
              solution="futureslab.solutions.nb01:fetch_users")
    def fetch_users(answer):
        result = run_with_timeout(answer, [1, 2, 3], timeout=10)
        expect(isinstance(result, list), f"fetch_users should return a list, got {type(result).__name__}.")
        return "All users fetched, with requests overlapping."

The decorated checker never raises: it returns a :class:`Verdict`, which displays as one short
paragraph in the notebook. Inside the checker body:

* :func:`expect` (or ``raise Wrong("...")``) says what is wrong with the answer;
* a ``NotImplementedError`` from the learner's code (the untouched starter) means "not solved yet";
* any other exception from the learner's code is reported by type and message, without a traceback;
* :func:`run_with_timeout` stops waiting for an answer that hangs (a deadlock, say).

:func:`solution` shows the worked solution of an exercise, and :data:`EXERCISES` lists them all (the
test suite runs every checker on its solution).
"""

from __future__ import annotations

import html
import importlib
import inspect
import threading
from dataclasses import dataclass
from typing import Callable

__all__ = ["Verdict", "Wrong", "exercise", "expect", "run_with_timeout", "solution",
           "load_solution", "EXERCISES"]

SOLVED, NOT_YET, WRONG = "solved", "not solved yet", "not right yet"


class Wrong(Exception):
    """Raised inside a checker: the answer ran but is not right; the message says why."""


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
        return {SOLVED: "\u2705", NOT_YET: "\u23f3"}.get(self.status, "\u274c")

    def __str__(self) -> str:
        text = f"{self._icon()} Exercise {self.exercise} ({self.title}): {self.status}. {self.message}"
        if self.hint and not self.solved:
            text += f"\n   Hint: {self.hint}"
        return text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {SOLVED: "#e6f4ea", NOT_YET: "#fff8e1"}.get(self.status, "#fdecea")
        body = (f"<b>{self._icon()} Exercise {html.escape(self.exercise)} "
                f"({html.escape(self.title)}): {self.status}.</b> {html.escape(self.message)}")
        if self.hint and not self.solved:
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


def run_with_timeout(fn: Callable, *args, timeout: float = 10.0, **kwargs):
    """Call the learner's ``fn(*args, **kwargs)``; if it has not returned within ``timeout`` s,
    raise :class:`Wrong` (the call goes on in the background: a thread cannot be stopped)."""
    if not callable(fn):
        raise Wrong(f"expected a function, got {fn!r}.")
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    t = threading.Thread(target=target, name="futureslab-check", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise Wrong(f"your code did not finish within {timeout:g} s. Is it waiting for something "
                    f"that can never happen (a deadlock), or running everything one after another?")
    if "error" in box:
        raise box["error"]
    return box.get("value")


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
        def checker(*args, **kwargs) -> Verdict:
            def verdict(status, message):
                return Verdict(exercise_id, title, status, message, hint)
            try:
                message = body(*args, **kwargs)
            except Wrong as exc:
                return verdict(WRONG, str(exc))
            except NotImplementedError:
                return verdict(NOT_YET, "Replace `raise NotImplementedError` with your code, "
                                        "then run this cell again.")
            except Exception as exc:
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                return verdict(WRONG, f"your code raised {type(exc).__name__}"
                                      + (f": {text}" if text else "") + ".")
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
