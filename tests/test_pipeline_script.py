"""Notebook 06 "as a script": the script in the package runs as a real program under spawn and
forkserver (where workers import the main module), survives a worker that dies, and keeps nothing
outside its folders; the same script without its ``if __name__ == "__main__":`` guard breaks."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys

import pytest

from futureslab.examples import pipeline_script

SCRIPT = pipeline_script.__file__
METHODS = [m for m in ("spawn", "forkserver") if m in mp.get_all_start_methods()]


def run(path, *args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "FUTURESLAB_START_METHOD"}
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("method", METHODS)
def test_script_runs_and_proves_nothing_lost(method, tmp_path):
    done = run(SCRIPT, "--start-method", method, "--out", str(tmp_path), "--crash", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"start method: {method}"
    assert "saved 16, failed 1, missing 0, ended twice 0; process pools replaced: 1" in lines
    assert "  post 999 failed: download: FetchFailed: HTTP 404 (not retried)" in lines
    assert lines[-1] == "nothing lost"
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"post_{i:03d}.json" for i in range(1, 17)]  # no .tmp, no marker left in --out
    assert json.loads((tmp_path / "post_005.json").read_text())["id"] == 5


@pytest.mark.parametrize("method", METHODS)
def test_without_the_main_guard_the_workers_rerun_the_script_and_the_pool_breaks(method, tmp_path):
    text = open(SCRIPT, encoding="utf-8").read()
    guard = 'if __name__ == "__main__":\n    sys.exit(main())\n'
    assert text.endswith(guard)
    unguarded = tmp_path / "unguarded.py"
    unguarded.write_text(text[: -len(guard)] + "sys.exit(main())\n", encoding="utf-8")
    done = run(unguarded, "--start-method", method, timeout=180)
    assert done.returncode != 0, done.stdout
    assert "bootstrapping phase" in done.stderr  # each worker re-ran the script and tried to start a pool
    broke_in_pipeline = ("analyse: BrokenProcessPool" in done.stdout
                         and "not finished: 16 downloaded posts" in done.stdout)
    # 3.14+ under forkserver: the forkserver itself runs the unguarded script while it preloads
    # __main__, dies, and the first submit finds nobody at the other end of its socket
    forkserver_died = method == "forkserver" and "ConnectionResetError" in done.stderr
    assert broke_in_pipeline or forkserver_died, (done.stdout, done.stderr[-2000:])


def test_script_rejects_a_missing_out_folder(tmp_path):
    done = run(SCRIPT, "--out", str(tmp_path / "nope"))
    assert done.returncode == 2 and "--out must be an existing folder" in done.stderr
