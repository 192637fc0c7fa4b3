"""Every checker of notebook 07 on its worked solution, on the untouched starter, on the wrong answers
learners write, and on bad input."""

import math
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

import checker_support as bad
from futureslab.checks import load_solution
from futureslab.checks import nb07 as check
from futureslab.cores import granted_cores
from futureslab.tasks import count_primes_in, prime_ranges


# ---- wrong answers (module level: the process-pool ones must be picklable by reference)

def sweep_sequential(task, items, workers_list):
    times = {}
    for n in workers_list:
        t0 = time.perf_counter()
        for item in items:
            task(item)
        times[n] = time.perf_counter() - t0
    return times


def sweep_lazy_map(task, items, workers_list):
    times = {}
    for n in workers_list:
        ex = ThreadPoolExecutor(max_workers=n)
        t0 = time.perf_counter()
        ex.map(task, items)  # results never awaited: the clock stops at once
        times[n] = time.perf_counter() - t0
        ex.shutdown(wait=True)
    return times


def sweep_on_processes(task, items, workers_list):
    times = {}
    for n in workers_list:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=n) as ex:
            list(ex.map(task, items))
        times[n] = time.perf_counter() - t0
    return times


def sweep_typed_in(task, items, workers_list):
    return {1: 0.4, 2: 0.2, 8: 0.05}


def sweep_forgot_return(task, items, workers_list):
    load_solution("07.1")(task, items, workers_list)


def pick_largest(run, candidates, tolerance=0.10):
    for n in candidates:  # measures, then ignores the measurements
        run(n)
    return max(candidates)


def pick_without_measuring(run, candidates, tolerance=0.10):
    return 8


def pick_smallest(run, candidates, tolerance=0.10):
    for n in candidates:
        run(n)
    return min(candidates)


def pick_forgot_return(run, candidates, tolerance=0.10):
    load_solution("07.2")(run, candidates, tolerance)


def count_primes_sequential(limit, task=count_primes_in):
    return sum(task(r) for r in prime_ranges(limit, 4))


def count_primes_on_threads(limit, task=count_primes_in):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return sum(pool.map(task, prime_ranges(limit, 8)))


def count_primes_oversubscribed(limit, task=count_primes_in):
    workers = 8 * max(1, math.ceil(granted_cores().cores))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(task, prime_ranges(limit, chunks=2 * workers)))


def count_primes_off_by_one(limit, task=count_primes_in):
    return load_solution("07.3")(limit, task) + 1


def count_primes_typed_in(limit, task=count_primes_in):
    return 25_997


# ---- tests

@pytest.mark.parametrize("name, ex", [("sweep", "07.1"), ("pick_workers", "07.2"), ("count_primes_fast", "07.3")])
def test_solutions_pass(name, ex):
    verdict = getattr(check, name)(load_solution(ex))
    assert verdict.solved, str(verdict)


@pytest.mark.parametrize("name", ["sweep", "pick_workers", "count_primes_fast"])
def test_starters_are_not_solved_yet(name):
    verdict = getattr(check, name)(bad.starter)
    assert verdict.status == "not solved yet", str(verdict)
    assert "Hint:" in str(verdict)


@pytest.mark.parametrize("checker, answer, why", [
    (check.sweep, sweep_sequential, "at the same moment"),
    (check.sweep, sweep_lazy_map, "cannot take"),
    (check.sweep, sweep_on_processes, "ThreadPoolExecutor"),
    (check.sweep, sweep_typed_in, "without ever running `task`"),
    (check.sweep, sweep_forgot_return, "forget `return`"),
    (check.pick_workers, pick_largest, "nothing to do"),
    (check.pick_workers, pick_without_measuring, "never measured"),
    (check.pick_workers, pick_smallest, "slower than 8"),
    (check.pick_workers, pick_forgot_return, "forget `return`"),
    (check.count_primes_fast, count_primes_sequential, "ProcessPoolExecutor"),
    (check.count_primes_fast, count_primes_on_threads, "ProcessPoolExecutor"),
    (check.count_primes_fast, count_primes_oversubscribed, "extra processes"),
    (check.count_primes_fast, count_primes_off_by_one, "25997 primes"),
    (check.count_primes_fast, count_primes_typed_in, "without calling the `task`"),
])
def test_wrong_answer_says_why(checker, answer, why):
    bad.assert_diagnosis(checker(answer), why)


def test_hints_point_the_way_without_the_code():
    for checker in (check.sweep, check.pick_workers, check.count_primes_fast):
        hint = checker(bad.starter).hint
        for code in ("ThreadPoolExecutor(", "ProcessPoolExecutor(", ".map(", "max_workers=", "measure("):
            assert code not in hint, f"{checker.__name__}'s hint gives away {code!r}: {hint}"


@pytest.mark.parametrize("checker, limit", [(check.sweep, 12), (check.pick_workers, 17),
                                            (check.count_primes_fast, 22)])
@pytest.mark.parametrize("answer, why", bad.BAD_ANSWERS)
def test_bad_input_gives_one_clear_verdict(checker, limit, answer, why):
    bad.assert_one_clear_verdict(checker, answer, why, limit=limit)


def test_whoami_after_waits_then_names_the_worker():
    import os

    from futureslab.tasks import whoami_after
    t0 = time.perf_counter()
    pid, thread = whoami_after(0.02)
    assert time.perf_counter() - t0 >= 0.02 and pid == os.getpid() and thread == "MainThread"
    with pytest.raises(ValueError, match="seconds"):
        whoami_after(-1)
