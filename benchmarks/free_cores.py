"""What `futureslab.timing.free_cores` reports on a quiet machine and on a busy one, and how the
lessons' CPU speed-up follows it.

    .venv/bin/python benchmarks/free_cores.py [--rounds N] [--hogs H]

For each load (no other program, then H pure-Python busy loops in other processes, H = CPU count by
default), it measures, in rounds, the free cores of a warm process pool with one worker per CPU and
the speed-up of a CPU job (primes in 4 slices of ~0.1 s, notebook 01's kind) on that pool over a
sequential loop, and prints each round and the medians. The busy loops are always stopped, also on
Ctrl-C. A lesson's claim is "at least 60% of min(workers, free cores)"; the last column says whether
that held in each round.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

from futureslab.tasks import count_primes_in, prime_ranges
from futureslab.timing import cpu_count, free_cores, ideal_speedup, measure, warm_up

RANGES = prime_ranges(2_240_000, 4, start=2_000_000)


def rounds_of(pool, workers, rounds):
    rows = []
    for _ in range(rounds):
        seq = measure(lambda: sum(count_primes_in(r) for r in RANGES), repeat=2).best
        par = measure(lambda: sum(pool.map(count_primes_in, RANGES)), repeat=2).best
        free = free_cores(pool, workers)
        speedup = seq / par
        ok = speedup >= 0.6 * ideal_speedup(workers, "cpu", cores=free)
        rows.append((free, speedup, ok))
        print(f"  free cores {free:5.2f}   CPU speed-up {speedup:5.2f}x   claim {'held' if ok else 'FAILED'}",
              flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hogs", type=int, default=cpu_count())
    args = parser.parse_args()
    workers = cpu_count()
    results = {}
    with ProcessPoolExecutor(workers) as pool:
        warm_up(pool, workers)
        print(f"quiet: {workers} workers, no other program started here")
        results["quiet"] = rounds_of(pool, workers, args.rounds)
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
        try:
            print(f"busy: {args.hogs} busy loops in other processes")
            results["busy"] = rounds_of(pool, workers, args.rounds)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    for load, rows in results.items():
        print(f"{load}: median free cores {statistics.median(r[0] for r in rows):.2f}, median speed-up "
              f"{statistics.median(r[1] for r in rows):.2f}x, claim held in {sum(r[2] for r in rows)}/{len(rows)}")
    return 0 if all(r[2] for rows in results.values() for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
