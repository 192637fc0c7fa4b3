"""Every measured claim, fed the wrong mechanism, fails or says it cannot be shown: never a ✓.

The cases (futureslab.claim_cases) run each kind of claim the notebooks make the way the notebooks
judge it, with the mechanism swapped: threads where processes are claimed (the GIL), a process pool
whose workers are pinned to one CPU, an executor with no parallelism at all, a single worker, work
that waits where computing is claimed. Each wrong mechanism must end in ClaimFailed or "cannot be
shown", and the right mechanism must never fail. docs/claims.md lists every claim, its bar and the
mutation that breaks it; benchmarks/claims.py prints the same on a quiet and a busy machine.
"""

from __future__ import annotations

import pytest

from futureslab.claim_cases import CASES

WRONG = [pytest.param(case, wrong, id=f"{case.name} <- {wrong}") for case in CASES for wrong in case.wrong]
RIGHT = [pytest.param(case, id=case.name) for case in CASES]


@pytest.mark.parametrize("case, wrong", WRONG)
def test_a_wrong_mechanism_never_gets_a_tick(case, wrong, capsys):
    got = case.run(wrong)
    printed = capsys.readouterr().out
    assert "held" not in got.values(), (case.name, wrong, got, printed)
    assert "\u2713" not in printed


@pytest.mark.parametrize("case", RIGHT)
def test_the_right_mechanism_never_fails(case, capsys):
    got = case.run(case.right)
    # held on a quiet machine; "cannot be shown" (with its evidence) when other programs are busy
    assert "failed" not in got.values(), (case.name, got, capsys.readouterr().out)
