"""Worked solutions to the exercises of notebook 08 (asyncio and executors). Try them yourself first!"""

from __future__ import annotations

import asyncio

from futureslab.tasks import count_primes_in, fetch_post, prime_ranges


async def fetch_posts_to_thread(ids):
    """Fetch every post with the blocking ``fetch_post``, each call on a thread, all at once."""
    return await asyncio.gather(*(asyncio.to_thread(fetch_post, i) for i in ids))


async def count_primes_async(limit, executor):
    """Count the primes below ``limit`` on ``executor`` without blocking the event loop."""
    loop = asyncio.get_running_loop()
    jobs = [loop.run_in_executor(executor, count_primes_in, bounds)
            for bounds in prime_ranges(limit, chunks=4)]
    return sum(await asyncio.gather(*jobs))


async def fetch_posts_bounded(base_url, ids, limit=5):
    """Fetch ``/posts/<id>`` for every id with aiohttp, at most ``limit`` requests at a time."""
    import aiohttp

    semaphore = asyncio.Semaphore(limit)
    # trust_env=False: never send requests to our own 127.0.0.1 server through a proxy.
    async with aiohttp.ClientSession(trust_env=False) as session:
        async def one(post_id):
            async with semaphore:
                async with session.get(f"{base_url}/posts/{post_id}") as response:
                    response.raise_for_status()
                    return await response.json()

        return await asyncio.gather(*(one(i) for i in ids))
