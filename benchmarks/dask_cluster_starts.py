"""How often does notebook 09's TLS LocalCluster lose a worker as it starts, and does start_cluster cope?

    .venv/bin/python benchmarks/dask_cluster_starts.py [STARTS]                      # this Python
    .ci/debian-python.sh 3.15 python benchmarks/dask_cluster_starts.py 20           # Python 3.15

Starts ``futureslab.lesson09.start_cluster`` STARTS times (default 20). For each start it prints how
many clusters that took (``attempts``: a cluster whose worker dropped out is closed and started
again), the workers registered at once and one second later, and the time. Then it prints a summary.
Measured here (2026-11-30, distributed 2026.8.0): on 3.15, 4 of 20 starts needed a second cluster,
and all 20 ended with 2 workers. Exit status 1 if any start ended short of its workers.
"""

from __future__ import annotations

import sys
import time


def main(argv) -> int:
    from distributed import Security

    from futureslab import lesson09

    starts = int(argv[0]) if argv else 20
    attempts, short = [], 0
    for i in range(starts):
        t0 = time.monotonic()
        lab = lesson09.start_cluster(Security.temporary(), n_workers=2)
        try:
            now = len(lab.client.scheduler_info()["workers"])
            time.sleep(1)
            later = len(lab.client.scheduler_info()["workers"])
        finally:
            left = lab.close()
        attempts.append(lab.attempts)
        short += min(now, later) < 2
        print(f"start {i + 1:>2}: {lab.attempts} cluster(s), workers {now} then {later}, "
              f"{time.monotonic() - t0:.1f} s, left behind: {left or 'nothing'}", flush=True)
    print(f"Python {sys.version.split()[0]}: {sum(a > 1 for a in attempts)} of {starts} starts needed "
          f"more than one cluster (most: {max(attempts)}); {short} ended short of 2 workers")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
