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
    # As futureslab.setup() does in every kernel: the unit tests run pools given lambdas in this
    # process, which on a Python with CPython's gh-125451 could deadlock the run (tests/test_stdlib_fixes.py)
    from futureslab.stdlib_fixes import fix_gh125451

    fix_gh125451()


    # Every claim a notebook judges is logged here (futureslab.claims reads FUTURESLAB_CLAIMS_LOG in
    # each kernel); tests/test_claims_held.py reads it at the end of the run, beside what the watcher
    # below measured from outside the kernels.
    # (An outer FUTURESLAB_CLAIMS_LOG is kept, so benchmarks can read the claims of a whole run.)
    os.environ.setdefault("FUTURESLAB_CLAIMS_LOG", os.path.join(_tmp, "claims.jsonl"))
    import time

    config._futureslab_started = time.time()
    config._futureslab_watch = LoadWatch()
    config._futureslab_watch.start()

    # Remove it at exit, after multiprocessing has removed its own temporary folders inside it
    # (its finalizers run at exit priority -100; this one at -200, so later).
    from multiprocessing.util import Finalize

    Finalize(None, shutil.rmtree, args=(_tmp, True), exitpriority=-200)


class LoadWatch:
    """Measures, once a second, the CPU that programs other than the notebook kernels use (cores), so
    a claim that "cannot be shown right now" can be told apart from a quiet machine (a false excuse).

    It sees the machine as a kernel's :class:`~futureslab.cores.LoadMeter` does: everything outside
    the kernels' process trees is "other", this test run's own process (the notebook client) and its
    other children included. ``samples`` holds ``(end time, other cores)``; ``runner`` holds
    ``(end time, cores used by this test run outside the kernels)``, part of "other", to say where a
    load came from."""

    def __init__(self, every: float = 1.0):
        import threading

        self.every, self.samples, self.runner = every, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="futureslab-load-watch", daemon=True)

    def start(self):
        self._thread.start()

    @staticmethod
    def _cpu(me):
        """CPU seconds by (pid, start time): the kernels' trees, and this run's processes outside them."""
        import psutil

        from futureslab.cores import _tree_cpu

        kernels, runner = {}, {}
        try:
            family = me.children(recursive=True)
        except psutil.Error:
            family = []
        for p in family:
            try:
                if any("ipykernel" in part for part in p.cmdline()):
                    kernels.update(_tree_cpu(p))
            except psutil.Error:
                pass
        for p in [me] + family:  # own CPU only: a reaped kernel's moves into its parent's children_*
            try:
                key = (p.pid, p.create_time())
                if key not in kernels:
                    t = p.cpu_times()
                    runner[key] = t.user + t.system
            except psutil.Error:
                pass
        return kernels, runner

    def _run(self):
        import time

        try:
            import psutil

            from futureslab.cores import _machine_busy
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.is_set():
            t0, busy0, (k0, r0) = time.perf_counter(), _machine_busy(), self._cpu(me)
            self._stop.wait(self.every)
            k1, r1 = self._cpu(me)
            busy1, t1 = _machine_busy(), time.perf_counter()
            kernels = sum(cpu - k0.get(key, 0.0) for key, cpu in k1.items())
            runner = sum(max(0.0, cpu - r0.get(key, 0.0)) for key, cpu in r1.items())
            now, seconds = time.time(), max(t1 - t0, 1e-9)
            self.samples.append((now, max(0.0, (busy1 - busy0) - kernels) / seconds))
            self.runner.append((now, runner / seconds))

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


def pytest_collection_modifyitems(session, config, items):
    # The verdict on every claim the notebooks judged runs after every notebook.
    last = [item for item in items if item.get_closest_marker("after_notebooks")]
    items[:] = [item for item in items if item not in last] + last


def pytest_unconfigure(config):
    watch = getattr(config, "_futureslab_watch", None)
    if watch is not None:
        watch.stop()


def pytest_report_header(config):
    import multiprocessing
    import sys

    return (f"futureslab: start method {os.environ.get('FUTURESLAB_START_METHOD') or multiprocessing.get_start_method()}"
            f", {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
            f"\nfutureslab: {__import__('futureslab.stdlib_fixes').stdlib_fixes.gh125451_summary()}")
