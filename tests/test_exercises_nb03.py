"""The checkers of notebook 03 on the worked solutions, the untouched starters and wrong answers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import checker_support as bad
from futureslab import checks
from futureslab.checks import nb03 as check
from futureslab.solutions import nb03 as solution


# --------------------------------------------------------------------------------------- solutions

@pytest.mark.parametrize("exercise_id", ["03.1", "03.2", "03.3"])
def test_solution_is_registered(exercise_id):
    assert callable(checks.load_solution(exercise_id))


def test_solutions_pass():
    for checker, answer in [(check.run_with_progress, solution.run_with_progress),
                            (check.total_from_callbacks, solution.total_from_callbacks),
                            (check.run_until_failure, solution.run_until_failure)]:
        verdict = checker(answer)
        assert verdict.solved, str(verdict)


@pytest.mark.parametrize("checker", [check.run_with_progress, check.total_from_callbacks,
                                     check.run_until_failure])
def test_starter_is_not_solved_yet(checker):
    verdict = checker(bad.starter)
    assert verdict.status == "not solved yet", str(verdict)
    assert "NotImplementedError" in str(verdict)


# ------------------------------------------------------------------------------------ 03.1 wrong

def progress_sequential(task, items, report):
    results = []
    for i, item in enumerate(items, 1):
        results.append(task(item))
        report(i, len(items))
    return results


def progress_after_the_fact(task, items, report):
    with ThreadPoolExecutor(4) as executor:
        results = list(executor.map(task, items))
    for i in range(len(results)):
        report(i + 1, len(results))
    return results


def progress_from_main_thread(task, items, report):
    from concurrent.futures import as_completed
    with ThreadPoolExecutor(4) as executor:
        futures = [executor.submit(task, item) for item in items]
        for i, _ in enumerate(as_completed(futures), 1):
            report(i, len(items))
    return [f.result() for f in futures]


def progress_wrong_count(task, items, report):
    with ThreadPoolExecutor(4) as executor:
        futures = [executor.submit(task, item) for item in items]
        for f in futures:
            f.add_done_callback(lambda f: report(1, len(items)))
    return [f.result() for f in futures]


def progress_constant(task, items, report):
    return [0] * len(items)


def progress_wrong_results(task, items, report):
    with ThreadPoolExecutor(4) as executor:
        return [r + 1 for r in executor.map(task, items)]


def progress_unlocked(task, items, report):
    """The naive answer: count and report with no lock."""
    state = {"done": 0}

    def on_done(future):
        state["done"] += 1
        report(state["done"], len(items))

    with ThreadPoolExecutor(4) as executor:
        futures = [executor.submit(task, item) for item in items]
        for future in futures:
            future.add_done_callback(on_done)
    return [f.result() for f in futures]


def progress_report_outside_lock(task, items, report):
    """Counts under a lock, but report() from several threads at once: reports can arrive 3, 2."""
    lock, state = threading.Lock(), {"done": 0}

    def on_done(future):
        with lock:
            state["done"] += 1
            done = state["done"]
        report(done, len(items))

    with ThreadPoolExecutor(4) as executor:
        futures = [executor.submit(task, item) for item in items]
        for future in futures:
            future.add_done_callback(on_done)
    return [f.result() for f in futures]


@pytest.mark.parametrize("answer", [progress_unlocked, progress_report_outside_lock])
def test_progress_without_lock_is_rejected_every_time(answer):
    for _ in range(5):
        bad.assert_diagnosis(check.run_with_progress(answer), "threading.Lock")


# ------------------------------------------------------------------------------------ 03.2 wrong

def total_without_lock(task, items):
    state = {"total": 0}

    def add(future):
        state["total"] += future.result()

    with ThreadPoolExecutor(4) as executor:
        for item in items:
            executor.submit(task, item).add_done_callback(add)
    return state["total"]


def total_sequential(task, items):
    state = {"total": 0}
    lock = threading.Lock()
    for item in items:
        with ThreadPoolExecutor(1) as executor:
            def add(future):
                with lock:
                    state["total"] += future.result()
            executor.submit(task, item).add_done_callback(add)
    return state["total"]


def total_in_main_thread(task, items):
    with ThreadPoolExecutor(4) as executor:
        futures = [executor.submit(task, item) for item in items]
    return sum(f.result() for f in futures)


def test_total_without_lock_is_rejected_every_time():
    for _ in range(5):
        bad.assert_diagnosis(check.total_from_callbacks(total_without_lock), "lost", "Lock")


def total_returns_after_wait(task, items):
    """Locked, but reads the total as soon as wait() returns: the last callbacks may still run."""
    from concurrent.futures import wait
    lock, state = threading.Lock(), {"total": 0}

    def add(future):
        with lock:
            state["total"] = state["total"] + future.result()

    with ThreadPoolExecutor(4) as executor:
        futures = [executor.submit(task, item) for item in items]
        for future in futures:
            future.add_done_callback(add)
        wait(futures)
        return state["total"]  # read before the with block's exit waits for the workers


def test_total_read_right_after_wait_is_diagnosed_every_time():
    for _ in range(3):
        verdict = check.total_from_callbacks(total_returns_after_wait)
        bad.assert_diagnosis(verdict, "still adding", "wait() return")
        assert "Lock" not in verdict.message, str(verdict)


def total_constant(task, items):
    return 136


# ------------------------------------------------------------------------------------ 03.3 wrong

def labels_without_cancel(task, items):
    labels = {}
    with ThreadPoolExecutor(2) as executor:
        futures = {executor.submit(task, item): item for item in items}
        for f, item in futures.items():
            f.add_done_callback(lambda f, item=item: labels.__setitem__(
                item, "failed" if f.exception() else "ok"))
    return labels


def labels_calling_result(task, items):
    labels = {}
    futures = {}

    def on_done(f):
        item = futures[f]
        try:
            f.result()
            labels[item] = "ok"
        except ValueError:
            labels[item] = "failed"
            for other in futures:
                other.cancel()

    with ThreadPoolExecutor(2) as executor:
        for item in items:
            futures[executor.submit(task, item)] = item
        for f in list(futures):
            f.add_done_callback(on_done)
    return labels


def labels_sequential(task, items):
    labels = {}
    failed = False
    for item in items:
        if failed:
            labels[item] = "cancelled"
            continue
        try:
            task(item)
            labels[item] = "ok"
        except ValueError:
            labels[item] = "failed"
            failed = True
    return labels


def labels_constant(task, items):
    return {i: "ok" for i in items}


def test_labels_calling_result_hides_the_logged_tracebacks(capsys):
    verdict = check.run_until_failure(labels_calling_result)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "reported by the concurrent.futures logger" in verdict.message and "CancelledError" in \
        verdict.message


def test_slow_number_adds_like_a_number():
    log = []
    assert 1 + check.SlowNumber(2, log, pause=0) == 3
    assert len(log) == 1


def labels_many_workers(task, items):
    """Right, but on 8 threads: some tasks are already running when item 3 fails."""
    labels, item_of = {}, {}

    def on_done(f):
        if f.cancelled():
            labels[item_of[f]] = "cancelled"
        elif f.exception() is not None:
            labels[item_of[f]] = "failed"
            for other in item_of:
                other.cancel()
        else:
            labels[item_of[f]] = "ok"

    with ThreadPoolExecutor(8) as executor:
        for item in items:
            item_of[executor.submit(task, item)] = item
        for f in list(item_of):
            f.add_done_callback(on_done)
    return labels


def test_labels_with_more_workers_still_pass():
    verdict = check.run_until_failure(labels_many_workers)
    assert verdict.solved, str(verdict)


# ---------------------------------------------------------------------- wrong answers and bad input

@pytest.mark.parametrize("checker, answer, why", [
    (check.run_with_progress, progress_sequential, "one at a time"),
    (check.run_with_progress, progress_after_the_fact, "not live progress"),
    (check.run_with_progress, progress_from_main_thread, "add_done_callback"),
    (check.run_with_progress, progress_wrong_count, "threading.Lock"),
    (check.run_with_progress, progress_constant, "none of the tasks ran"),
    (check.run_with_progress, progress_wrong_results, "input order"),
    (check.total_from_callbacks, total_constant, "none of the tasks ran"),
    (check.total_from_callbacks, bad.returns_none, "got None"),
    (check.total_from_callbacks, total_sequential, "one at a time"),
    (check.total_from_callbacks, total_in_main_thread, "add_done_callback"),
    (check.run_until_failure, labels_without_cancel, "cancel every future"),
    (check.run_until_failure, labels_calling_result, "CancelledError"),
    (check.run_until_failure, labels_constant, "none of the tasks ran"),
    (check.run_until_failure, labels_sequential, "one at a time"),
])
def test_wrong_answer_says_why(checker, answer, why):
    bad.assert_diagnosis(checker(answer), why)


@pytest.mark.parametrize("checker", [check.run_with_progress, check.total_from_callbacks,
                                     check.run_until_failure])
@pytest.mark.parametrize("answer, why", bad.BAD_ANSWERS)
def test_bad_input_gives_one_clear_verdict(checker, answer, why):
    bad.assert_one_clear_verdict(checker, answer, why, limit=18)
