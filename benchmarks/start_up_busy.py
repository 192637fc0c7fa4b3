"""Notebook 01 §6's start-up claim with two busy loops of other programs on the cores, five times:
each must say "cannot be shown" (the claim needs a quiet machine), never fail.

    .venv/bin/python benchmarks/start_up_busy.py
"""
import subprocess, sys
from futureslab.claims import Room, claim, ClaimFailed
from futureslab.lesson01 import start_ups_measured
if __name__ == "__main__":
    hogs=[int(subprocess.run(f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!", shell=True, capture_output=True, text=True).stdout) for _ in range(2)]  # not our children: other programs
    out=[]
    try:
        for _ in range(5):
            starts, room, tries = start_ups_measured()  # as notebook 01 §6 measures them
            try:
                r=claim(all(starts[m] > 3*starts["threads"] for m in starts if m!="threads"), "start-up ratio", needs_cores=room.granted, room=room, **starts)
                out.append(f"{r} after {tries} tries")
            except ClaimFailed as e:
                out.append("FAILED")
    finally:
        import os, signal
        for h in hogs: os.kill(h, signal.SIGKILL)
    print("with 2 busy loops:", out)
    