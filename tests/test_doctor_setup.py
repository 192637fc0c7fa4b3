"""The classroom environment check and the notebooks' set-up."""

from __future__ import annotations

import io
import multiprocessing
import os
import platform
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


def test_doctor_checks_the_built_in_local_api_even_when_a_remote_one_is_set(monkeypatch):
    """A remote API is the settings check's business (tests/test_settings.py); the local API check
    still checks the course's own server, and says the lessons use the remote one."""
    monkeypatch.setenv("FUTURESLAB_REMOTE_API", "http://127.0.0.1:9")
    check = doctor.check_local_api()
    assert check.ok, check
    assert "served /posts/1 on 127.0.0.1" in check.detail and "the lessons use that remote API" in check.detail
    assert os.environ["FUTURESLAB_REMOTE_API"] == "http://127.0.0.1:9", "the doctor must put the setting back"


@pytest.mark.parametrize("version, ok, required, words", [
    ((3, 9, 18), False, True, "too old, the course needs Python 3.10 or newer (3.11-3.15 supported)"),
    ((3, 10, 13), False, False, "works (the course is tested on it), but Python 3.10 reached its end of life in October 2026"),
    ((3, 11, 7), True, True, "supported (3.11-3.15)"),
    ((3, 13, 0), True, True, "supported (3.11-3.15)"),
    ((3, 14, 8), True, True, "supported (3.11-3.15)"),
    ((3, 15, 0), True, True, "supported (3.11-3.15)"),
    ((3, 16, 0), False, False, "newer than the course is tested on (3.11-3.15)"),
])
def test_doctor_python_policy(version, ok, required, words):
    check = doctor.check_python(version)
    assert (check.ok, check.required) == (ok, required), check
    assert words in check.detail and ".".join(map(str, version)) in check.detail
    assert check.ok or "install Python 3.14" in check.fix


def test_doctor_python_check_of_this_interpreter():
    check = doctor.check_python()
    assert platform.python_version() in check.detail
    assert check.ok == (doctor.SUPPORTED <= sys.version_info[:2] <= doctor.NEWEST_TESTED)


def test_setup_applies_start_method_and_validates(monkeypatch):
    original = multiprocessing.get_start_method()
    try:
        monkeypatch.setenv("FUTURESLAB_START_METHOD", "spawn")
        assert futureslab.setup() == "spawn"
        assert futureslab.setup("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
        with pytest.raises(ValueError, match="start_method"):
            futureslab.setup("teleport")
        monkeypatch.setenv("FUTURESLAB_START_METHOD", "teleport")
        before = multiprocessing.get_start_method()
        with pytest.raises(futureslab.SettingError, match="FUTURESLAB_START_METHOD='teleport' is not a start method"):
            futureslab.setup()
        assert multiprocessing.get_start_method() == before, "a rejected setting must change nothing"
    finally:
        multiprocessing.set_start_method(original, force=True)


def test_package_import_is_light():
    code = "import sys, futureslab.tasks; print(sorted(m for m in ('matplotlib', 'requests', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", "a worker process importing the tasks must not pay for heavy imports"


def test_setup_and_the_checkers_fix_gh125451_exactly_where_the_python_has_it():
    """A fresh interpreter each (this test process has the fix from conftest): after setup(), and after
    a checker ran an answer, the bug is fixed exactly where this Python's code has it."""
    from futureslab.stdlib_fixes import stdlib_has_gh125451

    bug = stdlib_has_gh125451()
    for code in ("import futureslab; futureslab.setup()",
                 "from futureslab.checks import run_with_timeout; run_with_timeout(int, timeout=5)"):
        probe = (f"from futureslab import stdlib_fixes as s; assert not s.gh125451_fixed_here(); {code}; "
                 f"print(s.gh125451_fixed_here(), s.has_gh125451())")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        assert out.stdout.split() == [str(bug), "False"], (code, out.stdout, out.stderr[-800:])


def test_doctor_reports_gh125451_from_the_code_as_a_warning():
    from futureslab.doctor import check_python_bugs
    from futureslab.stdlib_fixes import stdlib_has_gh125451

    c = check_python_bugs()
    assert c.ok is (not stdlib_has_gh125451())
    assert "gh-125451" in c.detail
    if not c.ok:  # a warning, with what to install
        assert not c.required and "install the latest" in c.fix and "deadlock" in c.detail
