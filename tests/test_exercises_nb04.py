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


def starter(*args):
    raise NotImplementedError


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
    verdict = checker(starter)
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


def test_order_with_map_is_wrong():
    verdict = check.in_finish_order(order_with_map)
    assert verdict.status == "not right yet" and "input order" in verdict.message


def test_order_sequential_is_wrong():
    verdict = check.in_finish_order(order_sequential)
    assert verdict.status == "not right yet" and "one at a time" in verdict.message


def test_order_mismatched_items_is_wrong():
    verdict = check.in_finish_order(order_mismatched)
    assert verdict.status == "not right yet" and "another item's result" in verdict.message


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


def test_first_with_with_is_wrong():
    verdict = check.first_result(first_with_with)
    assert verdict.status == "not right yet" and "waited for the slow tasks" in verdict.message


def test_first_without_cancel_is_wrong():
    verdict = check.first_result(first_without_cancel)
    assert verdict.status == "not right yet" and "not cancelled" in verdict.message


def test_first_sequential_is_wrong():
    verdict = check.first_result(first_sequential)
    assert verdict.status == "not right yet" and "first task to finish" in verdict.message


# ------------------------------------------------------------------------------------ 04.3 wrong

def bounded_with_map(task, items, limit):
    with ThreadPoolExecutor(limit) as executor:
        return list(executor.map(task, items))


def bounded_too_many(task, items, limit):
    with ThreadPoolExecutor(limit * 3) as executor:
        return list(executor.map(task, items))


def bounded_sequential(task, items, limit):
    return [task(item) for item in items]


def test_bounded_with_map_reads_everything():
    verdict = check.bounded_run(bounded_with_map)
    assert verdict.status == "not right yet" and "before the first task finished" in verdict.message


def test_bounded_too_many_in_flight():
    verdict = check.bounded_run(bounded_too_many)
    assert verdict.status == "not right yet" and "more than limit" in verdict.message


def test_bounded_sequential_is_wrong():
    verdict = check.bounded_run(bounded_sequential)
    assert verdict.status == "not right yet" and "one at a time" in verdict.message


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
        verdict = check.bounded_run(bounded_in_batches)
        assert verdict.status == "not right yet", str(verdict)
        assert "in batches" in verdict.message and "idle" in verdict.message, str(verdict)


def test_bounded_constant_is_diagnosed():
    verdict = check.bounded_run(lambda task, items, limit: [i + 1000 for i in range(30)])
    assert verdict.status == "not right yet" and "none of the tasks ran" in verdict.message


def test_order_constant_is_diagnosed():
    verdict = check.in_finish_order(lambda task, items: [(i, i * i) for i in items])
    assert verdict.status == "not right yet" and "none of the tasks ran" in verdict.message


def test_first_constant_is_diagnosed():
    verdict = check.first_result(lambda task, items: (2, 200))
    assert verdict.status == "not right yet" and "none of the tasks ran" in verdict.message


@pytest.mark.parametrize("checker", [check.in_finish_order, check.first_result, check.bounded_run])
@pytest.mark.parametrize("answer, why", [
    (None, "expected a function, got None"),
    (lambda *a: 42, "42"),
    (bad.raises, "your code raised KeyError: 'boom'"),
    (bad.returns_none, "None"),
    (bad.generator, "a generator"),
    (bad.sleeps_30, "did not finish within"),
    (bad.starter, "Replace `raise NotImplementedError`"),
])
def test_bad_input_gives_one_clear_verdict(checker, answer, why):
    verdict = bad.run_bad_input(checker, answer, limit=18)
    assert why in verdict.message, str(verdict)
    assert "still running" not in verdict.message
