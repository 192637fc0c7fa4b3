"""Run notebooks with this process and everything it starts pinned to ONE CPU, and list every claim.

    .venv/bin/python benchmarks/one_cpu.py                 # the notebooks with CPU claims
    .venv/bin/python benchmarks/one_cpu.py 01 07           # some of them

Linux only (taskset / os.sched_setaffinity). On one CPU no parallel CPU speed-up can happen, so a
notebook must print no ✓ for one: each such claim must say "cannot be shown right now" (too few cores
granted), and no cell may fail with a raw traceback. Prints each notebook's ✓ and ⚠ lines and the
claims log, and exits non-zero if a claim that needs 2 or more cores got a tick, or a cell failed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["01", "05a", "05b", "06", "07"]


def main(argv: list[str]) -> int:
    if not hasattr(os, "sched_setaffinity"):
        print("needs Linux (os.sched_setaffinity)")
        return 2
    os.sched_setaffinity(0, {0})  # inherited by the kernel and every worker it starts
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    wanted = argv or DEFAULT
    paths = [p for w in wanted for p in sorted((ROOT / "notebooks").glob(f"{w}-*.ipynb"))]
    bad = 0
    with tempfile.TemporaryDirectory(prefix="futureslab-one-cpu-") as tmp:
        log = os.path.join(tmp, "claims.jsonl")
        os.environ["FUTURESLAB_CLAIMS_LOG"] = log
        os.environ["TMPDIR"] = tmp
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            start = len(open(log).read().splitlines()) if os.path.exists(log) else 0
            t0 = time.perf_counter()
            client = NotebookClient(nb, timeout=300, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            error = None
            try:
                client.execute()
            except CellExecutionError as e:
                error = str(e).splitlines()[-1] if str(e) else repr(e)
            lines = []
            for cell in nb.cells:
                for out in cell.get("outputs", []):
                    text = out.get("text", "")
                    lines += [ln for ln in text.splitlines() if ln.startswith(("\u2713", "\u26a0"))]
            entries = []
            if os.path.exists(log):
                entries = [json.loads(x) for x in open(log).read().splitlines()[start:]]
            ticked = [e for e in entries if e["outcome"] == "held" and (e["needs"] or 0) >= 2]
            print(f"\n== {path.name} ({time.perf_counter() - t0:.0f} s) "
                  f"{'FAILED: ' + error if error else 'ran to the end'}")
            for ln in lines:
                print("  " + (ln if len(ln) < 160 else ln[:157] + "..."))
            if ticked or error:
                bad += 1
                for e in ticked:
                    print(f"  !! a claim that needs {e['needs']} cores got a tick: {e['text']}")
    print("\nSUMMARY:", "no tick for a parallel claim on one CPU, no failed cell" if not bad
          else f"{bad} notebooks with a problem")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
