"""``python -m futureslab.doctor``: is this machine ready for the course?

Prints one line per check and exits 0 when all pass, 1 when any fails, each failure with its fix.
Optional checks (extra packages, free cores) only warn.
Instructors: ask every student to run it before the workshop (it needs no internet).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

REQUIRED = ["jupyterlab", "matplotlib", "requests", "nbval", "pytest", "ipykernel", "ipywidgets",
            "tqdm"]
OPTIONAL = {"dask": "notebook 09 (clusters)", "distributed": "notebook 09 (clusters)",
            "aiohttp": "notebook 08 (asyncio)"}
FIX_INSTALL = "run `make lab` (or `pip install -e .` in the course folder, or `conda env create -f environment.yml`)"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _version(mod) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(mod)
    except PackageNotFoundError:
        return "?"


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, f"{platform.python_implementation()} {platform.python_version()}"
                 + (" (free-threaded)" if not getattr(sys, "_is_gil_enabled", lambda: True)() else ""),
                 "install Python 3.10 or newer")


def check_packages() -> list[Check]:
    out = []
    for name in REQUIRED:
        try:
            importlib.import_module(name)
            out.append(Check(name, True, _version(name)))
        except Exception as exc:
            out.append(Check(name, False, f"cannot import: {type(exc).__name__}: {exc}", FIX_INSTALL))
    for name, why in OPTIONAL.items():
        try:
            importlib.import_module(name)
            out.append(Check(name, True, _version(name), required=False))
        except Exception as exc:
            out.append(Check(name, False, f"missing ({why}): {type(exc).__name__}", FIX_INSTALL,
                             required=False))
    return out


def check_cpus() -> Check:
    from .timing import cpu_count
    n = cpu_count()
    return Check("cpus", True, f"{n} usable (os.cpu_count() = {os.cpu_count()})"
                 + ("; with 1 CPU, process pools cannot run faster than sequential" if n == 1 else ""))


def check_start_method() -> Check:
    method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_context().get_start_method()
    return Check("start method", True, f"{method} (available: {', '.join(multiprocessing.get_all_start_methods())})")


def check_processes(timeout: float = 60.0) -> Check:
    from . import tasks
    t0 = time.perf_counter()
    try:
        with ProcessPoolExecutor(max_workers=2) as pool:
            got = pool.submit(tasks.count_primes, 0, 1000).result(timeout=timeout)
            pids = {pid for pid, _ in pool.map(tasks.whoami, range(4), timeout=timeout)}
    except Exception as exc:
        return Check("process pool", False, f"{type(exc).__name__}: {exc}",
                     "run from a folder you can write to, check antivirus/sandbox settings, "
                     "and on Windows and macOS run notebooks from JupyterLab (not a frozen app)")
    if got != 168:
        return Check("process pool", False, f"count_primes(0, 1000) gave {got}, expected 168",
                     "reinstall the course package: pip install -e .")
    return Check("process pool", True, f"ran a futureslab task in {len(pids)} worker process(es) "
                 f"in {time.perf_counter() - t0:.2f} s")


def check_free_cores(enough: float = 0.75) -> Check:
    """Warn (never fail) when other programs keep the cores busy: the CPU demos then show less.

    Measures :func:`~futureslab.timing.free_cores` on a pool of one worker per CPU (at most 4) and
    warns when fewer than ``enough`` times that many cores are free.
    """
    from ._validate import check_number
    from .timing import cpu_count, fmt_cores, free_cores

    enough = check_number("enough", enough, low=0)
    workers = min(cpu_count(), 4)
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            free = free_cores(pool, workers)
    except Exception as exc:
        return Check("free cores", False, f"could not measure: {type(exc).__name__}: {exc}",
                     "see the process pool check", required=False)
    return Check("free cores", free >= enough * workers, f"{fmt_cores(free)} of {workers} right now",
                 "other programs are keeping the cores busy: close heavy ones (video calls, builds, "
                 "many browser tabs) before the course; until then the CPU speed-ups are smaller, "
                 "and the notebooks say so", required=False)


def check_local_api() -> Check:
    from .server import LocalAPI
    from .tasks import fetch_post
    try:
        with LocalAPI(latency=0) as api:
            post = fetch_post(1, timeout=10)
            served = api.stats()["requests"]
            where = api.url
    except Exception as exc:
        return Check("local API", False, f"{type(exc).__name__}: {exc}",
                     "allow Python to listen on 127.0.0.1 (firewall), and if you set HTTP_PROXY, "
                     "this check already bypasses it for 127.0.0.1: report the error to your instructor")
    if post.get("id") != 1 or served < 1:
        return Check("local API", False, f"unexpected answer {post!r}", "reinstall: pip install -e .")
    remote = " (FUTURESLAB_REMOTE_API is set: lessons use that remote API)" if os.environ.get("FUTURESLAB_REMOTE_API") else ""
    return Check("local API", True, f"served /posts/1 on {where.split(':')[1][2:]}{remote}")


def run(stream=None) -> int:
    """Run every check, print the report, return the exit code (0 all good, 1 something broken)."""
    stream = stream or sys.stdout
    checks = [check_python(), *check_packages(), check_cpus(), check_start_method()]
    checks += [check_processes(), check_free_cores(), check_local_api()]
    print(f"Futures Lab environment check ({platform.system()} {platform.machine()})", file=stream)
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        print(f"  [{mark}] {c.name:<14} {c.detail}", file=stream)
    broken = [c for c in checks if c.required and not c.ok]
    warned = [c for c in checks if not c.required and not c.ok]
    for c in broken + warned:
        print(f"  -> {c.name}: {c.fix}", file=stream)
    print("All good: you are ready for the course." if not broken else
          f"{len(broken)} problem(s) found: fix them before the course (see -> lines above).", file=stream)
    return 1 if broken else 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
