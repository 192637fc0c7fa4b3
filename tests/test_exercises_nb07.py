"""Every checker of notebook 07 on its worked solution, on the untouched starter, and on wrong answers."""

from concurrent.futures import ProcessPoolExecutor

from futureslab.checks import nb07 as check
from futureslab.checks import load_solution
from futureslab.tasks import count_primes_in, prime_ranges
from futureslab.timing import cpu_count


def starter(*args, **kwargs):
    raise NotImplementedError


# ---- wrong answers (module level: the process-pool ones must be picklable by reference)

def sweep_sequential(task, items, workers_list):
    import time
    times = {}
    for n in workers_list:
        t0 = time.perf_counter()
        for item in items:
            task(item)
        times[n] = time.perf_counter() - t0
    return times


def pick_largest(run, candidates, tolerance=0.10):
    for n in candidates:  # measures, then ignores the measurements
        run(n)
    return max(candidates)


def pick_without_measuring(run, candidates, tolerance=0.10):
    return 8


def count_primes_sequential(limit, task=count_primes_in):
    return sum(task(r) for r in prime_ranges(limit, 4))


def count_primes_oversubscribed(limit, task=count_primes_in):
    workers = 8 * cpu_count()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(task, prime_ranges(limit, chunks=2 * workers)))


def count_primes_off_by_one(limit, task=count_primes_in):
    return load_solution("07.3")(limit, task) + 1


# ---- tests

def test_solutions_pass():
    for name, ex in [("sweep", "07.1"), ("pick_workers", "07.2"), ("count_primes_fast", "07.3")]:
        verdict = getattr(check, name)(load_solution(ex))
        assert verdict.solved, str(verdict)


def test_starters_are_not_solved_yet():
    for name in ["sweep", "pick_workers", "count_primes_fast"]:
        verdict = getattr(check, name)(starter)
        assert verdict.status == "not solved yet", str(verdict)


def test_sequential_sweep_is_caught():
    verdict = check.sweep(sweep_sequential)
    assert not verdict and "at the same moment" in verdict.message


def test_pick_largest_is_caught():
    verdict = check.pick_workers(pick_largest)
    assert not verdict and "nothing to do" in verdict.message


def test_pick_without_measuring_is_caught():
    verdict = check.pick_workers(pick_without_measuring)
    assert not verdict and "never measured" in verdict.message


def test_sequential_primes_are_caught():
    verdict = check.count_primes_fast(count_primes_sequential)
    assert not verdict and "ProcessPoolExecutor" in verdict.message


def test_oversubscribed_pool_is_caught():
    verdict = check.count_primes_fast(count_primes_oversubscribed)
    assert not verdict and "extra processes" in verdict.message


def test_wrong_count_is_caught():
    verdict = check.count_primes_fast(count_primes_off_by_one)
    assert not verdict and "25997 primes" in verdict.message


def test_whoami_after_waits_then_names_the_worker():
    import os
    import time

    import pytest

    from futureslab.tasks import whoami_after
    t0 = time.perf_counter()
    pid, thread = whoami_after(0.02)
    assert time.perf_counter() - t0 >= 0.02 and pid == os.getpid() and thread == "MainThread"
    with pytest.raises(ValueError, match="seconds"):
        whoami_after(-1)
