"""Unit tests of futureslab.scaling (Amdahl's law and its fit)."""

import doctest
import math

import pytest

from futureslab import scaling
from futureslab.scaling import amdahl_limit, amdahl_speedup, fit_amdahl


def test_doctests():
    assert doctest.testmod(scaling).failed == 0


def test_speedup_formula():
    assert amdahl_speedup(1.0, 8) == pytest.approx(8)
    assert amdahl_speedup(0.0, 8) == pytest.approx(1)
    assert amdahl_speedup(0.5, 2) == pytest.approx(1 / 0.75)
    assert amdahl_speedup(1.0, 8, cores=2) == pytest.approx(2)


def test_limit():
    assert amdahl_limit(0.9) == pytest.approx(10)
    assert math.isinf(amdahl_limit(1.0))


@pytest.mark.parametrize("p", [0.0, 0.3, 0.889, 1.0])
def test_fit_recovers_p(p):
    ns = [1, 2, 4, 8, 16]
    assert fit_amdahl(ns, [amdahl_speedup(p, n) for n in ns]) == pytest.approx(p, abs=1e-9)


def test_fit_with_cores_cap():
    ns = [1, 2, 4, 8]
    measured = [amdahl_speedup(0.95, n, cores=2) for n in ns]
    assert fit_amdahl(ns, measured, cores=2) == pytest.approx(0.95)
    # Without the cap, the flat tail drags the fitted fraction down.
    assert fit_amdahl(ns, measured) < 0.8


def test_fit_clips_to_unit_interval():
    assert fit_amdahl([1, 2], [1.0, 0.5]) == 0.0
    assert fit_amdahl([1, 2], [1.0, 3.0]) == 1.0


@pytest.mark.parametrize("args, exc, word", [
    (([], []), ValueError, "workers"),
    (([1, 2], [1.0]), ValueError, "equal length"),
    (([1, 1], [1.0, 1.0]), ValueError, "above 1"),
    (([0, 2], [1.0, 1.0]), ValueError, "workers"),
    (([1, 2], [1.0, 0.0]), ValueError, "speedups"),
    (([1, 2.5], [1.0, 2.0]), TypeError, "workers"),
])
def test_fit_bad_input(args, exc, word):
    with pytest.raises(exc, match=word):
        fit_amdahl(*args)


def test_bad_input_names_argument():
    with pytest.raises(ValueError, match="p must be"):
        amdahl_speedup(1.5, 2)
    with pytest.raises(ValueError, match="workers must be"):
        amdahl_speedup(0.5, 0)
    with pytest.raises(ValueError, match="cores must be"):
        fit_amdahl([1, 2], [1, 2], cores=0)
