"""Other programs' load for the tests: busy loops that are not children of the test process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def busy_outside(seconds: float, nice: int = 0) -> int:
    """Start a pure-Python busy loop that ends by itself after ``seconds`` and is NOT a child of this
    process (the shell that starts it exits), so a LoadMeter counts it as another program's load.
    ``nice=19``: a loop that takes only the CPU nobody else wants (our runs keep almost all of it,
    yet the meter sees it busy whenever a core is left idle). Returns its pid, for :func:`stop`.
    Linux and macOS (uses ``sh``)."""
    loop = f"import time\nt = time.time()\nwhile time.time() - t < {seconds}: pass"
    prefix = f"nice -n {int(nice)} " if nice else ""
    out = subprocess.run(["sh", "-c", f"{prefix}{sys.executable} -c '{loop}' >/dev/null 2>&1 & echo $!"],
                         check=True, capture_output=True, text=True)
    return int(out.stdout)


def stop(pid: int) -> None:
    """Kill a busy loop started by :func:`busy_outside` (it may have ended already)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
