"""The project's own files: dependencies in step, the README's test command is what CI runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = None


def _pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    if tomllib:
        return tomllib.loads(text)
    # Python 3.10 has no tomllib: read the two dependency lists we need by hand.
    def block(name):
        m = re.search(rf"^{name} = \[(.*?)^\]", text, flags=re.M | re.S)
        return re.findall(r'"([^"]+)"', m.group(1))
    return {"project": {"dependencies": block("dependencies"), "classifiers": block("classifiers"),
                        "requires-python": re.search(r'^requires-python = "([^"]+)"', text, flags=re.M).group(1),
                        "optional-dependencies": {"test": block("test")}}}


def _norm(spec: str) -> tuple[str, str]:
    spec = spec.split("#")[0].strip().replace(" ", "")
    m = re.match(r"([A-Za-z0-9_.\-\[\]]+)(.*)", spec)
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
    return name, ",".join(sorted(m.group(2).split(","))) if m.group(2) else ""


def test_environment_yml_matches_pyproject():
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    py = next(d for d in conda if d.startswith("python"))
    project = _pyproject()["project"]
    assert _norm(py)[1] == _norm("python" + project["requires-python"])[1]
    conda_deps = {_norm(d) for d in conda if not d.startswith(("python", "pip"))}
    core = {_norm(d) for d in project["dependencies"]}
    assert conda_deps == core, (f"only in environment.yml: {sorted(conda_deps - core)}; "
                                f"only in pyproject.toml: {sorted(core - conda_deps)}")
    assert pip == ["-e .[test]"], "environment.yml must install the package and its test extra with pip"


def test_core_dependencies_are_the_ones_the_mission_names():
    names = {_norm(d)[0] for d in _pyproject()["project"]["dependencies"]}
    assert {"jupyterlab", "matplotlib", "requests", "nbval", "pytest"} <= names


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme.split("## Course map")[0]
    assert re.search(r"^make test\b", ci, flags=re.M), ".ci/run must call `make test`"


def test_makefile_has_the_documented_targets():
    mk = (ROOT / "Makefile").read_text()
    for target in ("lab", "test", "doctor", "benchmark", "test-start-methods", "test-pythons"):
        assert re.search(rf"^{re.escape(target)}:", mk, flags=re.M), target
    assert "--ServerApp.ip=127.0.0.1" in mk


def test_gitignore_covers_generated_folders():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in (".venv/", "__pycache__/", ".ipynb_checkpoints/", "artifacts/"):
        assert entry in ignored


# -- which Pythons: one policy in the doctor, pyproject.toml, the Makefile, CI and the README ----------
def _policy():
    from futureslab import doctor

    oldest, newest = doctor.OLDEST, doctor.NEWEST_TESTED
    assert oldest[0] == newest[0] == 3
    return doctor, [f"3.{minor}" for minor in range(oldest[1], newest[1] + 1)]


def test_python_policy_is_the_same_everywhere():
    doctor, tested = _policy()
    project = _pyproject()["project"]
    assert project["requires-python"] == f">={tested[0]}", "requires-python must admit the oldest tested Python"
    listed = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert listed == tested, f"classifiers list {listed}, the matrix is {tested}"
    mk = (ROOT / "Makefile").read_text()
    assert re.search(r"^PYTHONS \?= (.*)$", mk, flags=re.M).group(1).split() == tested
    readme = (ROOT / "README.md").read_text().split("## Course map")[0]
    supported = f"{doctor.SUPPORTED[0]}.{doctor.SUPPORTED[1]}"
    assert f"Python {supported} to {tested[-1]} are supported" in readme
    for version, when in doctor.END_OF_LIFE.items():
        assert f"Python {version[0]}.{version[1]} still works and is tested, but it reached its end of life\nin {when}" in readme


def test_ci_runs_the_newest_pythons_in_the_debian_root():
    ci = (ROOT / ".ci" / "run").read_text()
    runs = re.findall(r"^(FUTURESLAB_START_METHOD=\w+ )?step .*\n(bash \.ci/debian-python\.sh (3\.\d+) .*)$", ci, flags=re.M)
    got = {(version, (env or "").strip()) for env, _, version in runs}
    assert got == {("3.14", ""), ("3.14", "FUTURESLAB_START_METHOD=spawn"), ("3.15", "")}, got
    assert all('-m "not browser and ' in cmd for _, cmd, _ in runs), "no browser in the root"
    spawn = [cmd for env, cmd, _ in runs if env]
    assert spawn and spawn[0].endswith(" notebooks"), "3.14 under spawn runs every notebook"


def _as_nobody():
    """Run a command as an unprivileged user: as ourselves if we are not root, else via setpriv."""
    import os
    import shutil

    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot drop privileges to check the non-root path")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_debian_python_script_reports_a_python_it_cannot_get_as_missing():
    """Without root it cannot build or enter its Debian root: MISSING and exit status 90, never a pass."""
    import subprocess

    script = ROOT / ".ci" / "debian-python.sh"
    out = subprocess.run([*_as_nobody(), "bash", str(script), "3.14", "--check"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 90, out.stdout + out.stderr
    assert out.stdout.strip() == "MISSING: Python 3.14" and "needs root" in out.stderr
    bad = subprocess.run(["bash", str(script), "three"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "must be a Python version like 3.14, got 'three'" in bad.stderr
