"""Shared by the checker tests: the bad inputs every checker must survive, a leak check, and the
assertions on a verdict's diagnosis."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

NOTICE = "still waiting for your code"

# Spelled out here, not imported from futureslab.checks: a test that took the package's own words
# could not notice them change.
WRONG, NOT_YET = "not right yet", "not solved yet"


def os_threads() -> set:
    return {t.id for t in psutil.Process().threads()}


SERVICES = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")


def child_pids() -> set:
    """This process's descendants, less multiprocessing's own long-lived services: the forkserver
    and the resource tracker start on first use and live as long as this process (the default on
    Linux from 3.14). Workers forked by the forkserver (its children) still count."""
    me = psutil.Process()
    services = set()
    for p in me.children():
        try:
            if any(s in " ".join(p.cmdline()) for s in SERVICES):
                services.add(p.pid)
        except psutil.Error:
            pass
    return {p.pid for p in me.children(recursive=True)} - services


def _running(pid: int) -> bool:
    """Alive and not a zombie. A process can end between any two looks at it (CI on 3.14 once saw
    ``pid_exists`` true and ``Process(pid)`` raise ``NoSuchProcess`` right after), so ask once."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def nothing_left_behind(threads_before: set, children_before: set, wait: float = 3.0) -> tuple:
    """Wait up to ``wait`` s for every thread and child process started since 'before' to end;
    return (threads, children) still there."""
    deadline = time.monotonic() + wait
    while True:
        threads = os_threads() - threads_before
        children = {pid for pid in child_pids() - children_before if _running(pid)}
        if (not threads and not children) or time.monotonic() > deadline:
            return threads, children
        time.sleep(0.05)


def run_bad_input(checker, answer, limit: float):
    """Run ``checker(answer)``; assert one verdict (not solved) within ``limit`` s and nothing left
    running afterwards. Returns the verdict."""
    threads, children = os_threads(), child_pids()
    t0 = time.perf_counter()
    verdict = checker(answer)
    took = time.perf_counter() - t0
    assert not verdict.solved, str(verdict)
    assert took < limit, f"the verdict took {took:.1f} s (limit {limit} s): {verdict}"
    assert "Traceback" not in str(verdict)
    left_threads, left_children = nothing_left_behind(threads, children)
    assert not left_threads, f"threads left running: {threading.enumerate()}"
    assert not left_children, f"processes left running: {left_children}"
    return verdict


def assert_diagnosis(verdict, *words, status: str = WRONG):
    """Assert ``verdict`` has ``status`` (by default: not right yet) and its message holds every one
    of ``words``. Returns the verdict."""
    assert verdict.status == status, str(verdict)
    for word in words:
        assert word in verdict.message, f"{word!r} not in the verdict: {verdict}"
    return verdict


def assert_one_clear_verdict(checker, answer, why: str, limit: float):
    """:func:`run_bad_input`, then: the verdict's message says ``why`` and does not speak of code
    still running. Returns the verdict."""
    verdict = run_bad_input(checker, answer, limit)
    assert why in verdict.message, str(verdict)
    assert "still running" not in verdict.message, str(verdict)
    return verdict


def starter(*args, **kwargs):
    raise NotImplementedError


def raises(*args, **kwargs):
    raise KeyError("boom")


def returns_none(*args, **kwargs):
    return None


def returns_42(*args, **kwargs):
    return 42


def sleeps_30(*args, **kwargs):
    time.sleep(30)


def generator(*args, **kwargs):
    yield 1
    yield 2


#: (answer, words its verdict must hold) for a checker of a plain function: use as
#: ``@pytest.mark.parametrize("answer, why", BAD_ANSWERS)``, then :func:`assert_one_clear_verdict`.
BAD_ANSWERS = [
    pytest.param(None, "expected a function, got None", id="None"),
    pytest.param(returns_42, "42", id="returns_42"),
    pytest.param(raises, "your code raised KeyError: 'boom'", id="raises"),
    pytest.param(returns_none, "None", id="returns_none"),
    pytest.param(generator, "a generator", id="generator"),
    pytest.param(sleeps_30, "did not finish within", id="sleeps_30"),
    pytest.param(starter, "Replace `raise NotImplementedError`", id="starter"),
]


async def async_starter(*args, **kwargs):
    raise NotImplementedError


async def async_raises(*args, **kwargs):
    raise KeyError("boom")


async def async_returns_none(*args, **kwargs):
    return None


async def async_sleeps_30(*args, **kwargs):
    import asyncio
    await asyncio.sleep(30)


def blocking_async_sleep_30():
    async def answer(*args, **kwargs):
        time.sleep(30)  # blocks its event loop: cannot be cancelled
    return answer
