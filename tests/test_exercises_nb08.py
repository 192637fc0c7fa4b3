"""Every checker of notebook 08 on its worked solution, on the untouched starter, and on wrong answers."""

import asyncio

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
