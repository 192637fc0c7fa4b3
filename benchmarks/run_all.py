"""`make benchmark`: every benchmark script, one after another, in fresh interpreters.

Each prints its own figures; run them on an otherwise idle machine for figures worth quoting.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["server_and_tracer.py", "headline_speedups.py", "free_cores.py", "claims.py",
           "one_cpu.py", "minutes.py", ["explorer_hang.py", "--runs", "20", "--busy", "2"],
           ["classroom.py", "--learners", "3", "--rounds", "5"]]

if __name__ == "__main__":
    failed = []
    for script in SCRIPTS:
        name, *args = [script] if isinstance(script, str) else script
        print(f"=== {' '.join([name, *args])} ===", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / name), *args])
        print(f"({name} took {time.perf_counter() - t0:.1f} s, exit code {code})\n", flush=True)
        if code:
            failed.append(name)
    sys.exit(1 if failed else 0)
