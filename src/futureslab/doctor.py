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


# Which Pythons the course supports (README "Two commands"; `make test-pythons` tests each of them).
OLDEST = (3, 10)          # the oldest Python the course runs on; tested, but past its end of life
SUPPORTED = (3, 11)       # the oldest supported one
NEWEST_TESTED = (3, 15)   # the newest one the test matrix covers
END_OF_LIFE = {(3, 10): "October 2026"}  # https://devguide.python.org/versions/
FIX_PYTHON = ("install Python 3.14 (python.org, your package manager, or conda), then set the course up "
              "again with it: `rm -rf .venv && make lab PYTHON=python3.14`")


def check_python(version_info=None) -> Check:
    """The running Python against what the course supports: supported, works but end of life (a
    warning), newer than tested (a warning), or too old (a failure). ``version_info`` defaults to this
    interpreter's ``sys.version_info``."""
    v = tuple((version_info or sys.version_info)[:3])
    where = (f"{platform.python_implementation()} {'.'.join(map(str, v))}"
             + (" (free-threaded)" if not getattr(sys, "_is_gil_enabled", lambda: True)() else ""))
    span = f"{SUPPORTED[0]}.{SUPPORTED[1]}-{NEWEST_TESTED[0]}.{NEWEST_TESTED[1]}"
    if v[:2] < OLDEST:
        return Check("python", False, f"{where}: too old, the course needs Python "
                     f"{OLDEST[0]}.{OLDEST[1]} or newer ({span} supported)", FIX_PYTHON)
    if v[:2] in END_OF_LIFE:
        return Check("python", False, f"{where}: works (the course is tested on it), but Python "
                     f"{v[0]}.{v[1]} reached its end of life in {END_OF_LIFE[v[:2]]} (no more security "
                     f"fixes); supported: {span}", FIX_PYTHON, required=False)
    if v[:2] < SUPPORTED:
        return Check("python", False, f"{where}: not supported ({span} supported)", FIX_PYTHON)
    if v[:2] > NEWEST_TESTED:
        return Check("python", False, f"{where}: newer than the course is tested on ({span}); it should "
                     "work, and if a notebook fails, tell your instructor", FIX_PYTHON.replace(
                         "install Python 3.14", "for a tested set-up, install Python 3.14"), required=False)
    return Check("python", True, f"{where}: supported ({span})")


def check_python_bugs() -> Check:
    """Known bugs of this Python's standard library that the course meets, read from its code (a
    warning: the course fixes them in its own processes, a learner's own programs keep them)."""
    from .stdlib_fixes import GH125451_URL, gh125451_summary, stdlib_has_gh125451

    if not stdlib_has_gh125451():
        return Check("python bugs", True, "none known that the course meets (gh-125451: not in this "
                     "Python's ProcessPoolExecutor)")
    v = sys.version_info
    return Check("python bugs", False, gh125451_summary(),
                 f"nothing to do for the course; for your own programs install the latest "
                 f"{v[0]}.{v[1]} release, or 3.14 ({GH125451_URL})", required=False)


def check_settings(probe: bool = True) -> list[Check]:
    """One check per ``FUTURESLAB_*`` setting that is set (every one the course reads: see
    :data:`futureslab._config.SETTINGS`), naming a bad value and the fix; a warning for an unknown
    ``FUTURESLAB_*`` variable (a typo?). One ok line when none is set."""
    import difflib

    from ._config import SETTINGS, setting_problems

    out = []
    problems = {name: (problem, fix) for name, _, problem, fix in setting_problems(probe=probe)}
    for name in SETTINGS:
        value = os.environ.get(name)
        if not value:
            continue
        if name in problems:
            problem, fix = problems[name]
            out.append(Check(name, False, f"{value!r} {problem}", fix))
        else:
            out.append(Check(name, True, f"{value!r} ({SETTINGS[name][1]})"))
    for name in sorted(os.environ):
        if name.startswith("FUTURESLAB_") and name not in SETTINGS:
            near = difflib.get_close_matches(name, list(SETTINGS), n=1)
            out.append(Check(name, False, f"{os.environ[name]!r}: the course reads no such setting",
                             (f"did you mean {near[0]}? " if near else "")
                             + f"the settings are: {', '.join(SETTINGS)}", required=False))
    return out or [Check("settings", True, "no FUTURESLAB_* variable set: the course's defaults")]


def _lesson_start_method() -> str | None:
    """The start method the notebooks will use when FUTURESLAB_START_METHOD sets a valid one."""
    from ._config import ENV_START_METHOD
    method = os.environ.get(ENV_START_METHOD) or None
    return method if method in multiprocessing.get_all_start_methods() else None


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
    methods = multiprocessing.get_all_start_methods()  # this platform's default first
    chosen = _lesson_start_method()
    how = (f"set by FUTURESLAB_START_METHOD; this platform's default is {methods[0]}" if chosen
           else "this platform's default")
    return Check("start method", True, f"{chosen or methods[0]} ({how}; available: {', '.join(methods)})")


def check_processes(timeout: float = 60.0) -> Check:
    from . import tasks
    t0 = time.perf_counter()
    try:
        method = _lesson_start_method()  # the start method the notebooks will use
        context = multiprocessing.get_context(method) if method else None
        with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
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
    """The course's built-in local API (what the lessons use unless FUTURESLAB_REMOTE_API is set:
    a remote one is checked by :func:`check_settings`)."""
    from ._config import ENV_REMOTE
    from .server import LocalAPI
    from .tasks import fetch_post
    remote = os.environ.pop(ENV_REMOTE, None)  # LocalAPI reads it when created: check the local one
    try:
        api = LocalAPI(latency=0)
    finally:
        if remote is not None:
            os.environ[ENV_REMOTE] = remote
    try:
        with api:
            post = fetch_post(1, base_url=api.url, timeout=10)
            served = api.stats()["requests"]
            where = api.url
    except Exception as exc:
        return Check("local API", False, f"{type(exc).__name__}: {exc}",
                     "allow Python to listen on 127.0.0.1 (firewall), and if you set HTTP_PROXY, "
                     "this check already bypasses it for 127.0.0.1: report the error to your instructor")
    if post.get("id") != 1 or served < 1:
        return Check("local API", False, f"unexpected answer {post!r}", "reinstall: pip install -e .")
    note = " (FUTURESLAB_REMOTE_API is set: the lessons use that remote API instead)" if remote else ""
    return Check("local API", True, f"served /posts/1 on {where.split(':')[1][2:]}{note}")


def run(stream=None) -> int:
    """Run every check, print the report, return the exit code (0 all good, 1 something broken)."""
    stream = stream or sys.stdout
    # in a notebook the doctor may run before futureslab.setup(): pressing stop during its process-pool
    # check then shows one line too, not a traceback of concurrent.futures (a no-op outside a kernel)
    from . import interrupts

    interrupts.install()
    checks = [check_python(), check_python_bugs(), *check_packages(), *check_settings(), check_cpus(), check_start_method()]
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
