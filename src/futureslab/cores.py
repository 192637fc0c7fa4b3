"""How many cores this process may use, and how many other programs are using: the yardstick.

A claim such as "two processes computed twice as fast" can only be judged against what the machine
grants *right now*. This module measures that from outside the work being judged:

* :func:`granted_cores` asks the operating system what this process may use: its CPU affinity
  (``taskset``, a container's cpuset) and a CPU quota (a cgroup's ``cpu.max``, as Docker
  ``--cpus`` and most Binder or JupyterHub deployments set it), whichever is smaller.
* :class:`LoadMeter` measures how much CPU *other* programs used while a block of code ran: the
  busy time of the whole machine (including time the hypervisor gave to other virtual machines,
  "steal") minus the CPU time of this process and its child processes. It needs ``psutil``.

Neither looks at how fast the pool under test went, so neither can be fooled by it: a pool whose
workers share one core still leaves two cores granted and none used by others, and its claim fails.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

__all__ = ["Grant", "granted_cores", "LoadMeter", "BusyCores", "pin_to_cpu"]


@dataclass(frozen=True)
class Grant:
    """What the operating system lets this process use."""

    cores: float          #: min(affinity, quota): the CPU time per second this process can get
    affinity: int         #: CPUs this process may run on
    quota: float | None   #: a cgroup CPU quota in cores, or None when there is none
    machine: int          #: CPUs the machine has (``os.cpu_count()``)

    def __str__(self) -> str:
        text = f"this process may use {self.cores:g} of the machine's {self.machine} CPUs"
        why = []
        if self.affinity < self.machine:
            why.append(f"CPU affinity allows {self.affinity}")
        if self.quota is not None and self.quota < self.affinity:
            why.append(f"a CPU quota (cgroup) allows {self.quota:g}")
        return text + (f" ({'; '.join(why)})" if why else "")


def _affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    if hasattr(os, "process_cpu_count"):  # 3.13+, also on Windows
        return os.process_cpu_count() or 1
    try:
        import psutil

        return len(psutil.Process().cpu_affinity() or []) or (os.cpu_count() or 1)
    except Exception:  # macOS has no affinity API: every CPU is allowed
        return os.cpu_count() or 1


def _cgroup_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """The tightest CPU quota (in cores) of this process's cgroup and its parents, or None."""
    quotas = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2: walk up from our group, reading each cpu.max
            path = path.strip("/")
            while True:
                file = os.path.join(root, path, "cpu.max")
                try:
                    with open(file) as f:
                        quota, period = f.read().split()[:2]
                    if quota != "max":
                        quotas.append(int(quota) / int(period))
                except (OSError, ValueError):
                    pass
                if not path:
                    break
                path = os.path.dirname(path)
        elif "cpu" in controllers.split(","):  # cgroup v1
            for base in (os.path.join(root, "cpu,cpuacct"), os.path.join(root, "cpu")):
                try:
                    with open(os.path.join(base, "cpu.cfs_quota_us")) as f:
                        quota = int(f.read())
                    with open(os.path.join(base, "cpu.cfs_period_us")) as f:
                        period = int(f.read())
                except (OSError, ValueError):
                    continue
                if quota > 0 and period > 0:
                    quotas.append(quota / period)
                break
    return min(quotas) if quotas else None


def granted_cores() -> Grant:
    """The cores this process may use: the smaller of its CPU affinity and its cgroup CPU quota.

    >>> g = granted_cores()
    >>> 0 < g.cores <= g.machine
    True
    """
    machine = os.cpu_count() or 1
    affinity = max(1, min(_affinity(), machine))
    quota = _cgroup_quota()
    cores = float(affinity) if quota is None else min(float(affinity), quota)
    return Grant(cores=cores, affinity=affinity, quota=quota, machine=machine)


def _tree_cpu(proc) -> dict:
    """CPU seconds (user + system) of ``proc`` and each of its descendants, by pid."""
    import psutil

    seconds = {}
    try:
        family = [proc] + proc.children(recursive=True)
    except psutil.Error:
        family = [proc]
    for p in family:
        try:
            t = p.cpu_times()
            # a process's reaped children are counted in its children_* fields
            seconds[(p.pid, p.create_time())] = (t.user + t.system + getattr(t, "children_user", 0)
                                                 + getattr(t, "children_system", 0))
        except psutil.Error:
            pass
    return seconds


def _machine_busy() -> float:
    """CPU seconds the whole machine spent not idle, all CPUs together (steal counts as busy)."""
    import psutil

    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = sum(t)
    # on Linux guest time is already inside user time: do not count it twice
    total -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    return total - idle


class BusyCores:
    """How many cores this process and its children kept busy while the ``with`` block ran.

    ``with BusyCores() as busy: ...`` then ``busy.seconds`` (wall time) and ``busy.cores`` (their CPU
    time / wall time). Threads under the GIL, one shared CPU or a plain loop keep about one core
    busy; processes computing on two cores about two. Measure while the pools are alive: a child
    that exits inside the block takes its CPU time with it.
    """

    def __enter__(self) -> "BusyCores":
        import psutil

        self._me = psutil.Process()
        self._cpu0 = sum(_tree_cpu(self._me).values())
        self._t0 = time.perf_counter()
        self.seconds = self.cores = None
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        cpu = sum(_tree_cpu(self._me).values()) - self._cpu0
        self.cores = max(0.0, cpu) / max(self.seconds, 1e-9)


class LoadMeter:
    """Measure the CPU that *other* programs use while the ``with`` block runs, in cores.

    ``with LoadMeter() as load: ...`` then ``load.other`` (average cores used by everything outside
    this process and its children, including a hypervisor's steal) and ``load.seconds`` (wall
    time measured). Enter the same meter again to add more windows: only the time inside the
    blocks counts. Measure while the pools you use are alive: CPU time of a child process that
    exits inside the window is not seen, and would count as other programs' load.
    """

    def __init__(self):
        self.seconds = 0.0
        self.other_cpu = 0.0
        self._start = None

    def __enter__(self) -> "LoadMeter":
        import psutil

        self._me = psutil.Process()
        self._start = (time.perf_counter(), _machine_busy(), _tree_cpu(self._me))
        return self

    def __exit__(self, *exc) -> None:
        t0, busy0, tree0 = self._start
        tree1 = _tree_cpu(self._me)
        busy1, t1 = _machine_busy(), time.perf_counter()
        # ours: what each process of our tree used in the window (a process born in it: all of it)
        ours = sum(cpu - tree0.get(key, 0.0) for key, cpu in tree1.items())
        self.seconds += t1 - t0
        self.other_cpu += max(0.0, (busy1 - busy0) - ours)
        self._start = None

    @property
    def other(self) -> float:
        """Average number of cores other programs kept busy during the measured windows."""
        return self.other_cpu / self.seconds if self.seconds > 0 else 0.0

    def __repr__(self) -> str:
        return f"<LoadMeter other={self.other:.2f} cores over {self.seconds:.3f} s>"


def pin_to_cpu(cpu: int = 0) -> None:
    """Pool initializer that pins the calling worker to one CPU (Linux): used by the tests that
    feed a parallel claim workers sharing a single core. Raises ``OSError`` where unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        raise OSError("this platform cannot pin a process to a CPU (no os.sched_setaffinity)")
    os.sched_setaffinity(0, {int(cpu)})
