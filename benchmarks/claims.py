"""Every claim, fed the right and the wrong mechanism, on a quiet and on a busy machine.

    .venv/bin/python benchmarks/claims.py            # all claims
    .venv/bin/python benchmarks/claims.py --quick    # fewer rounds

For each claim it prints the outcome (held / unshown / failed) of:
  * the right mechanism on the machine as it is (run it on a quiet machine);
  * each wrong mechanism (threads where processes are claimed, workers pinned to one CPU, no
    parallelism at all, one worker, results in the wrong order, ...): each must be failed or unshown;
  * the right mechanism with two busy loops (other programs) on the two cores: held or unshown,
    never failed.
It exits non-zero if a wrong mechanism ever got a tick, or the right one failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import time

from futureslab.claim_cases import CASES


@contextlib.contextmanager
def busy_loops(n: int, seconds: float = 300):
    """n pure-Python busy loops that are not children of this process (other programs)."""
    procs = [subprocess.Popen(["sh", "-c", f"timeout {seconds} {sys.executable} -c 'while True: pass' "
                                           ">/dev/null 2>&1 & echo $!"], stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    pids = [int(p.communicate()[0].strip()) for p in procs]
    time.sleep(0.5)
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)


def run(case, mechanism) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        outcomes = case.run(mechanism)
    return outcomes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="run only cases whose name contains this")
    ap.add_argument("--no-busy", action="store_true", help="skip the busy-machine runs")
    args = ap.parse_args()
    bad = []
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for case in CASES:
        if args.only and args.only not in case.name:
            continue
        print(f"\n== {case.name}  [{case.notebook}]  bar: {case.bar}")
        t0 = time.perf_counter()
        got = run(case, case.right)
        print(f"  quiet, right mechanism ({case.right}): {got}")
        if "failed" in got.values():
            bad.append((case.name, "right mechanism failed on this machine", got))
        for wrong in case.wrong:
            got = run(case, wrong)
            print(f"  mutation {wrong}: {got}")
            if "held" in got.values():
                bad.append((case.name, f"mutation {wrong} got a tick", got))
        if not args.no_busy and case.needs_cores:
            with busy_loops(2):
                got = run(case, case.right)
            print(f"  two busy loops, right mechanism: {got}")
            if "failed" in got.values():
                bad.append((case.name, "failed on a busy machine (should be unshown)", got))
        print(f"  ({time.perf_counter() - t0:.1f} s)")
    print("\nSUMMARY:", "every wrong mechanism failed or was unshown; the right one never failed"
          if not bad else f"{len(bad)} problems")
    for name, why, got in bad:
        print(f"  - {name}: {why}: {got}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
