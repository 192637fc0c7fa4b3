"""The checkers of notebook 01 on the worked solutions, the untouched starters and wrong answers."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from futureslab.checks import nb01 as check
from futureslab.solutions import nb01 as solution
from futureslab.tasks import fetch_post, fetch_user


def starter(*args):
    raise NotImplementedError


# --- wrong answers (module level, so a process pool could send them anywhere) ---------------------

def titles_sequential(post_ids):
    return [fetch_post(i)["title"] for i in post_ids]


def titles_unordered(post_ids):
    return sorted(solution.fetch_titles(post_ids))


def count_on_threads(task, ranges, workers):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(task, ranges))


def count_sequential(task, ranges, workers):
    return sum(task(r) for r in ranges)


def count_with_lambda(task, ranges, workers):
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(lambda r: task(r), ranges))


def count_one_process(task, ranges, workers):
    with ProcessPoolExecutor(max_workers=1) as pool:
        return sum(pool.map(task, ranges))


def polite_unbounded(user_ids, max_in_flight):
    with ThreadPoolExecutor(max_workers=len(user_ids)) as pool:
        return list(pool.map(fetch_user, user_ids))


def polite_sequential(user_ids, max_in_flight):
    return [fetch_user(i) for i in user_ids]


# --- tests -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("checker, answer", [
    (check.fetch_titles, solution.fetch_titles),
    (check.count_primes_parallel, solution.count_primes_parallel),
    (check.fetch_politely, solution.fetch_politely),
])
def test_solution_passes(checker, answer):
    verdict = checker(answer)
    assert verdict.solved, str(verdict)


@pytest.mark.parametrize("checker", [check.fetch_titles, check.count_primes_parallel,
                                     check.fetch_politely])
def test_starter_is_not_solved_yet(checker):
    verdict = checker(starter)
    assert verdict.status == "not solved yet", str(verdict)
    assert "Hint:" in str(verdict)


@pytest.mark.parametrize("checker, answer, why", [
    (check.fetch_titles, titles_sequential, "one after another"),
    (check.fetch_titles, titles_unordered, "order"),
    (check.count_primes_parallel, count_on_threads, "GIL"),
    (check.count_primes_parallel, count_sequential, "one range after another"),
    (check.count_primes_parallel, count_with_lambda, "lambda"),
    (check.count_primes_parallel, count_one_process, "one worker process"),
    (check.fetch_politely, polite_unbounded, "too many"),
    (check.fetch_politely, polite_sequential, "never saw more than 1 request"),
])
def test_wrong_answer_says_why(checker, answer, why):
    verdict = checker(answer)
    assert verdict.status == "not right yet", str(verdict)
    assert why in verdict.message, str(verdict)


def test_checker_never_raises_on_garbage():
    verdict = check.fetch_titles(42)
    assert not verdict.solved and "expected a function" in verdict.message
