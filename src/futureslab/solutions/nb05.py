"""Worked solutions to notebook 05's exercises (pitfalls)."""

from __future__ import annotations

import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from functools import partial


def add_ten_in_processes(numbers, add):
    # partial(add, b=10) pickles (add is module level); a lambda would not.
    # pool.map(add, numbers, [10] * len(numbers)) works as well.
    with ProcessPoolExecutor() as pool:
        return list(pool.map(partial(add, b=10), numbers))


def stop_at_first_error(items, task, workers):
    results, error = {}, None
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(task, item): item for item in items}
        for future in as_completed(futures):
            try:
                results[futures[future]] = future.result()
            except Exception as exc:
                error = exc
                break
    finally:
        # Cancel what has not started; wait for the (few) running tasks to end.
        pool.shutdown(wait=True, cancel_futures=True)
    # Tasks that were running when we stopped may have finished meanwhile: keep their results.
    for future, item in futures.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            results[item] = future.result()
    return results, error


def fetch_titles(base_url, post_ids, workers):
    import requests
    from requests.adapters import HTTPAdapter

    with requests.Session() as session:
        session.trust_env = False  # no proxy between us and 127.0.0.1
        session.mount("http://", HTTPAdapter(pool_maxsize=workers))  # one connection per thread

        def title(post_id):
            response = session.get(f"{base_url}/posts/{post_id}", timeout=10)
            response.raise_for_status()
            return response.json()["title"]

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(title, post_ids))


def fetch_titles_session_per_thread(base_url, post_ids, workers):
    """The other fix: every thread has its own session (threading.local)."""
    import requests

    local = threading.local()

    def title(post_id):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.trust_env = False
        response = local.session.get(f"{base_url}/posts/{post_id}", timeout=10)
        response.raise_for_status()
        return response.json()["title"]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(title, post_ids))
