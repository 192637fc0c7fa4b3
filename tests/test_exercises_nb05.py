"""Notebook 05's checkers: solved on the worked solutions, 'not solved yet' on the starters, and a
clear verdict on typical wrong answers. (Wrong answers that use a process pool are module level.)"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed

import pytest
import requests

from futureslab.checks import nb05 as check
from futureslab.solutions import nb05 as solution


def starter(*args):
    raise NotImplementedError


# ------------------------------------------------------------------ wrong answers (module level)

def add_ten_with_lambda(numbers, add):
    with ProcessPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda n: add(n, 10), numbers))


def add_ten_here(numbers, add):
    return [add(n, 10) for n in numbers]


def add_ten_off_by_one(numbers, add):
    with ProcessPoolExecutor(max_workers=2) as pool:
        return list(pool.map(add, numbers, [11] * len(numbers)))


# A helper defined in `__main__`, as a notebook cell defines it: under fork the workers are copies of
# this process and find it; under spawn and forkserver they cannot. Either way it is not portable.
_MAIN_HELPER = """
def add_ten_helper_from_main(pair):
    add, n = pair
    return add(n, 10)
"""


def add_ten_with_main_helper(numbers, add):
    import sys

    main = vars(sys.modules["__main__"])
    exec(_MAIN_HELPER, main)  # noqa: S102 - the point is a function whose module is __main__
    helper = main["add_ten_helper_from_main"]
    assert helper.__module__ == "__main__"
    with ProcessPoolExecutor(max_workers=2) as pool:
        return list(pool.map(helper, [(add, n) for n in numbers]))


def stop_sequentially(items, task, workers):
    results = {}
    for item in items:
        try:
            results[item] = task(item)
        except Exception as exc:
            return results, exc
    return results, None


def never_stop(items, task, workers):
    results, error = {}, None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(task, item): item for item in items}
        for future in as_completed(futures):
            try:
                results[futures[future]] = future.result()
            except Exception as exc:
                error = error or exc
    return results, error


def titles_default_session(base_url, post_ids, workers):
    with requests.Session() as session:
        session.trust_env = False
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda i: session.get(f"{base_url}/posts/{i}", timeout=10).json()["title"],
                                 post_ids))


def titles_plain_get(base_url, post_ids, workers):
    def title(i):
        return requests.get(f"{base_url}/posts/{i}", timeout=10,
                            proxies={"http": None, "https": None}).json()["title"]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(title, post_ids))


def titles_one_at_a_time(base_url, post_ids, workers):
    with requests.Session() as session:
        session.trust_env = False
        return [session.get(f"{base_url}/posts/{i}", timeout=10).json()["title"] for i in post_ids]


# -------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("checker, answer", [
    (check.add_ten_in_processes, solution.add_ten_in_processes),
    (check.stop_at_first_error, solution.stop_at_first_error),
    (check.fetch_titles, solution.fetch_titles),
    (check.fetch_titles, solution.fetch_titles_session_per_thread),
])
def test_solutions_pass(checker, answer):
    verdict = checker(answer)
    assert verdict.solved, str(verdict)


@pytest.mark.parametrize("checker", [check.add_ten_in_processes, check.stop_at_first_error,
                                     check.fetch_titles])
def test_starters_are_not_solved_yet(checker):
    verdict = checker(starter)
    assert verdict.status == "not solved yet", str(verdict)


@pytest.mark.parametrize("checker, answer, words", [
    (check.add_ten_in_processes, add_ten_with_lambda, "pickling error"),
    (check.add_ten_in_processes, add_ten_here, "ran in this process"),
    (check.add_ten_in_processes, add_ten_off_by_one, "expected"),
    (check.add_ten_in_processes, add_ten_with_main_helper, "defined in the notebook"),
    (check.stop_at_first_error, stop_sequentially, "one after another"),
    (check.stop_at_first_error, never_stop, "cancelled"),
    (check.fetch_titles, titles_default_session, "Connection pool is full"),
    (check.fetch_titles, titles_one_at_a_time, "in flight"),
    (check.fetch_titles, titles_plain_get, "not reused"),
])
def test_wrong_answers_say_why(checker, answer, words):
    verdict = checker(answer)
    assert verdict.status == "not right yet", str(verdict)
    assert words in verdict.message, str(verdict)


def test_solution_is_printable(capsys):
    from futureslab import checks

    checks.solution("05.2")
    assert "cancel_futures=True" in capsys.readouterr().out
