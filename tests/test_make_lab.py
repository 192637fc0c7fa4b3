"""`make lab` serves JupyterLab on 127.0.0.1, with token authentication, opened on the start notebook."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed (see the README for the commands without make)")
def test_make_lab_serves_the_start_notebook_with_a_token(tmp_path):
    venv = Path(sys.prefix)
    if not (venv / ".installed").exists():
        pytest.skip(f"{venv} was not set up by `make` (no .installed stamp): run this through `make test`")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    env.pop("MAKEFLAGS", None)
    proc = subprocess.Popen(
        ["make", "-s", "lab", f"VENV={venv}", f"LAB_PORT={port}",
         f"LAB_ARGS=--no-browser --IdentityProvider.token={token}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.trust_env = False
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                session.get(base + "/api/status", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, "make lab exited early:\n" + proc.stdout.read()
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.3)
        # without the token: refused
        assert session.get(base + "/api/contents/00-start-here.ipynb", timeout=10).status_code == 403
        # with it: the start notebook is there, and the front page sends you to it
        nb = session.get(base + "/api/contents/00-start-here.ipynb", timeout=10,
                         headers={"Authorization": f"token {token}"})
        assert nb.status_code == 200 and nb.json()["type"] == "notebook"
        assert nb.json()["content"]["cells"][0]["source"].startswith("# 00 · Start here")
        home = session.get(f"{base}/?token={token}", timeout=10, allow_redirects=False)
        assert home.status_code == 302 and "/lab/tree/00-start-here.ipynb" in home.headers["Location"]
        page = session.get(f"{base}/lab/tree/00-start-here.ipynb?token={token}", timeout=10)
        assert page.status_code == 200 and "JupyterLab" in page.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert f"http://127.0.0.1:{port}/lab/tree/00-start-here.ipynb?token=" in out, out[-2000:]
