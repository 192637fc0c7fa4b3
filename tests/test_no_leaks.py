"""No notebook leaves anything behind: child processes, threads, listening ports, or files.

Each notebook runs top to bottom (nbclient, a fresh kernel, the start method in force) in a temporary
copy of notebooks/, with two hidden cells added:

* first, a cell that imports what the lessons import (so threads those libraries start for
  themselves belong to the baseline) and records the kernel's threads and listening sockets;
* last, after the notebook's own last cell (which must stop what it started), a cell that waits a
  short grace period for things to wind down and then reports what is still there that was not
  before: threads, child processes (by /proc, and ``multiprocessing.active_children()``), and
  listening TCP sockets held by the kernel or its children.

After the kernel has shut down, the working folder (the notebook's own folder, where relative paths
land) must hold exactly the files it held before, and the kernel's temporary folder (a private
``TMPDIR``, where a lesson should write, e.g. with ``tempfile.TemporaryDirectory()``) must be empty
again: a lesson cleans up what it writes there, and so must the libraries it drives (an empty
``pymp-*`` folder from multiprocessing, a Dask ``dask-scratch-space`` with its lock files, are leftovers).

Allowed, because they are not the notebook's: pyzmq's garbage-collector thread, which the kernel
starts when it first sends a large output. Two processes are allowed to outlive a notebook because the standard library keeps them for the
kernel's whole life and ends them with it: the forkserver (start method ``forkserver``) and the
multiprocessing resource tracker. They are not the notebook's to stop.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux only)")]

GRACE_SECONDS = 5.0

PROBE_BEFORE = r'''
# futureslab leak probe: baseline (added by tests/test_no_leaks.py; not part of the notebook)
import json as _lp_json, os as _lp_os, threading as _lp_threading, time as _lp_time
import multiprocessing as _lp_mp
import concurrent.futures, matplotlib, matplotlib.pyplot, requests
import futureslab, futureslab.tasks, futureslab.server, futureslab.trace, futureslab.timing

def _lp_listening():
    """{inode: 'host:port'} of the listening TCP sockets held by this process and its descendants."""
    listening = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A":  # TCP_LISTEN
                listening[parts[9]] = parts[1]
    held = {}
    for pid in [_lp_os.getpid()] + _lp_descendants():
        try:
            fds = _lp_os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = _lp_os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in listening:
                address = listening[link[8:-1]]
                held[link[8:-1]] = f"pid {pid} port {int(address.rsplit(':', 1)[1], 16)}"
    return held

def _lp_descendants(pid=None):
    """Every living descendant of this kernel, from /proc."""
    pid = pid or _lp_os.getpid()
    children = {}
    for entry in _lp_os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])  # a zombie counts: nobody reaped it
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out

def _lp_cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"

def _lp_ppid(pid):
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None

_LP_STDLIB_SERVICES = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")
# Threads the kernel's own machinery starts lazily (pyzmq's collector for zero-copy messages, started
# by the first large output, e.g. a figure): the kernel's, not the notebook's.
_LP_KERNEL_THREADS = ("zmq.utils.garbage.GarbageCollectorThread",)
# Library threads that live as long as the process by design: dask.distributed's one-thread offload
# pool (distributed.utils._offload_executor, started by a client's first task, daemon, never shut down
# by the library; shutting it down would break every later Dask call in the kernel).
_LP_LIBRARY_THREAD_PREFIXES = ("Dask-Offload_",)
_lp_baseline = {"threads": {t.ident for t in _lp_threading.enumerate()}, "sockets": set(_lp_listening())}
'''

PROBE_AFTER = r'''
# futureslab leak probe: what is left (added by tests/test_no_leaks.py; not part of the notebook)
def _lp_left():
    threads = [f"{t.name} ({type(t).__module__}.{type(t).__qualname__}, "
               f"target={getattr(getattr(t, '_target', None), '__qualname__', None)}, daemon={t.daemon})" for t in _lp_threading.enumerate()
               if t.ident not in _lp_baseline["threads"] and t.is_alive()
               and f"{type(t).__module__}.{type(t).__qualname__}" not in _LP_KERNEL_THREADS
               and not t.name.startswith(_LP_LIBRARY_THREAD_PREFIXES)]
    # a service is the kernel's own child: the workers a forkserver forks carry its command line too
    processes = [f"pid {p}: {_lp_cmdline(p)}" for p in _lp_descendants()
                 if not (_lp_ppid(p) == _lp_os.getpid() and any(s in _lp_cmdline(p) for s in _LP_STDLIB_SERVICES))]
    active = [repr(p) for p in _lp_mp.active_children()]
    sockets = [v for k, v in _lp_listening().items() if k not in _lp_baseline["sockets"]]
    return {"threads": threads, "processes": processes, "active_children": active, "listening": sockets}

_lp_deadline = _lp_time.monotonic() + __GRACE__
while True:
    _lp_report = _lp_left()
    if not any(_lp_report.values()) or _lp_time.monotonic() > _lp_deadline:
        break
    _lp_time.sleep(0.1)
print("LEAK-REPORT " + _lp_json.dumps(_lp_report))
'''.replace("__GRACE__", repr(GRACE_SECONDS))


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run_with_probes(nb, work: Path, tmp_path: Path, allow_errors: bool = False) -> dict:
    """Execute ``nb`` (in place) in folder ``work`` with the probe cells; return the probe's report.

    The report's ``"temp_files"`` lists what the kernel's private temporary folder still holds after
    the kernel has shut down (it starts empty). With ``allow_errors`` every cell runs whatever
    raises (the caller reads the errors from the cells' outputs).
    """
    # A short private temp folder: forkserver's socket lives in it, and an AF_UNIX path may not be
    # longer than ~104-108 bytes (pytest's tmp_path is too deep for that).
    kernel_tmp = Path(tempfile.mkdtemp(prefix="k"))
    try:
        report = _run_with_probes(nb, work, tmp_path, kernel_tmp, allow_errors)
        report["temp_files"] = sorted(_listing(kernel_tmp))
        return report
    finally:
        shutil.rmtree(kernel_tmp, ignore_errors=True)


def _run_with_probes(nb, work: Path, tmp_path: Path, kernel_tmp: Path, allow_errors: bool) -> dict:
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE_BEFORE))
    nb.cells.append(nbformat.v4.new_code_cell(PROBE_AFTER))
    env = dict(os.environ, TMPDIR=str(kernel_tmp), IPYTHONDIR=str(tmp_path / "ipython"))
    env.pop("MPLBACKEND", None)
    # A failed speed claim (ClaimFailed) is nbval's business, not this test's: run on, so the last
    # cell still stops what the notebook started, and check for leaks all the same.
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=allow_errors,
                            allow_error_names=["ClaimFailed"],
                            resources={"metadata": {"path": str(work)}})
    client.execute(env=env)  # raises CellExecutionError on an unexpected error; shuts the kernel down
    outputs = nb.cells[-1].get("outputs", [])
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "LEAK-REPORT " in text, f"the leak probe printed nothing: {outputs}"
    return json.loads(text.split("LEAK-REPORT ", 1)[1].splitlines()[0])


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_leaves_nothing_behind(name, tmp_path):
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    before = _listing(work)
    report = run_with_probes(nbformat.read(work / name, as_version=4), work, tmp_path)
    temp_files = report.pop("temp_files")
    problems = {what: items for what, items in report.items() if items}
    assert not problems, (
        f"{name} left these behind after its last cell (waited {GRACE_SECONDS:.0f} s for them to end): "
        f"{json.dumps(problems, indent=1)}\nStop what the notebook starts: pools in `with`, "
        f"LocalAPI.stop() in the last cell, threads joined.")
    new_files = sorted(_listing(work) - before)
    assert not new_files, (f"{name} wrote files into its own folder (write under "
                           f"tempfile.TemporaryDirectory() instead): {new_files}")
    assert not temp_files, (f"{name} left files or folders in the temporary folder after the kernel "
                            f"shut down (remove what the notebook or a library it drives creates "
                            f"there): {temp_files}")


LEAKY = """
import socket, threading, time, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from futureslab.server import LocalAPI
api = LocalAPI().start()                                   # never stopped: a thread and a port
stop = threading.Event()
threading.Thread(target=stop.wait, name="forgotten").start()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
open("results.txt", "w").write("written into the notebook's folder")
import os, tempfile
os.makedirs(os.path.join(tempfile.gettempdir(), "dask-scratch-space"), exist_ok=True)
open(os.path.join(tempfile.gettempdir(), "dask-scratch-space", "global.lock"), "w").close()
tempfile.mkdtemp(prefix="pymp-")                           # an empty folder is a leftover too
"""


def test_the_probe_catches_leaks(tmp_path):
    """The check is not vacuous: a notebook that leaks each kind of thing is caught on each."""
    work = tmp_path / "notebooks"
    work.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(LEAKY))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    report = run_with_probes(nb, work, tmp_path)
    for line in report["processes"]:  # end the leaked child ourselves
        try:
            os.kill(int(line.split()[1].rstrip(":")), 9)
        except (ValueError, OSError):
            pass
    assert any("forgotten" in t for t in report["threads"]), report
    assert any("sleep(30)" in p for p in report["processes"]), report
    assert report["listening"], report
    assert (work / "results.txt").exists()
    assert "dask-scratch-space/global.lock" in report["temp_files"], report["temp_files"]
    assert any(f.startswith("pymp-") for f in report["temp_files"]), report["temp_files"]
