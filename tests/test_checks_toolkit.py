"""The exercise-checker toolkit (the per-notebook checkers have their own tests)."""

from __future__ import annotations

import time

import pytest

from futureslab import checks
from futureslab.checks import Verdict, Wrong, exercise, expect, run_with_timeout


@exercise("99.1", "Double a number", hint="Multiply by two.", solution="futureslab.tasks:double")
def check_double(answer):
    result = run_with_timeout(answer, 21, timeout=2)
    expect(result == 42, f"double(21) should be 42, got {result!r}.")
    return "Right: 42."


def starter(n):
    raise NotImplementedError


def test_solved_not_yet_wrong_and_crashing_answers():
    ok = check_double(lambda n: n * 2)
    assert ok.solved and bool(ok) and ok.status == "solved"
    assert str(ok) == "\u2705 Exercise 99.1 (Double a number): solved. Right: 42."
    assert "Hint" not in str(ok)

    todo = check_double(starter)
    assert not todo and todo.status == "not solved yet"
    assert "NotImplementedError" in todo.message and "Hint: Multiply by two." in str(todo)

    wrong = check_double(lambda n: n + 2)
    assert wrong.status == "not right yet" and "should be 42, got 23" in wrong.message

    boom = check_double(lambda n: {}["missing"])
    assert boom.status == "not right yet" and boom.message == "your code raised KeyError: 'missing'."
    assert "Traceback" not in str(boom)

    notfn = check_double(42)
    assert notfn.status == "not right yet" and "expected a function" in notfn.message


def test_hanging_answer_is_reported_not_waited_for():
    t0 = time.perf_counter()
    v = check_double(lambda n: time.sleep(5))
    assert time.perf_counter() - t0 < 4
    assert v.status == "not right yet" and "did not finish within 2 s" in v.message


def test_html_repr_escapes_and_colours():
    v = Verdict("1.1", "a <b>", "not right yet", "x < y", "h & i")
    html = v._repr_html_()
    assert "a &lt;b&gt;" in html and "x &lt; y" in html and "h &amp; i" in html and "#fdecea" in html


def test_registry_and_solution(capsys):
    assert "99.1" in checks.EXERCISES
    assert checks.load_solution("99.1")(4) == 8
    checks.solution("99.1")
    out = capsys.readouterr().out
    assert out.startswith("# Worked solution to exercise 99.1: Double a number") and "def double" in out
    with pytest.raises(ValueError, match="exercise_id"):
        checks.solution("nope")


@pytest.mark.parametrize("kwargs,name", [({"exercise_id": "", "title": "t"}, "exercise_id"),
                                         ({"exercise_id": "1", "title": ""}, "title"),
                                         ({"exercise_id": "1", "title": "t", "solution": "nocolon"}, "solution")])
def test_decorator_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        exercise(**kwargs)


def test_every_registered_exercise_has_a_loadable_solution():
    checks._load_all()
    for ex_id, ex in checks.EXERCISES.items():
        if ex.solution:
            assert callable(checks.load_solution(ex_id)), ex_id


def test_wrong_is_an_exception():
    with pytest.raises(Wrong):
        expect(False, "no")


# --- capturing, whose error, waiting, stopping (issues 11 and 13) ------------------------------------

import logging  # noqa: E402
import threading  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import checker_support as bad  # noqa: E402
from futureslab.checks import (CheckAbandoned, describe, logged_errors, owned_pool, pause,  # noqa: E402
                               run_coroutine_with_timeout, stoppable)


@exercise("99.2", "Callbacks that raise")
def check_noisy(answer):
    run_with_timeout(answer, timeout=5)
    seen = logged_errors()
    expect(not seen, f"{len(seen)} callback errors")
    return "quiet"


def noisy():
    with ThreadPoolExecutor(2) as pool:
        for i in range(50):
            pool.submit(int, i).add_done_callback(lambda f: 1 / 0)


def test_logged_callback_errors_are_captured_not_printed(capsys):
    verdict = check_noisy(noisy)
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and "ZeroDivisionError" not in out.err
    assert verdict.message.startswith("50 callback errors")
    assert "50 error(s) reported by the concurrent.futures logger" in verdict.message
    assert "ZeroDivisionError" in verdict.message
    logger = logging.getLogger("concurrent.futures")
    assert logger.propagate and not any(type(h).__name__ == "_Collector" for h in logger.handlers)


def test_uncaught_thread_errors_are_captured(capsys):
    hook_before = threading.excepthook

    def answer(n):
        t = threading.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()
        return n + 1
    verdict = check_double(answer)
    assert "uncaught exception(s) in threads were hidden" in verdict.message
    assert "Traceback" not in capsys.readouterr().err
    assert threading.excepthook is hook_before


@exercise("99.3", "A checker with a bug")
def check_buggy(answer):
    result = run_with_timeout(answer, timeout=2)
    return result["key"]  # the checker assumes a dict: its own TypeError on anything else


@exercise("99.4", "A checker that raises NotImplementedError itself")
def check_unfinished(answer):
    raise NotImplementedError("the checker is not written yet")


def test_the_checkers_own_error_never_blames_the_learner():
    verdict = check_buggy(lambda: 42)
    assert verdict.status == "could not be checked" and not verdict
    assert "your code raised" not in verdict.message and "the checker itself failed" in verdict.message
    assert "TypeError" in verdict.message and "Hint" not in str(verdict)
    verdict = check_unfinished(lambda: 1)
    assert verdict.status == "could not be checked", str(verdict)


def test_the_learners_error_still_is_the_learners():
    verdict = check_buggy(bad.raises)
    assert verdict.message == "your code raised KeyError: 'boom'."


def test_a_slow_answer_gets_a_still_waiting_line(monkeypatch, capsys):
    import futureslab.checks as toolkit
    monkeypatch.setattr(toolkit, "NOTICE_AFTER", 0.3)
    verdict = check_double(lambda n: time.sleep(0.6) or n * 2)
    assert verdict.solved
    assert capsys.readouterr().out.count(bad.NOTICE) == 1
    verdict = check_double(lambda n: n * 2)
    assert bad.NOTICE not in capsys.readouterr().out


def test_the_thread_fallback_also_notices_and_says_what_still_runs(monkeypatch, capsys):
    import futureslab.checks as toolkit
    monkeypatch.setattr(toolkit, "NOTICE_AFTER", 0.3)
    monkeypatch.setattr(toolkit, "GRACE", 0.2)
    monkeypatch.setattr(toolkit, "_can_interrupt", lambda: False)  # as on Windows or off the main thread
    verdict = check_double(lambda n: time.sleep(3))
    assert "did not finish within 2 s" in verdict.message
    assert "still running in the background" in verdict.message and "restart the kernel" in verdict.message
    assert bad.NOTICE in capsys.readouterr().out
    time.sleep(1.5)  # let it end


@exercise("99.5", "Pools and tasks stop when the check gives up")
def check_pools(answer):
    with owned_pool(ThreadPoolExecutor(2)) as pool:
        return run_with_timeout(answer, pool, stoppable(lambda s: pause(s) or s), timeout=1)


def test_a_timed_out_answers_pool_and_tasks_are_stopped():
    def answer(pool, task):
        futures = [pool.submit(task, 20) for _ in range(10)]  # 200 s of checker tasks
        return [f.result() for f in futures]

    verdict = bad.run_bad_input(check_pools, answer, limit=4)
    assert "did not finish within 1 s" in verdict.message and "still running" not in verdict.message


def test_a_learners_own_pool_drains_once_the_checker_tasks_stop():
    def answer(pool, task):
        with ThreadPoolExecutor(4) as own:
            return list(own.map(task, [20] * 8))

    verdict = bad.run_bad_input(check_pools, answer, limit=4)
    assert "did not finish within 1 s" in verdict.message and "still running" not in verdict.message


def test_pause_and_stoppable_outside_a_check():
    t0 = time.perf_counter()
    pause(0.05)
    assert time.perf_counter() - t0 >= 0.045
    assert stoppable(lambda x: x + 1)(1) == 2
    assert issubclass(CheckAbandoned, Exception)


def test_coroutine_answers_are_cancelled_on_timeout():
    import asyncio

    async def forever(x):
        await asyncio.sleep(30)

    threads = bad.os_threads()
    t0 = time.perf_counter()
    with pytest.raises(Wrong, match="did not finish within 1 s"):
        run_coroutine_with_timeout(forever, 1, timeout=1)
    assert time.perf_counter() - t0 < 3
    assert bad.nothing_left_behind(threads, bad.child_pids()) == (set(), set())

    async def fine(x):
        await asyncio.sleep(0.01)
        return x * 2
    assert run_coroutine_with_timeout(fine, 21, timeout=5) == 42
    with pytest.raises(Wrong, match="async def"):
        run_coroutine_with_timeout(lambda x: x, 1)


@pytest.mark.parametrize("value, text", [(None, "None"), (42, "42"), ((x for x in ()), "a generator"),
                                         ([1, 2], "a list ([1, 2])"), (object(), "an object (")])
def test_describe(value, text):
    assert describe(value).startswith(text)


@pytest.mark.parametrize("answer, why", [
    (None, "expected a function, got None"), (lambda n: None, "got None"),
    (bad.raises, "your code raised KeyError"), (bad.sleeps_30, "did not finish within 2 s"),
    (bad.generator, "generator"), (starter, "Replace `raise NotImplementedError`"),
])
def test_bad_input_to_the_example_checker(answer, why):
    verdict = bad.run_bad_input(check_double, answer, limit=4)
    assert why in verdict.message, str(verdict)


@pytest.mark.parametrize("source", ["02-futures.py", "03-callbacks.py", "04-map-vs-as-completed.py",
                                    "08-asyncio-and-executors.py"])
def test_notebooks_print_solutions_only_when_asked(source):
    """A worked solution is printed only when the learner uncomments the line (issue 11)."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "src" / "notebooks" / source).read_text(encoding="utf-8")
    calls = re.findall(r"(?m)^(.*)checks\.solution\(", text)
    assert calls, "the notebook should offer its solutions"
    assert all(prefix.strip().startswith("#") for prefix in calls), calls


def _local_function():
    def inner(n):
        return n
    return inner


def test_is_pickling_error_knows_how_this_python_says_it():
    """Each Python words the error of pickling a lambda or a nested function differently (3.13 says
    "Can't get local object", 3.14 raises PicklingError): the checkers of 01.2 and 05.1 must know it
    on the Python that runs them. Errors that are not about pickling must not pass for one."""
    import pickle
    import threading

    from futureslab.checks import is_pickling_error

    caught = []
    for unpicklable in (lambda n: n, _local_function(), threading.Lock()):
        with pytest.raises(Exception) as error:
            pickle.dumps(unpicklable)
        caught.append(error.value)
    assert all(is_pickling_error(exc) for exc in caught), [f"{type(e).__name__}: {e}" for e in caught]
    with pytest.raises(AttributeError) as not_pickling:
        None.real_part  # noqa: B018 - an AttributeError of the learner's own
    with pytest.raises(TypeError) as wrong_call:
        (lambda n: n)(1, 2)  # "<lambda>() takes 1 positional argument...": not a pickling error
    for exc in (not_pickling.value, wrong_call.value, ValueError("Can't pickle this"),
                AttributeError("Can't get attribute 'cube' on <module '__main__'>")):
        assert not is_pickling_error(exc), exc
