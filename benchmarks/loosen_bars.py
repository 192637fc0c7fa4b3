"""Show once that the mutation tests catch a loosened bar: the CPU bars are set back to a
speed-up-floor-only check (half the floor, no control to beat, no cores-busy witness, any stretch)
in this process only, then tests/test_claim_mutations.py's wrong mechanisms run. Expect failures:
each is a wrong mechanism that got a tick from the loosened bars. Nothing is written.

    .venv/bin/python benchmarks/loosen_bars.py

Exit status: 0 if the mutation tests caught the loosened bars (some failed), 1 if they all passed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import futureslab.claims as claims
import futureslab.lesson01 as lesson01

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    print("bars:", dict(FLOOR=claims.FLOOR, MARGIN=claims.MARGIN, BUSY=claims.BUSY, STRETCH=claims.STRETCH))
    claims.FLOOR, claims.MARGIN, claims.BUSY, claims.STRETCH = 0.3, 0.0, 0.0, 10.0
    lesson01.FLOOR, lesson01.MARGIN, lesson01.BUSY = claims.FLOOR, claims.MARGIN, claims.BUSY  # its own copies
    print("loosened:", dict(FLOOR=claims.FLOOR, MARGIN=claims.MARGIN, BUSY=claims.BUSY, STRETCH=claims.STRETCH))
    code = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_claim_mutations.py"),
                        "-k", "wrong"])
    caught = code == pytest.ExitCode.TESTS_FAILED
    print("the mutation tests caught the loosened bars" if caught else "NOT CAUGHT: every wrong mechanism still failed")
    return 0 if caught else 1


if __name__ == "__main__":
    sys.exit(main())
