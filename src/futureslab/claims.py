"""Proving a lesson's claim on the machine that runs it.

A notebook states a claim ("threads overlap the waits"), measures it, and calls :func:`claim`. When it
holds, one fixed line is printed (so the test suite compares it); when it does not, the cell fails
with the measured numbers. :func:`measure_until` re-measures a few times before giving up, because a
busy laptop or CI machine can spoil one run; it never lowers the bar.
"""

from __future__ import annotations

from typing import Callable

from ._validate import check_callable, check_int

__all__ = ["ClaimFailed", "claim", "measure_until"]


class ClaimFailed(AssertionError):
    """A lesson's claim did not hold on this machine."""


def claim(holds: bool, text: str, **measured) -> None:
    """Print ``"✓ text"`` if ``holds``, else raise :class:`ClaimFailed` naming the measured values."""
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty string that states the claim")
    if holds:
        print(f"\u2713 {text}")
        return
    details = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v!r}"
                        for k, v in measured.items())
    raise ClaimFailed(f"This claim did not hold on this machine: {text}"
                      + (f" (measured: {details})" if details else "")
                      + ". If the machine is busy, re-run the cell.")


def measure_until(measure: Callable[[], object], holds: Callable[[object], bool],
                  attempts: int = 3):
    """Call ``measure()`` up to ``attempts`` times, stopping at the first result for which
    ``holds(result)`` is true; return that result, or the last one (for :func:`claim` to report)."""
    check_callable("measure", measure)
    check_callable("holds", holds)
    attempts = check_int("attempts", attempts, low=1)
    result = None
    for _ in range(attempts):
        result = measure()
        if holds(result):
            return result
    return result
