"""Every checker of notebook 08 on its worked solution, on the untouched starter, and on wrong answers."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import checker_support as bad
from futureslab.checks import load_solution
from futureslab.checks import nb08 as check
from futureslab.tasks import count_primes, fetch_post


async def starter(*args, **kwargs):
    raise NotImplementedError


# ---- wrong answers

async def fetch_one_by_one(ids):
    return [await asyncio.to_thread(fetch_post, i) for i in ids]


def fetch_not_async(ids):
    return [fetch_post(i) for i in ids]


async def count_in_the_loop(limit, executor):
    return count_primes(0, limit)  # blocks the event loop


async def count_on_a_thread_not_the_executor(limit, executor):
    return await asyncio.to_thread(count_primes, 0, limit)


async def fetch_unbounded(base_url, ids, limit=5):
    import aiohttp

    async with aiohttp.ClientSession(trust_env=False) as session:
        async def one(i):
            async with session.get(f"{base_url}/posts/{i}") as r:
                return await r.json()
        return await asyncio.gather(*(one(i) for i in ids))


# ---- tests

def test_solutions_pass():
    for name, ex in [("fetch_posts_to_thread", "08.1"), ("count_primes_async", "08.2"),
                     ("fetch_posts_bounded", "08.3")]:
        verdict = getattr(check, name)(load_solution(ex))
        assert verdict.solved, str(verdict)


def test_starters_are_not_solved_yet():
    for name in ["fetch_posts_to_thread", "count_primes_async", "fetch_posts_bounded"]:
        verdict = getattr(check, name)(starter)
        assert verdict.status == "not solved yet", str(verdict)


def test_sequential_awaits_are_caught():
    verdict = check.fetch_posts_to_thread(fetch_one_by_one)
    assert not verdict and "one after" in verdict.message


def test_plain_function_is_caught():
    verdict = check.fetch_posts_to_thread(fetch_not_async)
    assert not verdict and "async def" in verdict.message


def test_blocking_the_loop_is_caught():
    verdict = check.count_primes_async(count_in_the_loop)
    assert not verdict and "never used" in verdict.message


def test_ignoring_the_executor_is_caught():
    verdict = check.count_primes_async(count_on_a_thread_not_the_executor)
    assert not verdict and "never used" in verdict.message


def test_unbounded_requests_are_caught():
    verdict = check.fetch_posts_bounded(fetch_unbounded)
    assert not verdict and "Semaphore" in verdict.message


async def wait_for_the_pool_in_the_loop(limit, executor):
    from futureslab.tasks import count_primes_in
    return executor.submit(count_primes_in, (0, limit)).result()  # .result() blocks the loop


def test_waiting_in_the_loop_is_caught():
    verdict = check.count_primes_async(wait_for_the_pool_in_the_loop)
    assert not verdict and "froze" in verdict.message


async def fetch_blocking_map(ids):
    """Overlapped on threads, but the coroutine blocks its loop while it waits for pool.map."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(fetch_post, ids))


def test_blocking_map_inside_async_def_is_caught():
    verdict = check.fetch_posts_to_thread(fetch_blocking_map)
    assert not verdict and "froze" in verdict.message, str(verdict)
    assert "stayed free" not in verdict.message


async def fetch_constant(ids):
    return [{"id": i} for i in ids]


def test_constant_posts_are_caught():
    verdict = check.fetch_posts_to_thread(fetch_constant)
    assert not verdict and "no request reached the server" in verdict.message, str(verdict)


async def count_constant(limit, executor):
    return 17_984


def test_constant_count_is_caught():
    verdict = check.count_primes_async(count_constant)
    assert not verdict and "never used" in verdict.message, str(verdict)


def test_success_message_is_backed_by_the_heartbeat():
    verdict = check.fetch_posts_to_thread(load_solution("08.1"))
    assert verdict.solved and "longest pause" in verdict.message, str(verdict)


CHECKERS = [check.fetch_posts_to_thread, check.count_primes_async, check.fetch_posts_bounded]


@pytest.mark.parametrize("checker", CHECKERS)
@pytest.mark.parametrize("answer, why", [
    (None, "expected an `async def` function, got None"),
    (lambda *a, **k: 42, "async def"),
    (bad.raises, "async def"),
    (bad.generator, "async def"),
    (bad.async_raises, "your code raised KeyError: 'boom'"),
    (bad.async_returns_none, "None"),
    (bad.async_sleeps_30, "did not finish within"),
    (bad.async_starter, "Replace `raise NotImplementedError`"),
])
def test_bad_input_gives_one_clear_verdict(checker, answer, why):
    verdict = bad.run_bad_input(checker, answer, limit=25)
    assert why in verdict.message, str(verdict)
    assert "still running" not in verdict.message


def test_a_blocking_answer_that_cannot_be_stopped_is_named(monkeypatch):
    """A coroutine stuck in time.sleep cannot be cancelled: the verdict says so and how to stop it."""
    import futureslab.checks as toolkit

    async def stuck(ids):
        time.sleep(4)

    monkeypatch.setattr(toolkit, "GRACE", 0.2)
    t0 = time.perf_counter()
    verdict = toolkit.run_coroutine_with_timeout  # the checker's own timeout is 20 s: call it direct
    with pytest.raises(toolkit.Wrong, match="still running in the background.*restart the kernel"):
        verdict(stuck, [1], timeout=1)
    assert time.perf_counter() - t0 < 3
    time.sleep(4)  # let it end, so nothing is left behind
