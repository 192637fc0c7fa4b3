"""A classroom on one server: N learners run the whole course at the same time.

    .venv/bin/python benchmarks/classroom.py --learners 3 --rounds 5

Each round starts ``--learners`` learners at once. A learner is a separate process with its own copy
of notebooks/ in a temporary folder and its own private ``TMPDIR``; it runs every notebook top to
bottom in order, each in a fresh kernel (nbclient, as JupyterLab's "Restart Kernel and Run All" does),
with every cell run even if an earlier one failed. Per learner and per round it reports:

* failed cells: a cell that raised without the ``raises-exception`` tag, or has the tag and did not
  raise (each listed with notebook, cell, first line and error);
* hangs: a cell that did not finish within ``--cell-timeout`` seconds (the rest of that notebook is
  then not run);
* the claim lines the learner saw: how many ``✓`` and how many "cannot be shown" (the honest third
  outcome on a machine with too few free cores);
* wall time per learner and per round.

Exit status 1 if any cell failed or hung. The start method in force (``FUTURESLAB_START_METHOD``)
passes through to every kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CANNOT = "cannot be shown"


def _first_line(source: str) -> str:
    return next((line for line in source.splitlines() if line.strip()), "")[:70]


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
        else:
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def run_learner(folder: Path, names: list[str], cell_timeout: int) -> dict:
    """Run ``names`` (in ``folder``) one after another, each in a fresh kernel; return the tallies."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    result = {"notebooks": {}, "failed": [], "hangs": [], "ticks": 0, "cannot": 0}
    kernel_tmp = Path(tempfile.mkdtemp(prefix="learner"))
    env = dict(os.environ, TMPDIR=str(kernel_tmp))
    env.pop("MPLBACKEND", None)
    t_all = time.perf_counter()
    try:
        for name in names:
            nb = nbformat.read(folder / name, as_version=4)
            client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                                    resources={"metadata": {"path": str(folder)}})
            t0 = time.perf_counter()
            try:
                client.execute(env=env)
            except CellTimeoutError as exc:
                result["hangs"].append(f"{name}: {str(exc).splitlines()[0]}")
            except Exception as exc:  # a dead kernel and the like: report, go on with the course
                result["failed"].append(f"{name}: the run stopped: {type(exc).__name__}: {exc}"[:400])
            result["notebooks"][name] = round(time.perf_counter() - t0, 1)
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                text = _text(cell)
                result["ticks"] += text.count("✓")
                result["cannot"] += text.count(CANNOT)
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                tagged = "raises-exception" in cell.metadata.get("tags", [])
                if errors and not tagged:
                    result["failed"].append(f"{name} cell {index} `{_first_line(cell.source)}`: "
                                            f"{errors[0]['ename']}: {errors[0]['evalue'][:200]}")
                elif tagged and not errors and cell.get("execution_count") is not None:
                    result["failed"].append(f"{name} cell {index} `{_first_line(cell.source)}`: tagged "
                                            f"raises-exception but did not raise")
    finally:
        result["seconds"] = round(time.perf_counter() - t_all, 1)
        left = sorted(str(p.relative_to(kernel_tmp)) for p in kernel_tmp.rglob("*"))
        result["temp_left"] = left
        shutil.rmtree(kernel_tmp, ignore_errors=True)
    return result


def one_round(learners: int, names: list[str], cell_timeout: int) -> tuple[float, list[dict]]:
    folders, procs = [], []
    t0 = time.perf_counter()
    try:
        for i in range(learners):
            folder = Path(tempfile.mkdtemp(prefix=f"classroom-{i + 1}-"))
            work = folder / "notebooks"
            shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            folders.append(folder)
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--one-learner", str(work), "--cell-timeout", str(cell_timeout),
                 "--names", *names],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        results = []
        for proc in procs:
            out, _ = proc.communicate()
            line = next((x for x in out.splitlines() if x.startswith("LEARNER ")), None)
            results.append(json.loads(line[len("LEARNER "):]) if line else
                           {"failed": [f"the learner process died (exit {proc.returncode})"], "hangs": [],
                            "ticks": 0, "cannot": 0, "seconds": 0.0, "notebooks": {}, "temp_left": []})
        return time.perf_counter() - t0, results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cell-timeout", type=int, default=300)
    parser.add_argument("--notebooks", default="*.ipynb", help="glob in notebooks/ (default: all)")
    parser.add_argument("--one-learner", help=argparse.SUPPRESS)
    parser.add_argument("--names", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_learner:
        print("LEARNER " + json.dumps(run_learner(Path(args.one_learner), args.names, args.cell_timeout)))
        return 0
    if args.learners < 1 or args.rounds < 1:
        parser.error(f"--learners and --rounds must be >= 1, got {args.learners} and {args.rounds}")
    names = sorted(p.name for p in NOTEBOOKS.glob(args.notebooks))
    if not names:
        parser.error(f"no notebook matches {args.notebooks!r} in {NOTEBOOKS}")
    print(f"{args.learners} learners x {args.rounds} rounds, {len(names)} notebooks each, "
          f"{os.cpu_count()} CPUs, start method {os.environ.get('FUTURESLAB_START_METHOD') or 'default'}",
          flush=True)
    totals = {"failed": 0, "hangs": 0, "ticks": 0, "cannot": 0, "temp_left": 0}
    walls = []
    for r in range(1, args.rounds + 1):
        wall, results = one_round(args.learners, names, args.cell_timeout)
        walls.append(wall)
        print(f"round {r}: {wall:.0f} s wall", flush=True)
        for i, res in enumerate(results, 1):
            print(f"  learner {i}: {res['seconds']:.0f} s, {len(res['failed'])} failed cells, "
                  f"{len(res['hangs'])} hangs, {res['ticks']} ✓, {res['cannot']} '{CANNOT}'"
                  + (f", left in TMPDIR: {res['temp_left']}" if res["temp_left"] else ""), flush=True)
            for line in res["failed"] + res["hangs"]:
                print(f"      {line}", flush=True)
            totals["failed"] += len(res["failed"])
            totals["hangs"] += len(res["hangs"])
            totals["ticks"] += res["ticks"]
            totals["cannot"] += res["cannot"]
            totals["temp_left"] += bool(res["temp_left"])
    print(f"total: {args.rounds} rounds, {totals['failed']} failed cells, {totals['hangs']} hangs, "
          f"{totals['ticks']} ✓ lines, {totals['cannot']} '{CANNOT}' lines, "
          f"{totals['temp_left']} learner runs left files in TMPDIR; round wall time "
          f"min {min(walls):.0f} s, max {max(walls):.0f} s", flush=True)
    return 1 if totals["failed"] or totals["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
