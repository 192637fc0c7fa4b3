"""Interrupt a process-pool cell, re-run it, run the rest: what a learner does with the stop button.

For every notebook, in a fresh kernel (nbclient, a temporary copy of notebooks/, the start method in
force), cells run in order until the first one that starts worker processes and is still running a
moment after they appear: that cell is interrupted the way JupyterLab's stop button does it, with the
kernel manager's ``interrupt_kernel()`` (SIGINT to the kernel's process group, so the pool's
workers get it too). Then:

* the interrupted cell must end promptly (no cell stuck in a join or a wait);
* the learner sees one clear line, not a wall of tracebacks: the interrupted cell's output holds no
  traceback printed by a worker process (``Process ForkProcess-1:`` ... ``KeyboardInterrupt``) and no
  error from the executor's manager thread;
* re-running that cell succeeds, and so does every later cell (cells tagged ``raises-exception``
  must raise);
* nothing is left: the leak probe of tests/test_no_leaks.py runs at the end, and every process that
  was ever a descendant of the kernel is gone once the kernel has shut down (no orphaned worker).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

from test_no_leaks import NOTEBOOKS, PROBE_AFTER, PROBE_BEFORE

NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
SETTLE_SECONDS = 0.4     # interrupt this long after the cell's first worker process appears
STUCK_SECONDS = 30       # an interrupted cell must end within this
STDLIB_SERVICES = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")
# What a worker process prints when SIGINT reaches it outside a task (multiprocessing's
# BaseProcess._bootstrap), and what the executor's manager thread may log when it finds a future
# the interrupt cancelled: neither may reach the learner.
WORKER_NOISE = ("Process ForkProcess-", "Process SpawnProcess-", "Process ForkServerProcess-",
                "InvalidStateError", "Exception in thread")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGINT to a process group")]


def expects_error(cell) -> bool:
    return "raises-exception" in cell.metadata.get("tags", [])


def _workers(kernel: psutil.Process) -> dict[int, str]:
    """The kernel's descendant processes other than the standard library's own services."""
    found = {}
    try:
        children = kernel.children(recursive=True)
    except psutil.Error:
        return found
    for child in children:
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if not any(service in cmdline for service in STDLIB_SERVICES):
            found[child.pid] = cmdline
    return found


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
        else:
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def _error(cell):
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


async def _interrupt_run(nb, work: Path, env: dict) -> dict:
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(work)}})
    client.reset_execution_trackers()
    seen: dict[int, str] = {}
    result = {"interrupted": None, "failures": [], "seen": seen}
    async with client.async_setup_kernel(env=env):
        kernel = psutil.Process(client.km.provisioner.process.pid)
        seen[kernel.pid] = "the kernel"
        index = 0
        cells = nb.cells
        count = len(cells)
        while index < count:
            cell = cells[index]
            if cell.cell_type != "code":
                index += 1
                continue
            before = set(_workers(kernel))
            task = asyncio.ensure_future(client.async_execute_cell(cell, index))
            first_worker = None
            while not task.done():
                now = _workers(kernel)
                seen.update(now)
                if result["interrupted"] is None and set(now) - before and first_worker is None:
                    first_worker = time.monotonic()
                if first_worker is not None and time.monotonic() - first_worker >= SETTLE_SECONDS:
                    break
                await asyncio.sleep(0.02)
            if not task.done():  # still running, with its workers: press the stop button
                result["interrupted"] = index
                t0 = time.monotonic()
                await client.km.interrupt_kernel()
                try:
                    await asyncio.wait_for(asyncio.shield(task), STUCK_SECONDS)
                except asyncio.TimeoutError:
                    result["stuck"] = f"cell {index} still running {STUCK_SECONDS} s after the interrupt"
                    await task  # let nbclient's own cell timeout end it
                result["ended_after"] = time.monotonic() - t0
                result["interrupt_output"] = _text(cell)
                error = _error(cell)
                result["interrupt_error"] = f"{error['ename']}: {error['evalue']}" if error else None
                cell = nbformat.v4.new_code_cell(cell.source, metadata=dict(cell.metadata))
                task = asyncio.ensure_future(client.async_execute_cell(cell, index))  # re-run it
                while not task.done():
                    seen.update(_workers(kernel))
                    await asyncio.sleep(0.02)
            await task
            error = _error(cell)
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            if error and not expects_error(cell):
                result["failures"].append(f"cell {index} `{first[:70]}` raised {error['ename']}: "
                                          f"{error['evalue'][:300]}")
            elif not error and expects_error(cell):
                result["failures"].append(f"cell {index} `{first[:70]}` is tagged raises-exception "
                                          f"but did not raise")
            index += 1
        probe = nbformat.v4.new_code_cell(PROBE_AFTER)  # the baseline probe ran as the first cell
        cells.append(probe)
        await client.async_execute_cell(probe, len(cells) - 1)
        text = _text(probe)
        result["leaks"] = (json.loads(text.split("LEAK-REPORT ", 1)[1].splitlines()[0])
                           if "LEAK-REPORT " in text else {"probe": [text]})
    await asyncio.sleep(1)  # the kernel has shut down; give the OS a moment to reap its children
    result["orphans"] = [f"pid {pid}: {cmd}" for pid, cmd in seen.items()
                         if psutil.pid_exists(pid) and _alive(pid)]
    return result


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def interrupt_notebook(name: str, tmp_path: Path) -> dict:
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nb = nbformat.read(work / name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE_BEFORE))
    kernel_tmp = Path(tempfile.mkdtemp(prefix="k"))
    env = dict(os.environ, TMPDIR=str(kernel_tmp), IPYTHONDIR=str(tmp_path / "ipython"))
    env.pop("MPLBACKEND", None)
    try:
        result = asyncio.run(_interrupt_run(nb, work, env))
        result["temp_files"] = sorted(str(p.relative_to(kernel_tmp)) for p in kernel_tmp.rglob("*"))
        if result["interrupted"] is not None:
            result["interrupted"] -= 1  # the probe cell we put first
        return result
    finally:
        shutil.rmtree(kernel_tmp, ignore_errors=True)


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_interrupt_a_process_pool_cell_then_carry_on(name, tmp_path):
    result = interrupt_notebook(name, tmp_path)
    print(f"{name}: interrupted cell {result['interrupted']}, "
          f"ended {result.get('ended_after', 0):.1f} s after the interrupt, "
          f"error {result.get('interrupt_error')!r}, output {len(result.get('interrupt_output', '').splitlines())} lines")
    if result["interrupted"] is None:
        # no cell of this notebook starts worker processes that live long enough to interrupt
        assert not any("ProcessPoolExecutor(" in c.source for c in nbformat.read(
            NOTEBOOKS / name, as_version=4).cells if c.cell_type == "code") or name.startswith("00"), (
            f"{name} has process-pool cells but none was still running {SETTLE_SECONDS} s after its "
            f"workers started")
        return
    assert "stuck" not in result, result["stuck"]
    noise = [word for word in WORKER_NOISE if word in result["interrupt_output"]]
    assert not noise, (f"{name}: the interrupted cell {result['interrupted']} showed worker or manager "
                       f"noise {noise}:\n{result['interrupt_output'][-3000:]}")
    assert not result["failures"], (f"{name}: after interrupting cell {result['interrupted']} and "
                                    f"re-running it:\n" + "\n".join(result["failures"]))
    leaks = {what: items for what, items in result["leaks"].items() if items}
    assert not leaks, f"{name}: left behind: {json.dumps(leaks, indent=1)}"
    assert not result["orphans"], f"{name}: processes outlived the kernel: {result['orphans']}"
    assert not result["temp_files"], f"{name}: left in the temporary folder: {result['temp_files']}"
