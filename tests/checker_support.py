"""Shared by the checker tests: the bad inputs every checker must survive, and a leak check."""

from __future__ import annotations

import threading
import time

import psutil

NOTICE = "still waiting for your code"


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


def nothing_left_behind(threads_before: set, children_before: set, wait: float = 3.0) -> tuple:
    """Wait up to ``wait`` s for every thread and child process started since 'before' to end;
    return (threads, children) still there."""
    deadline = time.monotonic() + wait
    while True:
        threads = os_threads() - threads_before
        children = {pid for pid in child_pids() - children_before
                    if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE}
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


def starter(*args, **kwargs):
    raise NotImplementedError


def raises(*args, **kwargs):
    raise KeyError("boom")


def returns_none(*args, **kwargs):
    return None


def sleeps_30(*args, **kwargs):
    time.sleep(30)


def generator(*args, **kwargs):
    yield 1
    yield 2


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
