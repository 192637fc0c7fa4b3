"""Does the explorer's widget cell ever hang under nbclient on a busy machine?

    .venv/bin/python benchmarks/explorer_hang.py [--runs 20] [--busy 2] [--notebook minimal|00]

Runs a notebook that calls ``explore()`` (the widget path) ``--runs`` times, each in a fresh kernel
driven by nbclient (as tests/test_no_leaks.py and nbval drive notebooks), while ``--busy``
pure-Python busy loops keep the cores busy. A run "hangs" when a cell does not finish within
``--timeout`` seconds (nbclient's ``CellTimeoutError``), or when the client saw a cell end more than
``--stall`` seconds after the kernel had answered it (the kernel's own timestamps on its messages
against the client's clock): that is the same lost wake-up, noticed only when a cell's reply is found
after the client's wait timed out. Prints one line per run and the counts; exit status 1 if any run
hung, stalled or failed.

Root cause of the hang this guards against: nbclient mimics an ``Output`` widget that captures output
(``with output:``) by sending a ``comm_msg`` back to the kernel on the *shell* socket for every output
it captures, while another task of the same event loop awaits the cell's ``execute_reply`` on that
socket; jupyter_client's ``Session.send`` sends through a plain (non-asyncio) shadow of the socket,
and the zmq notification that the reply had arrived can be consumed by that send, so the awaiting
task is not woken until its timeout. A busy CPU widens the window. The explorer therefore writes its
output into the widget's ``outputs`` directly instead of capturing it (see futureslab/explorer.py).

``minimal`` is a two-cell notebook (``explore()``, then a print); ``00`` is notebooks/00-start-here.ipynb;
``capture`` is the pattern the explorer used before the fix, without the package: an ``Output``
widget that captures a print and a figure (``with output: ... plt.show()``) while the cell runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

ROOT = Path(__file__).resolve().parent.parent


def minimal_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("from futureslab.explorer import explore\n"
                                          "explore(kind='io', executor='thread', workers=4)"),
                nbformat.v4.new_code_cell("print('after the explorer')")]
    return nb


class TimedClient(NotebookClient):
    """Records, per cell, the client's wall time minus the kernel's time for it (the lag)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, record_timing=True, **kwargs)
        self.lags: list[tuple[int, float]] = []

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        t0 = time.time()
        out = await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        seen = time.time() - t0
        meta = cell.get("metadata", {}).get("execution", {})
        try:
            kernel = (_ts(meta["shell.execute_reply"]) - _ts(meta["iopub.execute_input"]))
            self.lags.append((cell_index, seen - kernel))
        except KeyError:
            pass
        return out


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


CAPTURE = """
import ipywidgets as w, matplotlib.pyplot as plt
from IPython.display import display
out = w.Output()
display(out)
for i in range(3):
    with out:
        out.clear_output(wait=True)
        print("run", i)
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.plot(range(10))
        plt.show()
        plt.close(fig)
"""


def one_run(which: str, timeout: int, stall: float) -> tuple[str, float, str]:
    work = Path(tempfile.mkdtemp(prefix="explorer-hang-"))
    try:
        if which == "00":
            nb = nbformat.read(ROOT / "notebooks" / "00-start-here.ipynb", as_version=4)
            for name in ("00-start-here.ipynb",):
                shutil.copy(ROOT / "notebooks" / name, work / name)
        else:
            nb = minimal_notebook()
            if which == "capture":
                nb.cells[0].source = CAPTURE
        env = dict(os.environ, TMPDIR=str(work))
        env.pop("MPLBACKEND", None)
        client = TimedClient(nb, timeout=timeout, kernel_name="python3",
                                allow_error_names=["ClaimFailed"],
                                resources={"metadata": {"path": str(work)}})
        t0 = time.perf_counter()
        try:
            client.execute(env=env)
            cell, lag = max(client.lags, key=lambda item: item[1], default=(None, 0.0))
            if lag > stall:
                return "STALL", time.perf_counter() - t0, f"cell {cell} seen {lag:.1f} s after its reply"
            return "ok", time.perf_counter() - t0, f"(largest lag {lag:.2f} s, cell {cell})"
        except CellTimeoutError as exc:
            return "HANG", time.perf_counter() - t0, str(exc).splitlines()[0]
        except CellExecutionError as exc:
            lines = [line for line in str(exc).splitlines() if line.strip()]
            return "FAIL", time.perf_counter() - t0, lines[-1] if lines else repr(exc)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--busy", type=int, default=2, help="busy loops to run meanwhile (default 2)")
    parser.add_argument("--notebook", choices=["minimal", "00", "capture"], default="00")
    parser.add_argument("--timeout", type=int, default=60, help="cell timeout in seconds (default 60)")
    parser.add_argument("--stall", type=float, default=10.0,
                        help="a cell seen this many seconds after the kernel answered it counts as a hang")
    args = parser.parse_args(argv)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    counts = {"ok": 0, "HANG": 0, "STALL": 0, "FAIL": 0}
    try:
        for i in range(1, args.runs + 1):
            outcome, seconds, detail = one_run(args.notebook, args.timeout, args.stall)
            counts[outcome] += 1
            print(f"run {i:2d}: {outcome:4s} {seconds:6.1f} s {detail}", flush=True)
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()
    print(f"notebook {args.notebook}, {args.busy} busy processes: {args.runs} runs, "
          f"{counts['HANG']} hung (cell timeout), {counts['STALL']} stalled (> {args.stall:g} s late), "
          f"{counts['FAIL']} failed, {counts['ok']} finished")
    return 1 if counts["HANG"] or counts["STALL"] or counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
