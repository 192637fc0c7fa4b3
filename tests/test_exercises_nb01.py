"""The checkers of notebook 01 on the worked solutions, the untouched starters, the wrong answers
learners write, and bad input."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed

import pytest

import checker_support as bad
from futureslab import data
from futureslab.checks import nb01 as check
from futureslab.solutions import nb01 as solution
from futureslab.tasks import fetch_post, fetch_user


# --- wrong answers (module level, so a process pool could send them anywhere) ---------------------

def titles_sequential(post_ids):
    return [fetch_post(i)["title"] for i in post_ids]


def titles_two_threads(post_ids):
    with ThreadPoolExecutor(max_workers=2) as pool:
        return [p["title"] for p in pool.map(fetch_post, post_ids)]


def titles_completion_order(post_ids):
    with ThreadPoolExecutor(max_workers=len(post_ids)) as pool:
        futures = [pool.submit(fetch_post, i) for i in post_ids]
        return [f.result()["title"] for f in as_completed(futures)][::-1]


def titles_unordered(post_ids):
    return sorted(solution.fetch_titles(post_ids))


def titles_whole_posts(post_ids):
    with ThreadPoolExecutor(max_workers=len(post_ids)) as pool:
        return list(pool.map(fetch_post, post_ids))


def titles_typed_in(post_ids):
    return [data.POSTS[i - 1]["title"] for i in post_ids]


def titles_forgot_return(post_ids):
    solution.fetch_titles(post_ids)


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


def count_waits_for_each(task, ranges, workers):
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.submit(task, r).result() for r in ranges)


def count_constant(task, ranges, workers):
    return 28_000  # a number, not a computation


def count_forgot_return(task, ranges, workers):
    solution.count_primes_parallel(task, ranges, workers)


def polite_unbounded(user_ids, max_in_flight):
    with ThreadPoolExecutor(max_workers=len(user_ids)) as pool:
        return list(pool.map(fetch_user, user_ids))


def polite_sequential(user_ids, max_in_flight):
    return [fetch_user(i) for i in user_ids]


def polite_one_less(user_ids, max_in_flight):
    with ThreadPoolExecutor(max_workers=max_in_flight - 1) as pool:
        return list(pool.map(fetch_user, user_ids))


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
    verdict = checker(bad.starter)
    assert verdict.status == "not solved yet", str(verdict)
    assert "Hint:" in str(verdict)


@pytest.mark.parametrize("checker, answer, why", [
    (check.fetch_titles, titles_sequential, "one after another"),
    (check.fetch_titles, titles_two_threads, "too few threads"),
    (check.fetch_titles, titles_completion_order, "not in the order of post_ids"),
    (check.fetch_titles, titles_unordered, "not in the order of post_ids"),
    (check.fetch_titles, titles_whole_posts, "post['title']"),
    (check.fetch_titles, titles_typed_in, "fetch each post"),
    (check.fetch_titles, titles_forgot_return, "forget `return`"),
    (check.count_primes_parallel, count_on_threads, "GIL"),
    (check.count_primes_parallel, count_sequential, "one range after another"),
    (check.count_primes_parallel, count_with_lambda, "lambda"),
    (check.count_primes_parallel, count_one_process, "one at a time, in one worker process"),
    (check.count_primes_parallel, count_waits_for_each, "before you wait for any result"),
    (check.count_primes_parallel, count_constant, "without ever calling `task`"),
    (check.count_primes_parallel, count_forgot_return, "forget `return`"),
    (check.fetch_politely, polite_unbounded, "too many"),
    (check.fetch_politely, polite_sequential, "never saw more than 1 request"),
    (check.fetch_politely, polite_one_less, "you may use all 3"),
])
def test_wrong_answer_says_why(checker, answer, why):
    bad.assert_diagnosis(checker(answer), why)


def test_two_overlapping_threads_are_not_called_sequential():
    verdict = check.fetch_titles(titles_two_threads)
    assert "one after another" not in verdict.message, str(verdict)


def test_hints_point_the_way_without_the_code():
    for checker in (check.fetch_titles, check.count_primes_parallel, check.fetch_politely):
        hint = checker(bad.starter).hint
        for code in ("ThreadPoolExecutor(", "ProcessPoolExecutor(", "pool.map(", "max_workers="):
            assert code not in hint, f"{checker.__name__}'s hint gives away {code!r}: {hint}"


@pytest.mark.parametrize("checker, limit", [(check.fetch_titles, 12), (check.count_primes_parallel, 17),
                                            (check.fetch_politely, 12)])
@pytest.mark.parametrize("answer, why", bad.BAD_ANSWERS)
def test_bad_input_gives_one_clear_verdict(checker, limit, answer, why):
    bad.assert_one_clear_verdict(checker, answer, why, limit=limit)
