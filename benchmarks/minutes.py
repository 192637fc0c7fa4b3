"""How many minutes a learner spends on each notebook: reading, running and the exercises.

    .venv/bin/python benchmarks/minutes.py [--no-run] [--timeout S] [--prose-wpm W] [--code-lpm L]
                                           [--figure-s F] [--exercise-min E] [NN ...]

For every notebook in ``notebooks/`` (or those whose name contains one of the NN arguments) it counts

* **prose**: the words of the markdown cells, read at ``--prose-wpm`` words a minute;
* **code**: the non-blank lines of the code cells (comments included: they are part of the lesson),
  read at ``--code-lpm`` lines a minute;
* **outputs**: the words a cell prints or displays (for an error, only its last line, which is what a
  learner reads), at the prose rate, plus ``--figure-s`` seconds to look at each figure or widget;
* **running**: how long the cells take to execute, measured by executing a copy of the notebook in a
  fresh kernel with nbclient (in memory: the committed notebook is not touched), one after another;
  ``--no-run`` skips it and counts the outputs stored in the notebook instead;
* **exercises**: the distinct "Exercise NN.N" headings, at ``--exercise-min`` minutes each;

adds them up, and prints a table, the rates it assumed, and the minutes to bill (rounded up to 5)
beside what ``futureslab.course`` bills today. Where the rates come from is printed with them
(``ASSUMPTIONS`` below). Exit code 0, or 1 if a notebook could not be executed.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

PROSE_WPM = 200
CODE_LPM = 10
FIGURE_S = 20
EXERCISE_MIN = 10

ASSUMPTIONS = """\
Rates (change them with the options):
* prose and printed output, {prose_wpm:g} words a minute: R. P. Carver's "learning" reading gear for
  college readers, about 200 wpm (Carver, "Reading rate: theory, research, and practical
  implications", Journal of Reading 36(2), 1992), below the ~240 wpm that M. Brysbaert's meta-analysis
  gives for silent reading of English non-fiction ("How many words do we read per minute?", Journal of
  Memory and Language 109, 2019) because the lessons are technical text read to be learnt.
* code, {code_lpm:g} non-blank lines a minute: an ASSUMPTION. No study gives a rate for
  learners reading tutorial code. It is anchored on code-inspection practice, which advises reviewing
  under 500 lines an hour (~8 a minute; SmartBear's study of Cisco's reviews, J. Cohen, "Best Kept
  Secrets of Peer Code Review", 2006): a learner reads to follow the code rather than to hunt defects,
  but meets the API for the first time: the default, 10 a minute (6 s a line), is a little faster
  than a reviewer.
* figures and widgets, {figure_s:g} s each: an ASSUMPTION (read the caption, find what it points at).
* exercises, {exercise_min:g} min each: an ASSUMPTION. Each asks for one function of 5-15 lines with a
  checker that gives a hint; the default, 10 minutes, is reading the task, writing it, running the checker, and one
  round of hint and fix. In a classroom, expect the slower third of the room to take about twice that.
* running: measured here (sum of the cells' execution times, fresh kernel), so it depends on this
  machine and how busy it is; a Windows or macOS laptop (spawn) is slower to start worker processes.
Not counted: re-running cells while experimenting, the explorer in 00 beyond one look, optional
"try this" suggestions, and questions asked in class.
"""

EXERCISE = re.compile(r"\bExercise (\d\d\.\d+)")
WORD = re.compile(r"[^\W_]", re.UNICODE)


def words(text: str) -> int:
    """Words a reader reads: markdown link targets, HTML comments and tags and table rules left out."""
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"\]\([^)]*\)", "]", text)          # [label](target): read the label only
    text = re.sub(r"<[^>]+>", " ", text)
    return sum(1 for tok in text.split() if WORD.search(tok))


def code_lines(source: str) -> int:
    return sum(1 for line in source.splitlines() if line.strip())


def output_load(cell) -> tuple[int, int]:
    """(words printed or displayed, figures and widgets) of one code cell's outputs."""
    n_words = n_figures = 0
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            n_words += words(out.get("text", ""))
        elif kind == "error":
            n_words += words(f"{out.get('ename', '')}: {out.get('evalue', '')}")
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            if any(k.startswith("image/") for k in data) or "application/vnd.jupyter.widget-view+json" in data:
                n_figures += 1
            elif "text/markdown" in data:
                n_words += words(data["text/markdown"] if isinstance(data["text/markdown"], str)
                                 else "".join(data["text/markdown"]))
            elif "text/plain" in data:
                plain = data["text/plain"]
                n_words += words(plain if isinstance(plain, str) else "".join(plain))
    return n_words, n_figures


def _stamp(value) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def execute(path: Path, timeout: int):
    """Execute a copy of ``path`` in a fresh kernel; return (notebook, cell seconds, problem or None)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    backend = os.environ.pop("MPLBACKEND", None)  # it would reach the kernel and break the plots
    problem = None
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                                allow_errors=True, resources={"metadata": {"path": str(NOTEBOOKS)}})
        client.execute()
    except (CellTimeoutError, DeadKernelError) as e:
        problem = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
    seconds = 0.0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        timing = cell.metadata.get("execution", {})
        start = _stamp(timing.get("iopub.status.busy") or timing.get("iopub.execute_input"))
        end = _stamp(timing.get("iopub.status.idle") or timing.get("shell.execute_reply"))
        if start and end:
            seconds += max(0.0, (end - start).total_seconds())
    untagged = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                and any(o.get("output_type") == "error" for o in c.get("outputs", []))
                and "raises-exception" not in c.metadata.get("tags", [])]
    if untagged and problem is None:
        problem = f"unexpected errors in cells {untagged} (a claim on a busy machine?)"
    return nb, seconds, problem


def measure(path: Path, args) -> dict:
    if args.no_run:
        import nbformat

        nb, run_s, problem = nbformat.read(path, as_version=4), None, None
        cells = nb.cells
    else:
        t0 = time.perf_counter()
        nb, run_s, problem = execute(path, args.timeout)
        cells = nb.cells
        print(f"  executed {path.name}: cells {run_s:.1f} s, with kernel start "
              f"{time.perf_counter() - t0:.1f} s" + (f"; {problem}" if problem else ""),
              file=sys.stderr, flush=True)

    def src(cell):
        s = cell["source"]
        return s if isinstance(s, str) else "".join(s)

    md = [src(c) for c in cells if c["cell_type"] == "markdown"]
    code = [c for c in cells if c["cell_type"] == "code"]
    prose = sum(words(t) for t in md)
    lines = sum(code_lines(src(c)) for c in code)
    out_words = out_figs = 0
    for c in code:
        w, f = output_load(c)
        out_words += w
        out_figs += f
    exercises = sorted({m for t in md for m in EXERCISE.findall(t)})
    row = {"notebook": path.stem, "prose_words": prose, "code_lines": lines, "output_words": out_words,
           "figures": out_figs, "exercises": exercises, "run_s": run_s, "problem": problem}
    row["read_min"] = prose / args.prose_wpm
    row["code_min"] = lines / args.code_lpm
    row["output_min"] = out_words / args.prose_wpm + out_figs * args.figure_s / 60
    row["run_min"] = (run_s or 0.0) / 60
    row["exercise_min"] = len(exercises) * args.exercise_min
    row["total_min"] = sum(row[k] for k in ("read_min", "code_min", "output_min", "run_min", "exercise_min"))
    return row


def billed() -> dict:
    try:
        from futureslab.course import COURSE
    except ImportError:
        return {}
    return {Path(lesson.notebook).stem: lesson.minutes for lesson in COURSE}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="notebook numbers or name parts, e.g. 01 05a")
    parser.add_argument("--no-run", action="store_true", help="do not execute; use the stored outputs")
    parser.add_argument("--timeout", type=int, default=300, help="seconds a cell may take (default 300)")
    parser.add_argument("--prose-wpm", type=float, default=PROSE_WPM)
    parser.add_argument("--code-lpm", type=float, default=CODE_LPM)
    parser.add_argument("--figure-s", type=float, default=FIGURE_S)
    parser.add_argument("--exercise-min", type=float, default=EXERCISE_MIN)
    args = parser.parse_args(argv)
    for name in ("prose_wpm", "code_lpm", "exercise_min", "figure_s", "timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")

    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]*-*.ipynb"))
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(o) or o in p.stem for o in args.only)]
        if not paths:
            parser.error(f"no notebook matches {args.only}")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = [measure(p, args) for p in paths]
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    bills = billed()

    head = (f"{'notebook':<40} {'words':>6} {'code':>5} {'out w':>6} {'figs':>4} {'ex':>3} {'run s':>6} | "
            f"{'read':>5} {'code':>5} {'outp':>5} {'run':>4} {'exer':>5} {'total':>6} {'bill':>5} {'now':>4}")
    print(head)
    print("-" * len(head))
    for r in rows:
        run = "n/a" if r["run_s"] is None else f"{r['run_s']:.0f}"
        bill = 5 * math.ceil(r["total_min"] / 5)
        print(f"{r['notebook']:<40} {r['prose_words']:>6} {r['code_lines']:>5} {r['output_words']:>6} "
              f"{r['figures']:>4} {len(r['exercises']):>3} {run:>6} | {r['read_min']:>5.1f} {r['code_min']:>5.1f} "
              f"{r['output_min']:>5.1f} {r['run_min']:>4.1f} {r['exercise_min']:>5.0f} {r['total_min']:>6.1f} "
              f"{bill:>5} {bills.get(r['notebook'], '?'):>4}")
    total = sum(r["total_min"] for r in rows)
    print("-" * len(head))
    print(f"{'all':<40} {sum(r['prose_words'] for r in rows):>6} {sum(r['code_lines'] for r in rows):>5} "
          f"{sum(r['output_words'] for r in rows):>6} {sum(r['figures'] for r in rows):>4} "
          f"{sum(len(r['exercises']) for r in rows):>3} "
          f"{sum(r['run_s'] or 0 for r in rows):>6.0f} | {'':>5} {'':>5} {'':>5} {'':>4} {'':>5} {total:>6.1f} "
          f"{sum(5 * math.ceil(r['total_min'] / 5) for r in rows):>5} "
          f"{sum(bills.get(r['notebook'], 0) for r in rows):>4}")
    print()
    print("words: markdown words; code: non-blank code lines; out w: words printed or displayed; figs: "
          "figures and widgets;\nex: exercises; run s: cells' execution time (s). Then minutes: read "
          "(prose), code, outp (outputs), run, exer\n(exercises), total; bill: total rounded up to 5 min; "
          "now: what futureslab.course bills today.")
    print()
    print(ASSUMPTIONS.format(prose_wpm=args.prose_wpm, code_lpm=args.code_lpm, figure_s=args.figure_s,
                             exercise_min=args.exercise_min))
    print(f"Measured with Python {sys.version.split()[0]} on {os.cpu_count()} CPUs, "
          f"{'stored outputs (--no-run)' if args.no_run else 'a fresh kernel per notebook'}.")
    if load_before and not args.no_run:
        print(f"Load average (1 min) before and after: {load_before[0]:.1f}, {load_after[0]:.1f} on "
              f"{os.cpu_count()} CPUs: above the CPU count, the run times are inflated by other programs.")
    problems = [(r["notebook"], r["problem"]) for r in rows if r["problem"]]
    for name, problem in problems:
        print(f"! {name}: {problem}")
    return 1 if any("Error" in p for _, p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
