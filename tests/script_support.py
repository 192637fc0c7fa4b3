"""For the tests that run a script as its own process: running it, and source pasted into it."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    """A finished script: its pid (its process group's id), exit code (None if it was killed at its
    time limit), output and errors."""

    pid: int
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool


def run_in_own_group(args, *, timeout: float, cwd=None) -> Run:
    """Run ``args`` in a new session, so in a process group of its own (like a Jupyter kernel, which
    an interrupt reaches with its workers). Past ``timeout`` s, or if the test is interrupted, the
    whole group is killed (the script, its workers, their helpers) before returning (``timed_out``)
    or re-raising: nothing of a hung run stays behind. POSIX only."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as exc:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        return Run(proc.pid, None, out, err, timed_out=True)
    return Run(proc.pid, proc.returncode, out, err, timed_out=False)


#: Defines ``stop_first_worker()``: from then on, the first Dask worker process this script starts is
#: stopped (SIGSTOP) as soon as it exists, a worker stuck as it starts. Returns the list its pid goes
#: to. Imports Dask's ``AsyncProcess``: if Dask moved it, the script fails rather than pass blind.
STOP_FIRST_WORKER = '''
def stop_first_worker():
    import functools, os, signal
    from distributed.process import AsyncProcess
    original, stopped = AsyncProcess.start, []
    @functools.wraps(original)
    async def start(self):
        started = await original(self)
        if not stopped:
            stopped.append(self.pid)
            os.kill(self.pid, signal.SIGSTOP)
        return started
    AsyncProcess.start = start
    return stopped
'''
