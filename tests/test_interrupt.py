"""Interrupt a process-pool cell, re-run it, run the rest: what a learner does with the stop button.

For every notebook, in a fresh kernel (nbclient, a temporary copy of notebooks/, the start method in
force), cells run in order until the first one that starts worker processes and is still running a
moment after they appear: that cell is interrupted the way JupyterLab's stop button does it, with the
kernel manager's ``interrupt_kernel()`` (SIGINT to the kernel's process group, so the pool's
workers get it too). Then:

* the interrupted cell must end promptly (no cell stuck in a join or a wait);
* the learner sees one clear line, not a wall of tracebacks: the cell's error is the single line
  that ``futureslab.setup()`` makes of a ``KeyboardInterrupt`` (futureslab.interrupts), still an
  error (so "Run all" stops), and nothing comes from the executor's manager thread (Python 3.10/3.11's
  ``InvalidStateError``). A cell waiting in a top-level ``await`` is the one exception to the name:
  ipykernel stops it by cancelling its coroutine, so it ends in ``CancelledError``, shown as the
  single line futureslab.interrupts makes of that (only for a cell that awaits). A worker process that was idle when SIGINT arrived prints its own
  ``Process ForkProcess-N:`` traceback (the standard library's ``BaseProcess._bootstrap``; 05b and the
  instructor guide say so): allowed, but only that, ending in ``KeyboardInterrupt``;
* re-running that cell succeeds, and so does every later cell (cells tagged ``raises-exception``
  must raise);
* a notebook whose process-pool cells all end sooner than that has nothing to interrupt (03's one
  process-pool cell takes a fraction of a second): it passes only if every such cell that ran for
  ``SETTLE_SECONDS`` or more had its worker processes seen (else the watching is what failed), and its
  cells must still all succeed and leave nothing behind;
* nothing is left: the leak probe of tests/test_no_leaks.py runs at the end, and every process that
  was ever a descendant of the kernel is gone once the kernel has shut down (no orphaned worker).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

from script_support import STOP_FIRST_WORKER, run_in_own_group
from test_no_leaks import NOTEBOOKS, PROBE_AFTER, PROBE_BEFORE

NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
SETTLE_SECONDS = 0.4     # interrupt this long after the cell's first worker process appears
LATE_SECONDS = 0.3       # a cell that ends this soon after the interrupt, with no error, had already ended
STUCK_SECONDS = 30       # an interrupted cell must end within this
REPLY_GRACE = 5.0        # once the kernel has said "idle" for a cell, its reply must come within this
STDLIB_SERVICES = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")
# What the executor's manager thread prints on Python 3.10/3.11 when it finds a future the interrupt
# cancelled (gh-107219), or any other thread that dies: must not reach the learner.
MANAGER_NOISE = ("InvalidStateError", "Exception in thread")
# What a worker process prints when SIGINT reaches it between tasks (BaseProcess._bootstrap).
WORKER_HEADER = re.compile(r"^Process (?:Fork|Spawn|ForkServer)Process-\d+:$", re.M)
ONE_LINE = "KeyboardInterrupt: you interrupted this cell"
ONE_LINE_AWAIT = "CancelledError: you interrupted this cell"  # ipykernel cancels an awaiting cell

pytestmark = [pytest.mark.slow, pytest.mark.course_again,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGINT to a process group")]


def expects_error(cell) -> bool:
    return "raises-exception" in cell.metadata.get("tags", [])


class _Client(NotebookClient):
    """nbclient's client, which also notices a reply that the kernel will never send.

    An interrupt that reaches the kernel after a cell's code has ended, but before ipykernel has sent
    the cell's ``execute_reply`` (it flushes the output streams first), raises ``KeyboardInterrupt``
    in ipykernel's own message handler: ipykernel logs "KeyboardInterrupt caught in kernel.", says
    "idle" and handles the next request, and that cell's reply never comes. nbclient would wait for
    it until its cell timeout (120 s) and raise ``CellTimeoutError`` (CI saw exactly this, with that
    log line, on notebook 01; ``test_a_reply_lost_to_a_late_interrupt_is_noticed`` makes it happen).
    Here, once the kernel has said "idle" for the cell and no reply has come within ``REPLY_GRACE``,
    the wait ends with a reply whose status is ``"lost"``, and the cell's message id is recorded in
    ``lost``. The cell's outputs are those the kernel sent.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lost: list[str] = []

    async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
        reply = asyncio.ensure_future(super()._async_poll_for_reply(
            msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive))
        await asyncio.wait({reply, task_poll_output_msg}, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done() and task_poll_output_msg.done() and not task_poll_output_msg.cancelled():
            await asyncio.wait({reply}, timeout=REPLY_GRACE)  # "idle" has come: the reply is due
            if not reply.done():
                reply.cancel()
                task_poll_kernel_alive.cancel()
                self.lost.append(msg_id)
                return {"parent_header": {"msg_id": msg_id}, "content": {"status": "lost"}}
        return await reply


def _workers(kernel: psutil.Process) -> dict[int, str]:
    """The kernel's descendant processes other than the standard library's own services.

    A service is the kernel's own child: the workers a forkserver forks carry the forkserver's
    command line too, but they are its children, and they are workers.
    """
    found = {}
    try:
        children = kernel.children(recursive=True)
    except psutil.Error:
        return found
    for child in children:
        try:
            cmdline = " ".join(child.cmdline())
            ppid = child.ppid()
        except psutil.Error:
            continue
        if not (ppid == kernel.pid and any(service in cmdline for service in STDLIB_SERVICES)):
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
    client = _Client(nb, timeout=120, kernel_name="python3", allow_errors=True,
                     resources={"metadata": {"path": str(work)}})
    client.reset_execution_trackers()
    seen: dict[int, str] = {}
    # cells[index] = (seconds the cell ran, seconds it ran after its first worker appeared or None)
    result = {"interrupted": None, "failures": [], "seen": seen, "cells": {}}
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
            started = time.monotonic()
            lost_before = len(client.lost)
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
                error = _error(cell)
                lost = lost_before < len(client.lost)
                if (error is None and not expects_error(cell) and "stuck" not in result
                        and (result["ended_after"] < LATE_SECONDS or lost)):
                    # The cell's code ended as the interrupt was sent: SIGINT reached an idle kernel,
                    # or ipykernel's own handler between the cell's end and its reply (the reply is
                    # then lost, see _Client): nothing was interrupted. Count the cell as run and
                    # interrupt a later one. A cell that ignored the interrupt would run on for
                    # longer than LATE_SECONDS, and its reply would not be lost.
                    result["interrupted"] = None
                    result.setdefault("late", []).append(index)
                    if lost:
                        result.setdefault("lost_replies", []).append(index)
                    ended = time.monotonic()
                    result["cells"][index] = (ended - started, ended - first_worker)
                    index += 1
                    continue
                result["interrupt_output"] = _text(cell)
                result["interrupt_error"] = f"{error['ename']}: {error['evalue']}" if error else None
                result["interrupt_traceback"] = error["traceback"] if error else None
                result["interrupt_streams"] = "".join(o.get("text", "") for o in cell.get("outputs", [])
                                                      if o.get("output_type") == "stream" and o.get("name") == "stderr")
                if lost:  # an interrupted cell whose reply was lost too: say so, not as the re-run's
                    result["failures"].append(f"cell {index}: interrupted, and the kernel never replied")
                lost_before = len(client.lost)  # judge the re-run on its own
                cell = nbformat.v4.new_code_cell(cell.source, metadata=dict(cell.metadata))
                task = asyncio.ensure_future(client.async_execute_cell(cell, index))  # re-run it
                while not task.done():
                    seen.update(_workers(kernel))
                    await asyncio.sleep(0.02)
            await task
            if result["interrupted"] != index:
                ended = time.monotonic()
                result["cells"][index] = (ended - started, None if first_worker is None else ended - first_worker)
            error = _error(cell)
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            if len(client.lost) > lost_before:  # no interrupt was sent while this run of it ran
                result["failures"].append(f"cell {index} `{first[:70]}`: the kernel said idle but never replied")
            elif error and not expects_error(cell):
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


def check_interrupt_output(traceback: list[str] | None, streams: str, awaits: bool = False) -> list[str]:
    """What is wrong with an interrupted cell's output ([] if the learner sees one clear line).

    ``awaits``: the cell has a top-level ``await``, so its one line may also be ``ONE_LINE_AWAIT``.
    """
    problems = []
    lines = (ONE_LINE, ONE_LINE_AWAIT) if awaits else (ONE_LINE,)
    if not traceback or len(traceback) != 1 or "\n" in traceback[0] or not traceback[0].startswith(lines):
        problems.append(f"the error is not one of the lines {lines!r}...: {traceback}")
    problems += [f"{word} in the output" for word in MANAGER_NOISE if word in streams]
    if WORKER_HEADER.search(streams):
        # idle workers' tracebacks (they may interleave): every line at the left margin must be a
        # header, "Traceback (most recent call last):" or the exception that ended it, KeyboardInterrupt
        for line in streams.splitlines():
            if line.strip() and not line[0].isspace() and not WORKER_HEADER.match(line) and line not in (
                    "Traceback (most recent call last):", "KeyboardInterrupt"):
                problems.append(f"beside the workers' KeyboardInterrupt tracebacks: {line[:200]!r}")
    elif "Traceback (most recent call last)" in streams:
        problems.append("a traceback in the output that no worker process printed")
    return problems


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
    if result.get("late"):
        print(f"{name}: cell(s) {result['late']} ended as the interrupt was sent; a later cell was tried")
    print(f"{name}: interrupted cell {result['interrupted']}, "
          f"ended {result.get('ended_after', 0):.1f} s after the interrupt, "
          f"error {result.get('interrupt_error')!r}, output {len(result.get('interrupt_output', '').splitlines())} lines, "
          f"{len(WORKER_HEADER.findall(result.get('interrupt_streams') or ''))} idle worker traceback(s)")
    cells = nbformat.read(NOTEBOOKS / name, as_version=4).cells
    if result["interrupted"] is None:
        # nothing to interrupt: every cell that started workers ended within SETTLE_SECONDS of that.
        # A process-pool cell that ran longer than that with no worker seen means the watching failed.
        pool_cells = {i - 1: ran for i, ran in result["cells"].items()  # i - 1: the probe cell is first
                      if "ProcessPoolExecutor(" in cells[i - 1].source}
        print(f"{name}: nothing to interrupt; process-pool cells (seconds run, seconds after the first "
              f"worker appeared): {pool_cells}")
        unseen = [f"cell {i} ran {total:.2f} s and no worker process of it was seen"
                  for i, (total, after) in pool_cells.items() if after is None and total >= SETTLE_SECONDS]
        assert not unseen, f"{name}: " + "; ".join(unseen)
    else:
        assert "stuck" not in result, result["stuck"]
        awaits = "await " in cells[result["interrupted"]].source
        names = ("KeyboardInterrupt", "CancelledError") if awaits else ("KeyboardInterrupt",)
        assert result["interrupt_error"] is not None and result["interrupt_error"].startswith(names), (
            f"{name}: the interrupted cell {result['interrupted']} did not end in {' or '.join(names)}: "
            f"{result['interrupt_error']}")
        problems = check_interrupt_output(result["interrupt_traceback"], result["interrupt_streams"], awaits)
        assert problems == [], (
            f"{name}: the interrupted cell {result['interrupted']} showed more than one clear line: "
            f"{problems}\n{result['interrupt_output'][-3000:]}")
    assert not result["failures"], (f"{name}: after interrupting cell {result['interrupted']} and "
                                    f"re-running it:\n" + "\n".join(result["failures"]))
    leaks = {what: items for what, items in result["leaks"].items() if items}
    assert not leaks, f"{name}: left behind: {json.dumps(leaks, indent=1)}"
    assert not result["orphans"], f"{name}: processes outlived the kernel: {result['orphans']}"
    assert not result["temp_files"], f"{name}: left in the temporary folder: {result['temp_files']}"


IDLE_WORKER = """Process ForkProcess-2:
Traceback (most recent call last):
  File "/usr/lib/python3.11/multiprocessing/process.py", line 314, in _bootstrap
    self.run()
  File "/usr/lib/python3.11/multiprocessing/queues.py", line 103, in get
    res = self._recv_bytes()
KeyboardInterrupt
"""


def test_the_one_line_check_is_not_vacuous():
    """The check rejects IPython's full traceback, a manager thread's error and a worker's other death."""
    good = [ONE_LINE + " at line 2. It did not finish ..."]
    assert check_interrupt_output(good, "") == []
    awaiting = [ONE_LINE_AWAIT + " at line 5; Jupyter stops a cell that is waiting in an await ..."]
    assert check_interrupt_output(awaiting, "", awaits=True) == []
    assert check_interrupt_output(awaiting, "")  # only a cell that awaits may end that way
    assert check_interrupt_output(good, IDLE_WORKER) == []  # the standard library's own, documented
    interleaved = "Process ForkProcess-1:\nProcess ForkProcess-2:\n" + IDLE_WORKER.split("\n", 1)[1] * 2
    assert check_interrupt_output(good, interleaved) == []
    full = ["\x1b[31m-----\x1b[39m", "\x1b[31mKeyboardInterrupt\x1b[39m   Traceback (most recent call last)",
            "Cell In[2], line 2 ...", "KeyboardInterrupt: "]
    assert check_interrupt_output(full, "")
    assert check_interrupt_output(None, "")
    manager = ("Exception in thread Thread-3:\nTraceback (most recent call last):\n  ...\n"
               "concurrent.futures._base.InvalidStateError: CANCELLED: <Future at 0x1 state=cancelled>\n")
    assert check_interrupt_output(good, manager)
    assert check_interrupt_output(good, IDLE_WORKER.replace("KeyboardInterrupt\n", "AttributeError: x\n"))


PENDING_AFTER_BREAK = r"""
import os, signal, sys, threading, time
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from futureslab import interrupts, tasks
if sys.argv[1] == "hook":
    interrupts._installed["previous_excepthook"] = threading.excepthook
    threading.excepthook = interrupts._excepthook
if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"))
    fs = [pool.submit(tasks.sleep_for, 1.0) for _ in range(10)]
    time.sleep(0.5)
    assert fs[5].cancel()  # queued behind the call queue, as map's clean-up cancels on an interrupt
    os.kill(list(pool._processes.values())[0].pid, signal.SIGKILL)  # a worker dies: the pool breaks
    pool.shutdown(wait=True)
    print("STATES", [f._state for f in fs])
"""


@pytest.mark.parametrize("hook", ["hook", "no-hook"])
def test_a_broken_pool_fails_every_pending_future(hook, tmp_path):
    """After a worker dies, every future not cancelled ends (BrokenProcessPool), none stays pending.

    Python 3.12+ does it itself; on 3.10/3.11 the manager thread dies of InvalidStateError on the
    cancelled future first (gh-107219) and leaves the rest pending for ever, unless the hook that
    futureslab.setup() installs in a kernel finishes the job.
    """
    script = tmp_path / "pending.py"
    script.write_text(PENDING_AFTER_BREAK)
    run = subprocess.run([sys.executable, str(script), hook], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    states = run.stdout.split("STATES ", 1)[1].strip() if "STATES " in run.stdout else run.stdout
    fixed = hook == "hook" or sys.version_info >= (3, 12)
    if fixed:
        assert "PENDING" not in states and "InvalidStateError" not in run.stderr, (states, run.stderr[-2000:])
        assert states.count("CANCELLED") == 1, states
    else:  # the bug the hook is for is real on this Python
        assert "PENDING" in states and "InvalidStateError: CANCELLED" in run.stderr, (states, run.stderr[-2000:])


STUCK_WORKER = r"""
import os, sys, time
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from futureslab import interrupts, tasks
if __name__ == "__main__":
    guard = interrupts.stopping_workers if sys.argv[1] == "guard" else nullcontext
    method = os.environ.get("FUTURESLAB_START_METHOD") or mp.get_start_method()
    pool = ProcessPoolExecutor(2, mp_context=mp.get_context(method))
    # What a worker that dies of the interrupt just as it took the call queue's read lock leaves
    # behind: that lock, held for ever. Here this process takes it before the workers start, so
    # they start, find it taken, and can never read their next task (or their stop signal).
    pool._call_queue._rlock.acquire()
    futures = [pool.submit(tasks.square, n) for n in (3, 4)]  # spawn/forkserver start one per task
    while len(pool._processes) < 2:
        time.sleep(0.01)
    t0 = time.perf_counter()
    try:
        with pool, guard(pool):
            raise KeyboardInterrupt  # the stop button, while the cell was inside the pool's block
    except KeyboardInterrupt:
        pass
    print("ENDED", round(time.perf_counter() - t0, 2), flush=True)
"""


@pytest.mark.parametrize("guard", ["guard", "no-guard"])
def test_stopping_workers_frees_a_shutdown_that_would_wait_for_ever(guard, tmp_path):
    """An interrupt in a process-pool block whose workers cannot take the call queue's lock.

    With ``interrupts.stopping_workers`` (process_sweep, cpu_race, the pipeline...) the workers are
    terminated before the shutdown waits, and the block ends at once. Without it the shutdown waits
    for workers that never get their stop signal: the process is still stuck after 10 s.
    """
    script = tmp_path / "stuck.py"
    script.write_text(STUCK_WORKER)
    run = run_in_own_group([sys.executable, str(script), guard], timeout=10, cwd=tmp_path)
    if run.timed_out:  # killed, with its workers and helpers
        assert guard == "no-guard", f"stuck although the workers were terminated: {run.stderr[-2000:]!r}"
        return
    assert guard == "guard", f"the unguarded shutdown ended although no worker could stop: {run.stdout!r}"
    assert run.returncode == 0 and "ENDED" in run.stdout, run.stderr[-2000:]
    assert float(run.stdout.split("ENDED", 1)[1]) < 5, run.stdout


def test_terminate_workers_leaves_no_worker_and_no_manager_thread_behind():
    """After ``terminate_workers`` and the pool's shutdown, every worker has exited, killed by the
    signal, and the pool's manager thread has ended: on 3.14+ ``terminate_workers()`` shuts the pool
    down without waiting, so a later ``shutdown(wait=True)`` does not wait any more, and the helper
    must (this failed on 3.14.8 before the helper waited for the manager thread)."""
    from concurrent.futures import ProcessPoolExecutor

    from futureslab import interrupts, tasks

    pool = ProcessPoolExecutor(1)
    future = pool.submit(tasks.sleep_for, 30)
    deadline = time.monotonic() + 20
    while not future.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    workers, manager = list(pool._processes.values()), pool._executor_manager_thread
    t0 = time.perf_counter()
    interrupts.terminate_workers(pool)
    pool.shutdown(wait=True)
    assert time.perf_counter() - t0 < 10  # not the 30 s the task would take
    assert all(p.exitcode is not None and p.exitcode < 0 for p in workers), [p.exitcode for p in workers]
    assert not manager.is_alive()
    with pytest.raises(ValueError, match="wait"):
        interrupts.terminate_workers(pool, wait=-1)


# --- interrupt_held: a start-up that cannot be closed half-way ---------------------------------

@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGINT") or sys.platform == "win32",
                    reason="sends SIGINT to this process")
def test_interrupt_held_raises_only_after_the_block_and_restores_the_handler():
    import signal
    import threading

    from futureslab.interrupts import interrupt_held

    before = signal.getsignal(signal.SIGINT)
    steps = []
    with pytest.raises(KeyboardInterrupt) as caught:
        with interrupt_held() as interrupted:
            assert not interrupted()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs in the main thread at the next bytecode
            steps.append(interrupted())
            steps.append("the block went on after the interrupt")
    assert steps == [True, "the block went on after the interrupt"]
    assert caught.value.__cause__ is None and signal.getsignal(signal.SIGINT) is before
    # the block failed too: the interrupt wins, the block's error is its cause
    with pytest.raises(KeyboardInterrupt) as caught:
        with interrupt_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            raise RuntimeError("Nanny failed to start")
    assert isinstance(caught.value.__cause__, RuntimeError) and signal.getsignal(signal.SIGINT) is before
    # no interrupt: nothing raised, an error passes unchanged
    with interrupt_held() as interrupted:
        pass
    assert not interrupted()
    with pytest.raises(ValueError):
        with interrupt_held():
            raise ValueError("x")
    assert signal.getsignal(signal.SIGINT) is before
    # a child process started in the block inherits the blocked SIGINT: an interrupt of the whole
    # process group (as Jupyter sends) cannot kill it half-started
    if hasattr(signal, "pthread_sigmask"):
        with pytest.raises(KeyboardInterrupt):
            with interrupt_held():
                child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5); print('survived')"],
                                         stdout=subprocess.PIPE, text=True)
                time.sleep(0.2)
                child.send_signal(signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
                out, _ = child.communicate(timeout=10)
        assert (child.returncode, out.strip()) == (0, "survived")
    # outside the main thread it cannot install a handler: it holds nothing and does not fail
    seen = []

    def elsewhere():
        with interrupt_held() as interrupted:
            seen.append(interrupted())
    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert seen == [False] and signal.getsignal(signal.SIGINT) is before


_INTERRUPTED_START = """
import functools, os, signal, sys, threading, time
import psutil
from distributed import Security
from distributed.nanny import Nanny
from distributed.scheduler import Scheduler
from futureslab import lesson09

def interrupt_first(cls, name):
    # Jupyter's interrupt, sent from inside Dask's constructor at the moment that matters: patched
    # onto the class (the scheduler binds its handlers when it is made), once, then the real method.
    original, sent = getattr(cls, name), []  # AttributeError if Dask renamed it: the test must not pass blind
    @functools.wraps(original)  # Dask reads a handler's signature (does it take `comm`?)
    async def wrapper(self, *args, **kwargs):
        if not sent:
            sent.append(time.monotonic())
            os.killpg(os.getpgrp(), signal.SIGINT)
        return await original(self, *args, **kwargs)
    setattr(cls, name, wrapper)
    return sent

if __name__ == "__main__":
    # in a process group of its own, like a kernel: Jupyter interrupts the whole group, workers included
    phase, held = sys.argv[1], sys.argv[2] == "held"
    if not held:  # the control: start_cluster as before it had interrupt_held and killed what it started
        import contextlib, futureslab.interrupts
        futureslab.interrupts.interrupt_held = lambda: contextlib.nullcontext(lambda: False)
        lesson09._kill = lambda processes: None
        lesson09._tear_down = lambda cluster: None
    sent = interrupt_first(*{"spawning": (Nanny, "instantiate"), "registering": (Scheduler, "add_worker"),
                             "stuck": (Scheduler, "add_worker")}[phase])
    if phase == "stuck":  # and a worker process stops answering as soon as it exists
        stop_first_worker()
        lesson09.START_TIMEOUT = 5
    try:
        lab = lesson09.start_cluster(Security.temporary())
        lab.close()
        print("finished", "without an interrupt" if not sent else "although the interrupt came inside it")
    except KeyboardInterrupt:
        print("interrupted", "inside the constructor" if sent else "from elsewhere")
    time.sleep(0.5)
    me = psutil.Process()
    print("threads", sorted(t.name for t in threading.enumerate()))
    print("listening", sorted(c.laddr.port for c in me.net_connections() if c.status == psutil.CONN_LISTEN))
    def service(p):  # multiprocessing's resource tracker stays for the interpreter's life, by design
        try:
            return "resource_tracker" in " ".join(p.cmdline())
        except psutil.NoSuchProcess:
            return True  # already gone
    print("processes", [p.pid for p in me.children(recursive=True) if not service(p)])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT")
@pytest.mark.parametrize("phase, held", [("spawning", True), ("registering", True), ("stuck", True),
                                         ("registering", False)],
                         ids=["spawning", "registering", "a-worker-stuck", "control-without-interrupt_held"])
def test_an_interrupted_cluster_start_leaves_nothing_behind(phase, held, tmp_path):
    """Interrupted inside Dask's LocalCluster constructor (as a nanny starts spawning its worker, or as
    the first worker registers with the scheduler), notebook 09's start_cluster must raise
    KeyboardInterrupt and leave no port, thread or worker process. The interrupt is sent from inside
    the constructor, not after a fixed delay: a cluster starts in about 0.8 s on 3.14 here, so the old
    0.9 s timer could land after it had finished (seen once, `make test-pythons` at ba66c96).
    The control runs start_cluster without interrupt_held, and without its killing the processes it
    started and tearing down a cluster its close left open (those alone left nothing in 3 of 3 runs): the same check must then find something
    left behind in one of up to 3 runs (by hand it found the half-started scheduler's port, its
    threads and a worker).
    With a worker stuck as it starts (stopped with SIGSTOP; a held interrupt waits for the
    constructor, which waited for that worker for good: 1 of 37 runs hung so on 3.10, `make
    test-pythons` at 87939a7), start_cluster's watchdog ends the start after START_TIMEOUT (5 s here)
    and the interrupt is raised, with nothing left behind."""
    script = tmp_path / "start.py"
    script.write_text(STOP_FIRST_WORKER + _INTERRUPTED_START)
    # The control may need more than one run: without interrupt_held, Dask sometimes closes its half-
    # started cluster itself before the check looks (1 of the 10 control runs seen: 3.12.1, `make
    # test-pythons` at 3727ea8, left nothing). It must leave something behind in one of 3 runs.
    outputs = []
    for _ in range(1 if held else 3):
        out = run_in_own_group([sys.executable, str(script), phase, "held" if held else "not-held"],
                               timeout=90, cwd=tmp_path)
        if out.timed_out:
            pytest.fail(f"the cluster start did not end within 90 s (killed):\n{out.stdout}{out.stderr[-2000:]}")
        outputs.append(out.stdout)
        lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
        assert lines.get("interrupted") == "inside the constructor", out.stdout + out.stderr[-2000:]
        left = [lines.get("threads") != "['MainThread']", lines.get("listening") != "[]", lines.get("processes") != "[]"]
        if held:
            assert not any(left), out.stdout
        elif any(left):
            break
    else:
        if not held:
            pytest.fail("the control left nothing behind in 3 runs: the check could not fail\n" + "\n".join(outputs))


# --- an interrupt just after a cell's code ended ------------------------------------------------

async def _late_interrupt(client_class, nb) -> tuple[float, object]:
    """Run nb's first cell with a kernel that waits 3 s between the cell's end and its reply
    (ipykernel's own ``_execute_sleep``, 0.5 ms by default), interrupt it 1.5 s in, then run the
    second cell. Returns the seconds the first cell's wait took after the interrupt, and its end."""
    client = client_class(nb, timeout=12, kernel_name="python3", allow_errors=True,
                          extra_arguments=["--IPythonKernel._execute_sleep=3"])
    async with client.async_setup_kernel():
        task = asyncio.ensure_future(client.async_execute_cell(nb.cells[0], 0))
        await asyncio.sleep(1.5)
        await client.km.interrupt_kernel()
        t0 = time.monotonic()
        try:
            ended = await task
        except Exception as exc:  # nbclient's own CellTimeoutError
            ended = exc
        waited = time.monotonic() - t0
        if isinstance(client, _Client):
            await client.async_execute_cell(nb.cells[1], 1)
            ended = (ended, list(client.lost))
        return waited, ended


@pytest.mark.parametrize("client_class", [_Client, NotebookClient], ids=["noticed", "nbclient"])
def test_a_reply_lost_to_a_late_interrupt_is_noticed(client_class):
    """The interrupt reaches the kernel after the cell's code ended, before its reply: ipykernel
    never replies. The harness's client ends the wait REPLY_GRACE s after the kernel said idle, with
    the cell's output kept and the kernel ready for the next cell; plain nbclient waits until its
    cell timeout and raises CellTimeoutError (what CI saw on notebook 01)."""
    from nbclient.exceptions import CellTimeoutError

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('the code ended')"),
                                         nbformat.v4.new_code_cell("print('next cell')")])
    waited, ended = asyncio.run(_late_interrupt(client_class, nb))
    if client_class is NotebookClient:
        assert isinstance(ended, CellTimeoutError), ended  # the control: nbclient alone waits in vain
        return
    cell, lost = ended
    assert len(lost) == 1 and waited < REPLY_GRACE + 3, (waited, lost)
    assert _text(cell).strip() == "the code ended" and _error(cell) is None
    assert _text(nb.cells[1]).strip() == "next cell"
