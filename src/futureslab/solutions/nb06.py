"""Worked solutions to notebook 06's exercises (a real-world pipeline)."""

from __future__ import annotations

import time
from concurrent.futures import (FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor,
                                as_completed, wait)


def fetch_json(session, url, retries, backoff, timeout):
    import requests

    last = "no attempt made"
    for attempt in range(retries + 1):
        try:
            response = session.get(url, timeout=timeout)
        except requests.Timeout:
            last = f"timed out after {timeout} s"
        else:
            if response.status_code == 503:
                last = "HTTP 503"
            else:
                response.raise_for_status()  # a 404 (or any other error) is not retried
                return response.json()
        if attempt < retries:
            time.sleep(backoff * 2 ** attempt)  # backoff, 2 x backoff, 4 x backoff...
    raise RuntimeError(f"gave up after {retries + 1} attempts: {last}")


def download_all(ids, fetch, workers):
    ok, failed = {}, {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fetch, i): i for i in ids}
        for future in as_completed(futures):
            i = futures[future]
            try:
                ok[i] = future.result()
            except Exception as exc:  # every id ends in exactly one of the two dicts
                failed[i] = f"{type(exc).__name__}: {exc}"
    return ok, failed


def stream(ids, download, analyse, save):
    outcomes = {}
    with ThreadPoolExecutor(max_workers=8) as downloads, ProcessPoolExecutor() as analysers, \
            ThreadPoolExecutor(max_workers=4) as savers:
        in_flight = {downloads.submit(download, i): ("download", i) for i in ids}
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                stage, i = in_flight.pop(future)
                try:
                    value = future.result()
                except Exception as exc:
                    outcomes[i] = ("failed", f"{stage}: {type(exc).__name__}: {exc}")
                    continue
                if stage == "download":
                    in_flight[analysers.submit(analyse, value)] = ("analyse", i)
                elif stage == "analyse":
                    in_flight[savers.submit(save, value)] = ("save", i)
                else:
                    outcomes[i] = ("saved", value)
    return outcomes
