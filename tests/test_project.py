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
    return {"project": {"dependencies": block("dependencies"), "requires-python": ">=3.10",
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
