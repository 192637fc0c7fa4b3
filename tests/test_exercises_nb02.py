"""The checkers of notebook 02 on the worked solutions, the untouched starters and wrong answers."""

from __future__ import annotations

import concurrent.futures as cf

import pytest

import checker_support as bad
from futureslab.checks import nb02 as check
from futureslab.solutions import nb02 as solution


# --- wrong answers ---------------------------------------------------------------------------------

def start_all_results(pool, task, items):
    return [pool.submit(task, item).result() for item in items]


def start_all_waiting(pool, task, items):
    futures = [pool.submit(task, item) for item in items]
    cf.wait(futures)
    return futures


def start_all_sequential(pool, task, items):
    futures = []
    for item in items:
        futures.append(pool.submit(task, item))
        futures[-1].result()
    return futures


def result_or_no_timeout(future, timeout, default):
    return future.result()


def result_or_swallows(future, timeout, default):
    try:
        return future.result(timeout=timeout)
    except Exception:
        return default


def result_or_lets_timeout_escape(future, timeout, default):
    return future.result(timeout=timeout)


def result_or_builtin_timeout(future, timeout, default):
    try:
        return future.result(timeout=timeout)
    except TimeoutError:  # the builtin: on 3.10 concurrent.futures.TimeoutError is another class
        return default


def result_or_cancels(future, timeout, default):
    try:
        return future.result(timeout=timeout)
    except cf.TimeoutError:
        future.cancel()
        return default


def start_all_constant(pool, task, items):
    return [cf.Future() for _ in items]


def first_sequential(pool, task, items):
    return task(items[0])


def first_waits_for_all(pool, task, items):
    futures = [pool.submit(task, item) for item in items]
    done, _ = cf.wait(futures)
    return min((f for f in futures), key=lambda f: f.result()).result()


def first_constant(pool, task, items):
    return 0.2


def first_none(pool, task, items):
    futures = [pool.submit(task, item) for item in items]
    cf.wait(futures, return_when=cf.FIRST_COMPLETED)


def first_no_cancel(pool, task, items):
    futures = [pool.submit(task, item) for item in items]
    done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
    return next(iter(done)).result()


# --- tests -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("checker, answer", [
    (check.start_all, solution.start_all),
    (check.result_or, solution.result_or),
    (check.first_done, solution.first_done),
])
def test_solution_passes(checker, answer):
    verdict = checker(answer)
    assert verdict.solved, str(verdict)


@pytest.mark.parametrize("checker", [check.start_all, check.result_or, check.first_done])
def test_starter_is_not_solved_yet(checker):
    verdict = checker(bad.starter)
    assert verdict.status == "not solved yet", str(verdict)
    assert "Hint:" in str(verdict)


@pytest.mark.parametrize("checker, answer, why", [
    (check.start_all, start_all_results, "list of Future objects"),
    (check.start_all, start_all_waiting, "waited for tasks to finish"),
    (check.start_all, start_all_sequential, "waited for tasks to finish"),
    (check.result_or, result_or_no_timeout, "return the default"),
    (check.result_or, result_or_swallows, "swallowed the error"),
    (check.result_or, result_or_lets_timeout_escape, "concurrent.futures.TimeoutError escaped"),
    (check.result_or, result_or_builtin_timeout, "on 3.10 it is not"),
    (check.start_all, start_all_constant, "never finished"),
    (check.first_done, first_constant, "none of the tasks ran"),
    (check.first_done, first_none, "returned None"),
    (check.first_done, first_sequential, "returned 0.6"),
    (check.first_done, first_waits_for_all, "waited for more than the first"),
    (check.first_done, first_no_cancel, "cancel()"),
])
def test_wrong_answer_says_why(checker, answer, why):
    bad.assert_diagnosis(checker(answer), why)


def test_checker_never_raises_on_garbage():
    verdict = check.first_done("not a function")
    assert not verdict.solved and "expected a function" in verdict.message


def test_builtin_timeout_error_is_a_bug_on_every_version():
    """The static check agrees with what really happens on 3.10: there the builtin name misses it."""
    assert check._catches_builtin_timeout_only(result_or_builtin_timeout)
    assert not check._catches_builtin_timeout_only(solution.result_or)


@pytest.mark.parametrize("checker", [check.start_all, check.result_or, check.first_done])
@pytest.mark.parametrize("answer, why", bad.BAD_ANSWERS)
def test_bad_input_gives_one_clear_verdict(checker, answer, why):
    bad.assert_one_clear_verdict(checker, answer, why, limit=12)
