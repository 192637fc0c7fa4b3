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
