"""Every checker of notebook 09 on its worked solution, on the untouched starter, and on wrong answers."""

import logging

import pytest

from futureslab.checks import load_solution
from futureslab.checks import nb09 as check
from futureslab.tasks import count_primes_in, fetch_post, sleep_then_return


def starter(*args, **kwargs):
    raise NotImplementedError


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None, silence_logs=logging.ERROR,
                                  local_directory=str(tmp_path_factory.mktemp("dask"))) as cluster, \
            distributed.Client(cluster) as c:
        yield c


# ---- wrong answers

def first_n_without_cancel(ids, n):
    from concurrent.futures import ThreadPoolExecutor, as_completed
    with ThreadPoolExecutor(max_workers=4) as pool:  # `with` waits for all 40 requests
        futures = [pool.submit(fetch_post, i) for i in ids]
        results = []
        for f in as_completed(futures):
            results.append(f.result())
            if len(results) == n:
                break
    return results


def total_in_the_caller(executor, ranges, task=count_primes_in):
    return sum(task(r) for r in ranges)


def total_one_at_a_time(executor, ranges, task=count_primes_in):
    return sum(executor.submit(task, r).result() for r in ranges)


def in_submission_order(client, delays):
    return client.gather([client.submit(sleep_then_return, d, d) for d in delays])


# ---- tests

def test_solutions_pass(client):
    assert check.first_n_then_stop(load_solution("09.1")).solved
    assert check.total_primes(load_solution("09.2")).solved
    verdict = check.fastest_first(load_solution("09.3"), client)
    assert verdict.solved, str(verdict)


def test_starters_are_not_solved_yet(client):
    assert check.first_n_then_stop(starter).status == "not solved yet"
    assert check.total_primes(starter).status == "not solved yet"
    assert check.fastest_first(starter, client).status == "not solved yet"


def test_no_cancel_is_caught():
    verdict = check.first_n_then_stop(first_n_without_cancel)
    assert not verdict and "cancel_futures" in verdict.message


def test_ignoring_the_executor_is_caught():
    verdict = check.total_primes(total_in_the_caller)
    assert not verdict and "calling thread" in verdict.message


def test_one_at_a_time_is_caught():
    verdict = check.total_primes(total_one_at_a_time)
    assert not verdict and "one after another" in verdict.message


def test_submission_order_is_caught(client):
    verdict = check.fastest_first(in_submission_order, client)
    assert not verdict and "submission order" in verdict.message
