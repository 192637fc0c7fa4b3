"""Every checker of notebook 09 on its worked solution, on the untouched starter, on the wrong answers
learners write, and on bad input (one clear verdict within the time limit, nothing left running)."""

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed

import pytest

import checker_support as bad
from futureslab.checks import load_solution
from futureslab.checks import nb09 as check
from futureslab.tasks import count_primes_in, fetch_post, sleep_then_return

LIMIT = check.TIME_LIMIT + 5  # the verdict, including giving up on a hung answer


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A cluster shaped like the notebook's (2 workers of 1 thread), in threads to start fast. Dask's
    scratch space and its lock files go into a temporary folder (not the system's temp dir)."""
    distributed = pytest.importorskip("distributed")
    import dask

    scratch = str(tmp_path_factory.mktemp("dask"))
    with dask.config.set({"temporary-directory": scratch}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                     dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            distributed.Client(cluster) as c:
        yield c


# ---- wrong answers learners write

def first_n_without_cancel(ids, n):
    with ThreadPoolExecutor(max_workers=4) as pool:  # `with` waits for all 40 requests
        futures = [pool.submit(fetch_post, i) for i in ids]
        results = []
        for f in as_completed(futures):
            results.append(f.result())
            if len(results) == n:
                break
    return results


def first_n_one_thread_per_id(ids, n):
    pool = ThreadPoolExecutor(max_workers=len(ids))  # nothing queued: nothing to cancel
    try:
        futures = [pool.submit(fetch_post, i) for i in ids]
        return [f.result() for f in list(as_completed(futures))[:n]]
    finally:
        pool.shutdown(cancel_futures=True)


def first_n_sequential(ids, n):
    return [fetch_post(i) for i in ids[:n]]


def first_n_returns_futures(ids, n):
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        futures = [pool.submit(fetch_post, i) for i in ids]
        return [f for f, _ in zip(as_completed(futures), range(n))]
    finally:
        pool.shutdown(cancel_futures=True)


def first_n_made_up(ids, n):
    return [{"id": i} for i in ids[:n]]


def total_in_the_caller(executor, ranges, task=count_primes_in):
    return sum(task(r) for r in ranges)


def total_one_at_a_time(executor, ranges, task=count_primes_in):
    return sum(executor.submit(task, r).result() for r in ranges)


def total_ignores_task(executor, ranges, task=count_primes_in):
    return sum(f.result() for f in as_completed([executor.submit(count_primes_in, r) for r in ranges]))


def total_returns_future(executor, ranges, task=count_primes_in):
    return executor.submit(sum, [task(r) for r in ranges])


def total_twice(executor, ranges, task=count_primes_in):
    list(executor.map(task, ranges))
    return sum(f.result() for f in as_completed([executor.submit(task, r) for r in ranges]))


def total_constant(executor, ranges, task=count_primes_in):
    return 17984


def in_submission_order(client, delays):
    return client.gather([client.submit(sleep_then_return, d, d) for d in delays])


def in_a_loop_over_futures(client, delays):
    futures = [client.submit(sleep_then_return, d, d) for d in delays]
    return [f.result() for f in futures]


def sorted_results(client, delays):
    return sorted(client.gather([client.submit(sleep_then_return, d, d) for d in delays]))


def one_after_another(client, delays):
    return [client.submit(sleep_then_return, d, d).result() for d in delays]


def made_up_order(client, delays):
    return sorted(delays)


def standard_as_completed(client, delays):  # fails: Dask futures are not concurrent.futures futures
    return [f.result() for f in as_completed([client.submit(sleep_then_return, d, d) for d in delays])]


def returns_dask_futures(client, delays):
    from distributed import as_completed as dask_as_completed
    return list(dask_as_completed([client.submit(sleep_then_return, d, d) for d in delays]))


# ---- tests

def test_solutions_pass(client):
    assert check.first_n_then_stop(load_solution("09.1")).solved
    assert check.total_primes(load_solution("09.2")).solved
    verdict = check.fastest_first(load_solution("09.3"), client)
    assert verdict.solved, str(verdict)


def test_starters_are_not_solved_yet(client):
    assert check.first_n_then_stop(bad.starter).status == "not solved yet"
    assert check.total_primes(bad.starter).status == "not solved yet"
    assert check.fastest_first(bad.starter, client).status == "not solved yet"


@pytest.mark.parametrize("answer, why", [
    (first_n_without_cancel, "queued ones still ran"),
    (first_n_one_thread_per_id, "use a pool of 4 threads"),
    (first_n_sequential, "one at a time"),
    (first_n_returns_futures, "you returned futures"),
    (first_n_made_up, "no request reached the server"),
])
def test_first_n_wrong_answers_say_why(answer, why):
    verdict = check.first_n_then_stop(answer)
    assert not verdict and why in verdict.message, str(verdict)


@pytest.mark.parametrize("answer, why", [
    (total_in_the_caller, "calling thread"),
    (total_one_at_a_time, "one after another"),
    (total_ignores_task, "never called"),
    (total_returns_future, "you returned a future"),
    (total_twice, "run it once per range"),
    (total_constant, "never called"),
])
def test_total_primes_wrong_answers_say_why(answer, why):
    verdict = check.total_primes(answer)
    assert not verdict and why in verdict.message, str(verdict)


@pytest.mark.parametrize("answer, why", [
    (in_submission_order, "in the order you submitted them"),
    (in_a_loop_over_futures, "in the order you submitted them"),
    (sorted_results, "sorting the results"),
    (one_after_another, "one after another"),
    (made_up_order, "before the"),
    (standard_as_completed, "your code raised AttributeError"),
    (returns_dask_futures, "you returned futures"),
])
def test_fastest_first_wrong_answers_say_why(client, answer, why):
    verdict = check.fastest_first(answer, client)
    assert not verdict and why in verdict.message, str(verdict)


def test_fastest_first_needs_a_client():
    verdict = check.fastest_first(load_solution("09.3"), None)
    assert not verdict and "pass the notebook's Dask client" in verdict.message, str(verdict)


BAD_INPUTS = [
    (None, "expected a function, got None"),
    (lambda *a, **k: 42, "42"),
    (bad.raises, "your code raised KeyError: 'boom'"),
    (bad.returns_none, "None"),
    (bad.generator, "a generator"),
    (bad.sleeps_30, "did not finish within"),
    (bad.starter, "Replace `raise NotImplementedError`"),
]


@pytest.mark.parametrize("answer, why", BAD_INPUTS)
@pytest.mark.parametrize("name", ["first_n_then_stop", "total_primes"])
def test_bad_input_gives_one_clear_verdict(name, answer, why):
    verdict = bad.run_bad_input(getattr(check, name), answer, limit=LIMIT)
    assert why in verdict.message, str(verdict)


@pytest.mark.parametrize("answer, why", BAD_INPUTS)
def test_bad_input_on_the_cluster_gives_one_clear_verdict(client, answer, why):
    verdict = bad.run_bad_input(lambda a: check.fastest_first(a, client), answer, limit=LIMIT)
    assert why in verdict.message, str(verdict)
