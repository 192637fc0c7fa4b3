"""Notebook 06's checkers: solved on the worked solutions, 'not solved yet' on the starters, and a
clear verdict on typical wrong answers. (Wrong answers that use a process pool are module level.)"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from futureslab.checks import nb06 as check
from futureslab.solutions import nb06 as solution


def starter(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ wrong answers (module level)

def fetch_without_retry(session, url, retries, backoff, timeout):
    response = session.get(url, timeout=timeout)
    response.raise_for_status()
    return response.json()


def fetch_retrying_404s(session, url, retries, backoff, timeout):
    import time

    for attempt in range(retries + 1):
        response = session.get(url, timeout=timeout)
        if response.ok:
            return response.json()
        time.sleep(backoff * 2 ** attempt)
    raise RuntimeError(f"HTTP {response.status_code}")


def fetch_linear_backoff(session, url, retries, backoff, timeout):
    import time

    for attempt in range(retries + 1):
        response = session.get(url, timeout=timeout)
        if response.status_code != 503:
            response.raise_for_status()
            return response.json()
        if attempt < retries:
            time.sleep(backoff * (attempt + 1))  # 1x, 2x, 3x: grows, but does not double
    raise RuntimeError("gave up: HTTP 503")


def fetch_without_session(session, url, retries, backoff, timeout):
    import time

    import requests

    for attempt in range(retries + 1):
        try:
            response = requests.get(url, timeout=timeout)
        except requests.Timeout:
            response = None
        if response is not None and response.status_code != 503:
            response.raise_for_status()
            return response.json()
        if attempt < retries:
            time.sleep(backoff * 2 ** attempt)
    raise RuntimeError("gave up")


def fetch_without_timeout(session, url, retries, backoff, timeout):
    import time

    for attempt in range(retries + 1):
        response = session.get(url)
        if response.status_code != 503:
            response.raise_for_status()
            return response.json()
        if attempt < retries:
            time.sleep(backoff * 2 ** attempt)
    raise RuntimeError("gave up: HTTP 503")


def fetch_returning_none(session, url, retries, backoff, timeout):
    return solution_or_none(session, url, retries, backoff, timeout)


def solution_or_none(*args):
    try:
        return solution.fetch_json(*args)
    except Exception:
        return None  # gives up silently: the caller cannot tell a failure from a result


def download_reason_without_type(ids, fetch, workers):
    from concurrent.futures import as_completed

    ok, failed = {}, {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fetch, i): i for i in ids}
        for future in as_completed(futures):
            try:
                ok[futures[future]] = future.result()
            except Exception as exc:
                failed[futures[future]] = str(exc)
    return ok, failed


def download_dropping_failures(ids, fetch, workers):
    ok = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, future in [(i, pool.submit(fetch, i)) for i in ids]:
            if future.exception() is None:
                ok[i] = future.result()
    return ok, {}


def download_one_at_a_time(ids, fetch, workers):
    ok, failed = {}, {}
    for i in ids:
        try:
            ok[i] = fetch(i)
        except Exception as exc:
            failed[i] = f"{type(exc).__name__}: {exc}"
    return ok, failed


def staged(ids, download, analyse, save):
    outcomes, posts, results = {}, {}, {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for i, f in [(i, pool.submit(download, i)) for i in ids]:
            try:
                posts[i] = f.result()
            except Exception as exc:
                outcomes[i] = ("failed", str(exc))
    with ProcessPoolExecutor() as pool:
        for i, f in [(i, pool.submit(analyse, p)) for i, p in posts.items()]:
            results[i] = f.result()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, f in [(i, pool.submit(save, r)) for i, r in results.items()]:
            outcomes[i] = ("saved", f.result())
    return outcomes


def streaming_on_threads(ids, download, analyse, save):
    from concurrent.futures import FIRST_COMPLETED, wait

    outcomes = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        in_flight = {pool.submit(download, i): ("download", i) for i in ids}
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for f in done:
                stage, i = in_flight.pop(f)
                try:
                    value = f.result()
                except Exception as exc:
                    outcomes[i] = ("failed", str(exc))
                    continue
                if stage == "download":
                    in_flight[pool.submit(analyse, value)] = ("analyse", i)
                elif stage == "analyse":
                    in_flight[pool.submit(save, value)] = ("save", i)
                else:
                    outcomes[i] = ("saved", value)
    return outcomes


# -------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("checker, answer", [
    (check.fetch_json, solution.fetch_json),
    (check.download_all, solution.download_all),
    (check.stream, solution.stream),
])
def test_solutions_pass(checker, answer):
    verdict = checker(answer)
    assert verdict.solved, str(verdict)


@pytest.mark.parametrize("checker", [check.fetch_json, check.download_all, check.stream])
def test_starters_are_not_solved_yet(checker):
    verdict = checker(starter)
    assert verdict.status == "not solved yet", str(verdict)


@pytest.mark.parametrize("checker, answer, words", [
    (check.fetch_json, fetch_without_retry, "tried 4 times"),
    (check.fetch_json, fetch_retrying_404s, "404 will not get better"),
    (check.fetch_json, fetch_linear_backoff, "should double"),
    (check.fetch_json, fetch_without_session, "session.get"),
    (check.fetch_json, fetch_without_timeout, "pass timeout="),
    (check.fetch_json, fetch_returning_none, "should end in an exception"),
    (check.download_all, download_reason_without_type, "name the exception's type"),
    (check.download_all, download_dropping_failures, "lost"),
    (check.download_all, download_one_at_a_time, "at the same time"),
    (check.stream, staged, "slow download"),
    (check.stream, streaming_on_threads, "ProcessPoolExecutor"),
])
def test_wrong_answers_say_why(checker, answer, words):
    verdict = checker(answer)
    assert verdict.status == "not right yet", str(verdict)
    assert words in verdict.message, str(verdict)


def test_hints_point_the_way_without_the_code():
    from futureslab.checks import EXERCISES

    for exercise_id in ("06.1", "06.2", "06.3"):
        hint = EXERCISES[exercise_id].hint
        assert hint and "submit(" not in hint and "2 **" not in hint and "as_completed" not in hint, hint


def test_solution_is_printable(capsys):
    from futureslab import checks

    checks.solution("06.3")
    assert "FIRST_COMPLETED" in capsys.readouterr().out
