"""The classroom environment check and the notebooks' set-up."""

from __future__ import annotations

import io
import multiprocessing
import subprocess
import sys

import pytest

import futureslab
from futureslab import doctor


def test_doctor_passes_here_as_a_command():
    out = subprocess.run([sys.executable, "-m", "futureslab.doctor"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for line in ("python", "jupyterlab", "cpus", "start method", "process pool", "free cores", "local API"):
        assert f"] {line}" in out.stdout
    assert "All good" in out.stdout


def test_doctor_fails_and_says_how_to_fix(monkeypatch):
    monkeypatch.setattr(doctor, "REQUIRED", doctor.REQUIRED + ["no_such_package_futureslab"])
    buf = io.StringIO()
    assert doctor.run(buf) == 1
    text = buf.getvalue()
    assert "[FAIL] no_such_package_futureslab" in text
    assert "-> no_such_package_futureslab: run `make lab`" in text
    assert "1 problem(s) found" in text


def test_doctor_free_cores_only_warns():
    """A real measurement; `enough` decides the verdict: no machine here has 10 free cores per worker."""
    busy = doctor.check_free_cores(enough=10)
    assert not busy.ok and not busy.required
    assert "free cores of" in busy.detail and "close heavy ones" in busy.fix
    assert doctor.check_free_cores(enough=0).ok
    with pytest.raises(ValueError, match="enough"):
        doctor.check_free_cores(enough=-1)


def test_doctor_reports_a_broken_local_api(monkeypatch):
    monkeypatch.setenv("FUTURESLAB_REMOTE_API", "http://127.0.0.1:9")  # nothing listens there
    check = doctor.check_local_api()
    assert not check.ok and "ConnectionError" in check.detail and "127.0.0.1" in check.fix


def test_setup_applies_start_method_and_validates(monkeypatch):
    original = multiprocessing.get_start_method()
    try:
        monkeypatch.setenv("FUTURESLAB_START_METHOD", "spawn")
        assert futureslab.setup() == "spawn"
        assert futureslab.setup("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
        with pytest.raises(ValueError, match="start_method"):
            futureslab.setup("teleport")
    finally:
        multiprocessing.set_start_method(original, force=True)


def test_package_import_is_light():
    code = "import sys, futureslab.tasks; print(sorted(m for m in ('matplotlib', 'requests', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", "a worker process importing the tasks must not pay for heavy imports"
