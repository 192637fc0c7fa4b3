"""The checkers of notebook 04 on the worked solutions, the untouched starters and wrong answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed

import itertools
from concurrent.futures import wait

import pytest

import checker_support as bad
from futureslab import checks
from futureslab.checks import nb04 as check
from futureslab.solutions import nb04 as solution


@pytest.mark.parametrize("exercise_id", ["04.1", "04.2", "04.3"])
def test_solution_is_registered(exercise_id):
    assert callable(checks.load_solution(exercise_id))


def test_solutions_pass():
    for checker, answer in [(check.in_finish_order, solution.in_finish_order),
                            (check.first_result, solution.first_result),
                            (check.bounded_run, solution.bounded_run)]:
        verdict = checker(answer)
        assert verdict.solved, str(verdict)


@pytest.mark.parametrize("checker", [check.in_finish_order, check.first_result, check.bounded_run])
def test_starter_is_not_solved_yet(checker):
    verdict = checker(bad.starter)
    assert verdict.status == "not solved yet", str(verdict)


def test_bounded_run_solution_rejects_bad_limit():
    with pytest.raises(ValueError, match="limit"):
        solution.bounded_run(abs, [1], 0)


# ------------------------------------------------------------------------------------ 04.1 wrong

def order_with_map(task, items):
    with ThreadPoolExecutor(8) as executor:
        return list(zip(items, executor.map(task, items)))


def order_sequential(task, items):
    return [(item, task(item)) for item in items]


def order_mismatched(task, items):
    with ThreadPoolExecutor(8) as executor:
        futures = [executor.submit(task, item) for item in items]
        return [(item, f.result()) for item, f in zip(items, as_completed(futures))]


def order_constant(task, items):
    return [(i, i * i) for i in items]


# ------------------------------------------------------------------------------------ 04.2 wrong

def first_with_with(task, items):
    with ThreadPoolExecutor(4) as executor:
        item_of = {executor.submit(task, item): item for item in items}
        future = next(as_completed(item_of))
        return item_of[future], future.result()


def first_without_cancel(task, items):
    executor = ThreadPoolExecutor(4)
    item_of = {executor.submit(task, item): item for item in items}
    future = next(as_completed(item_of))
    executor.shutdown(wait=False)
    return item_of[future], future.result()


def first_sequential(task, items):
    return items[0], task(items[0])


def first_constant(task, items):
    return 2, 200


# ------------------------------------------------------------------------------------ 04.3 wrong

def bounded_with_map(task, items, limit):
    with ThreadPoolExecutor(limit) as executor:
        return list(executor.map(task, items))


def bounded_too_many(task, items, limit):
    with ThreadPoolExecutor(limit * 3) as executor:
        return list(executor.map(task, items))


def bounded_sequential(task, items, limit):
    return [task(item) for item in items]


def bounded_constant(task, items, limit):
    return [i + 1000 for i in range(30)]


def bounded_in_batches(task, items, limit):
    """Reads `limit` items, waits for the whole batch, then the next: workers sit idle."""
    items, results = iter(items), []
    with ThreadPoolExecutor(limit) as executor:
        while True:
            batch = [executor.submit(task, item) for item in itertools.islice(items, limit)]
            if not batch:
                return results
            wait(batch)
            results.extend(f.result() for f in batch)


def test_bounded_in_batches_is_rejected_with_idle_workers():
    for _ in range(3):
        bad.assert_diagnosis(check.bounded_run(bounded_in_batches), "in batches", "idle")


# ---------------------------------------------------------------------- wrong answers and bad input

@pytest.mark.parametrize("checker, answer, why", [
    (check.in_finish_order, order_with_map, "input order"),
    (check.in_finish_order, order_sequential, "one at a time"),
    (check.in_finish_order, order_mismatched, "another item's result"),
    (check.in_finish_order, order_constant, "none of the tasks ran"),
    (check.first_result, first_with_with, "waited for the slow tasks"),
    (check.first_result, first_without_cancel, "not cancelled"),
    (check.first_result, first_sequential, "first task to finish"),
    (check.first_result, first_constant, "none of the tasks ran"),
    (check.bounded_run, bounded_with_map, "before the first task finished"),
    (check.bounded_run, bounded_too_many, "more than limit"),
    (check.bounded_run, bounded_sequential, "one at a time"),
    (check.bounded_run, bounded_constant, "none of the tasks ran"),
])
def test_wrong_answer_says_why(checker, answer, why):
    bad.assert_diagnosis(checker(answer), why)


@pytest.mark.parametrize("checker", [check.in_finish_order, check.first_result, check.bounded_run])
@pytest.mark.parametrize("answer, why", bad.BAD_ANSWERS)
def test_bad_input_gives_one_clear_verdict(checker, answer, why):
    bad.assert_one_clear_verdict(checker, answer, why, limit=18)
