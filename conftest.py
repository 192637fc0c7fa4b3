"""Test-suite set-up shared by the unit tests (tests/) and the notebooks (notebooks/, via nbval)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SANITIZE = ROOT / "tests" / "nbval-sanitize.cfg"

_tmp = None


def pytest_configure(config):
    global _tmp
    # nbval reads one sanitize file; give it an absolute path so pytest works from any folder.
    if getattr(config.option, "nbval_sanitize_with", None) is None and hasattr(config.option, "nbval"):
        config.option.nbval_sanitize_with = str(SANITIZE)
    # MPLBACKEND=Agg in the environment would leak into the notebook kernels and hide the plots.
    os.environ.pop("MPLBACKEND", None)
    # A private temporary folder for this run (and every kernel and worker it starts): nothing is
    # written elsewhere, and another process cleaning /tmp cannot pull a forkserver's socket away.
    _tmp = tempfile.mkdtemp(prefix="futureslab-tests-")
    os.environ["TMPDIR"] = _tmp
    tempfile.tempdir = None
    # The start method under test (make test-start-methods): applied here for the unit tests, and by
    # futureslab.setup() in every notebook kernel, which inherits this environment.
    method = os.environ.get("FUTURESLAB_START_METHOD")
    if method:
        import multiprocessing

        multiprocessing.set_start_method(method, force=True)


    # Remove it at exit, after multiprocessing has removed its own temporary folders inside it
    # (its finalizers run at exit priority -100; this one at -200, so later).
    from multiprocessing.util import Finalize

    Finalize(None, shutil.rmtree, args=(_tmp, True), exitpriority=-200)


def pytest_report_header(config):
    import multiprocessing
    import sys

    return (f"futureslab: start method {os.environ.get('FUTURESLAB_START_METHOD') or multiprocessing.get_start_method()}"
            f", {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
