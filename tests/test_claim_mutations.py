"""Every parallel-CPU claim, fed the wrong mechanism, fails or says it cannot be shown: never a ✓.

The notebooks judge "processes computed in parallel" with futureslab.claims.cpu_race and its two
claims (speed-up floor with a no-parallelism control; overlap at full speed by distinct processes).
Here the same harness is fed what a broken lesson or a broken machine would give it: threads (the
GIL), a process pool whose workers are pinned to one CPU, an executor with no parallelism at all,
and a single worker. Each must end in ClaimFailed or "cannot be shown", and the right mechanism
must not fail. docs/claims.md lists every claim, its bar and the mutation that breaks it.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from futureslab.claims import HELD, ClaimFailed, cpu_race, sequential_executor
from futureslab.cores import pin_to_cpu
from futureslab.tasks import count_primes_in, prime_ranges

# four slices of ~50-80 ms of pure-Python work each on this kind of machine
RANGES = prime_ranges(1_440_000, 4, start=1_200_000)


def pinned_processes(workers):
    """A process pool whose workers all share CPU 0."""
    return ProcessPoolExecutor(workers, initializer=pin_to_cpu, initargs=(0,))


def outcome(judge, text="claim") -> str:
    try:
        return judge(text)
    except ClaimFailed:
        return "failed"


def race(**kwargs):
    kwargs.setdefault("workers", 2)
    return cpu_race(count_primes_in, RANGES, rounds=2, budget=4.0, **kwargs)


WRONG = {
    "threads (the GIL)": dict(pool=ThreadPoolExecutor),
    "no parallelism at all": dict(pool=sequential_executor),
    "one worker": dict(workers=1),
}
if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
    WRONG["processes pinned to one CPU"] = dict(pool=pinned_processes)


@pytest.mark.parametrize("mutation", list(WRONG))
def test_wrong_mechanism_never_shows_parallel_cpu_work(mutation, capsys):
    r = race(**WRONG[mutation])
    got = {"speed-up": outcome(r.claim_parallel), "overlap": outcome(r.claim_overlap)}
    printed = capsys.readouterr().out
    assert got["speed-up"] != HELD and got["overlap"] != HELD, (mutation, got, r.times, printed)
    assert "\u2713" not in printed


def test_the_right_mechanism_does_not_fail(capsys):
    r = race(pool=ProcessPoolExecutor)
    got = {"speed-up": outcome(r.claim_parallel), "overlap": outcome(r.claim_overlap)}
    # held on a quiet machine; "cannot be shown" (with its evidence) when other programs are busy
    assert "failed" not in got.values(), (got, r.times, r.room, capsys.readouterr().out)
