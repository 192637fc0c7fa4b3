"""Misconfiguration caught at the door: every FUTURESLAB_* setting the course reads is validated by
``futureslab.setup()`` (the first line of every set-up cell) and by the doctor, each bad value named
with its variable, its value and the fix. The doctor and setup() run for real, in subprocesses, with
the bad environment."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import futureslab
from futureslab import _config, doctor
from futureslab.server import LocalAPI

ROOT = Path(__file__).resolve().parent.parent


def _env(**settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUTURESLAB_")}
    env.update(settings)
    return env


def _doctor(**settings):
    return subprocess.run([sys.executable, "-m", "futureslab.doctor"], capture_output=True, text=True,
                          timeout=180, env=_env(**settings))


def _setup(**settings):
    code = "import futureslab; print('method', futureslab.setup())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env(**settings))


@pytest.fixture
def refused_url():
    """A 127.0.0.1 URL whose port is bound and not listening: a connection there is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def _fail_line(out: str, name: str) -> str:
    lines = [line for line in out.splitlines() if line.strip().startswith(f"[FAIL] {name} ")]
    assert len(lines) == 1, out
    return lines[0]


# -- the doctor -----------------------------------------------------------------------------------------
def test_doctor_names_a_bad_start_method_and_an_unreachable_remote_api(refused_url):
    out = _doctor(FUTURESLAB_START_METHOD="bogus", FUTURESLAB_REMOTE_API=refused_url)
    assert out.returncode == 1, out.stdout + out.stderr
    line = _fail_line(out.stdout, "FUTURESLAB_START_METHOD")
    assert "'bogus' is not a start method on this platform" in line
    assert re.search(r"-> FUTURESLAB_START_METHOD: set it to one of .*spawn.*or unset it", out.stdout)
    line = _fail_line(out.stdout, "FUTURESLAB_REMOTE_API")
    assert f"'{refused_url}' does not answer GET /posts/1 (cannot connect:" in line
    assert "-> FUTURESLAB_REMOTE_API: set it to the base URL" in out.stdout
    assert "unset FUTURESLAB_REMOTE_API" in out.stdout
    # the built-in local API still works, and nothing blames a firewall or a proxy
    assert "[ok  ] local API" in out.stdout
    assert "firewall" not in out.stdout and "proxy" not in out.stdout.lower()
    assert "All good" not in out.stdout and "2 problem(s) found" in out.stdout


def test_doctor_names_every_bad_setting(tmp_path):
    out = _doctor(FUTURESLAB_START_METHOD="Spawn", FUTURESLAB_REMOTE_API="not-a-url",
                  FUTURESLAB_API_URL="localhost:8000", FUTURESLAB_CHROMIUM=str(tmp_path / "no-chromium"),
                  FUTURESLAB_BROWSER_TIMEOUT="soon", FUTURESLAB_NOTEBOOKS_DIR=str(tmp_path / "nowhere"),
                  FUTURESLAB_DEBIAN_ROOT="relative/root", FUTURESLAB_DEBIAN_SUITE="Forky!",
                  FUTURESLAB_CLAIMS_LOG=str(tmp_path / "no" / "claims.jsonl"), FUTURESLAB_REQUIRE_ALL_CLAIMS="0")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "(did you mean 'spawn'?)" in _fail_line(out.stdout, "FUTURESLAB_START_METHOD")
    assert "'not-a-url' is not an http:// or https:// URL" in _fail_line(out.stdout, "FUTURESLAB_REMOTE_API")
    assert "'localhost:8000' is not an http:// or https:// URL" in _fail_line(out.stdout, "FUTURESLAB_API_URL")
    assert "set FUTURESLAB_REMOTE_API instead" in out.stdout
    assert "is not an executable file" in _fail_line(out.stdout, "FUTURESLAB_CHROMIUM")
    assert "'soon' is not a number of seconds above 0" in _fail_line(out.stdout, "FUTURESLAB_BROWSER_TIMEOUT")
    assert "is not a folder" in _fail_line(out.stdout, "FUTURESLAB_NOTEBOOKS_DIR")
    assert "is not an absolute path" in _fail_line(out.stdout, "FUTURESLAB_DEBIAN_ROOT")
    assert "is not a Debian suite name" in _fail_line(out.stdout, "FUTURESLAB_DEBIAN_SUITE")
    assert "is not a file in an existing folder" in _fail_line(out.stdout, "FUTURESLAB_CLAIMS_LOG")
    assert "turns the requirement ON" in _fail_line(out.stdout, "FUTURESLAB_REQUIRE_ALL_CLAIMS")
    assert "10 problem(s) found" in out.stdout and "All good" not in out.stdout


def test_doctor_accepts_good_settings():
    with LocalAPI(latency=0) as remote:  # a real API at a URL the doctor's process did not start
        url = remote.url
        out = _doctor(FUTURESLAB_REMOTE_API=url, FUTURESLAB_START_METHOD="spawn")
        asked = remote.stats()["requests"]
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"[ok  ] FUTURESLAB_REMOTE_API '{url}'" in out.stdout
    assert "[ok  ] FUTURESLAB_START_METHOD 'spawn'" in out.stdout
    assert "[ok  ] start method   spawn (set by FUTURESLAB_START_METHOD" in out.stdout
    assert asked >= 1, "the doctor must really ask the remote API"
    assert "All good" in out.stdout


def test_doctor_warns_about_a_misspelt_setting(monkeypatch):
    for name in [n for n in os.environ if n.startswith("FUTURESLAB_")]:
        monkeypatch.delenv(name)
    assert [(c.name, c.ok) for c in doctor.check_settings()] == [("settings", True)]
    monkeypatch.setenv("FUTURESLAB_START_METOD", "spawn")
    (check,) = doctor.check_settings()
    assert check.name == "FUTURESLAB_START_METOD" and not check.ok and not check.required
    assert check.fix.startswith("did you mean FUTURESLAB_START_METHOD?")


# -- futureslab.setup(), the set-up cell's first line ---------------------------------------------------
def _one_error(out) -> str:
    """The one exception a failed set-up printed: its type and message (no chained second error)."""
    assert out.returncode != 0 and "method" not in out.stdout, out.stdout
    assert "During handling of the above exception" not in out.stderr
    assert out.stderr.count("Traceback (most recent call last)") == 1, out.stderr
    return out.stderr[out.stderr.index("futureslab._config.SettingError"):]


def test_setup_stops_at_a_bad_start_method():
    err = _one_error(_setup(FUTURESLAB_START_METHOD="bogus"))
    assert err.startswith("futureslab._config.SettingError: A course setting is wrong:\n"
                          "  FUTURESLAB_START_METHOD='bogus' is not a start method on this platform. Fix: ")
    assert "unset FUTURESLAB_START_METHOD" in err


def test_setup_stops_at_a_remote_api_that_is_not_a_url():
    err = _one_error(_setup(FUTURESLAB_REMOTE_API="not-a-url"))
    assert "FUTURESLAB_REMOTE_API='not-a-url' is not an http:// or https:// URL. Fix: " in err


def test_setup_stops_at_an_unreachable_remote_api(refused_url):
    err = _one_error(_setup(FUTURESLAB_REMOTE_API=refused_url))
    assert f"FUTURESLAB_REMOTE_API='{refused_url}' does not answer GET /posts/1 (cannot connect:" in err


def test_setup_reports_every_bad_setting_in_one_error(refused_url):
    err = _one_error(_setup(FUTURESLAB_START_METHOD="threads", FUTURESLAB_REMOTE_API=refused_url + "/?x=1"))
    assert err.startswith("futureslab._config.SettingError: 2 course settings are wrong:")
    assert "FUTURESLAB_START_METHOD='threads'" in err and "has a ?query or #fragment" in err


def test_setup_applies_good_settings():
    with LocalAPI(latency=0) as remote:
        out = _setup(FUTURESLAB_START_METHOD="spawn", FUTURESLAB_REMOTE_API=remote.url)
        asked = remote.stats()["requests"]
    assert asked == 1, "setup() asks a remote API for /posts/1 once"
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "method spawn"
    out = _setup(FUTURESLAB_START_METHOD="")  # set to nothing: the platform's default
    assert out.returncode == 0 and out.stdout.strip() == f"method {_default_method()}", out.stderr


def _default_method() -> str:
    code = "import multiprocessing as m; print(m.get_start_method())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=_env()).stdout.strip()


def test_a_bad_api_url_is_named_where_the_lessons_read_it(monkeypatch):
    """A worker or cell that reads a malformed address gets the variable's name, not MissingSchema."""
    monkeypatch.setenv(_config.ENV_URL, "127.0.0.1:8000")
    with pytest.raises(futureslab.SettingError, match=r"FUTURESLAB_API_URL='127.0.0.1:8000' is not an http"):
        _config.api_url()
    monkeypatch.delenv(_config.ENV_URL)
    monkeypatch.setenv(_config.ENV_REMOTE, "ftp://example.org")
    with pytest.raises(futureslab.SettingError, match=r"FUTURESLAB_REMOTE_API='ftp://example.org'"):
        _config.api_url()


@pytest.mark.parametrize("url, problem", [
    ("http://127.0.0.1:8000", None), ("https://example.org/api/", None),
    ("not-a-url", "not an http"), ("http://", "no host name"), ("http://h:port", "not a valid URL"),
    ("http://h/?q=1", "?query"), ("file:///etc", "not an http"),
])
def test_url_problem(url, problem):
    got = _config.url_problem(url)
    assert (got is None) if problem is None else (problem in got), got


# -- the list of settings is complete -------------------------------------------------------------------
def test_every_setting_the_project_reads_is_validated():
    """Every FUTURESLAB_* name in the package, the tests, the benchmarks and the build files is in
    SETTINGS, so the doctor and setup() know it (and a misspelt one is reported as such)."""
    used = set()
    files = [*(ROOT / "src" / "futureslab").rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
             *(ROOT / "benchmarks").glob("*"), ROOT / "conftest.py", ROOT / "Makefile",
             *(ROOT / ".ci").glob("*")]
    for path in files:
        if path.is_file():
            used |= set(re.findall(r"(?<![A-Za-z0-9_])FUTURESLAB_[A-Z][A-Z_]*[A-Z]", path.read_text(errors="replace")))
    used -= {"FUTURESLAB_START_METOD"}  # this file's own misspelling
    assert used, "found no setting at all: the search is broken"
    assert used <= set(_config.SETTINGS), f"not in futureslab._config.SETTINGS: {sorted(used - set(_config.SETTINGS))}"
