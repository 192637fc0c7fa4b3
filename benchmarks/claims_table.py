"""Write the table of every claim the notebooks judged into docs/claims.md, from a claims log.

    FUTURESLAB_CLAIMS_LOG=/tmp/claims.jsonl .venv/bin/python -m pytest notebooks   # run and log
    .venv/bin/python benchmarks/claims_table.py /tmp/claims.jsonl                  # write the table

Each row: the notebook, the claim, what it needs (cores), its outcome in that run, the figures it was
judged on, and the kind of wrong mechanism that breaks it, with where that is shown.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "claims.md"
MARK = "<!-- CLAIMS TABLE -->"


def notebook_of(text: str, sources: dict) -> str:
    words = re.findall(r"[A-Za-z_]{4,}", text)[:6]
    best, score = "?", 0
    for name, src in sources.items():
        s = sum(w in src for w in words)
        if text[:40] in src:
            s += 10
        if s > score:
            best, score = name, s
    return best


def mutation(e: dict) -> str:
    needs, keys = e["needs"], set(e["measured"])
    if "threads_speedup" in keys:  # 01's GIL claim
        return ("hashing threads (GIL released), processes passed off as threads, no parallelism: "
                "M `threads take turns under the GIL`")
    if "floor" in keys and any(k.startswith("speedup_") for k in keys):  # the process sweep, 01 and 07
        return ("a sequential executor or threads as the pool (one busy core): "
                "T `test_process_sweep_fed_a_sequential_executor_fails`, `test_sweep_needs_cores_busy_and_excuses_only_busy_cores`")
    if "threads" in keys and keys & {"fork", "spawn", "forkserver"}:  # 01 §6, start-up
        return "threads passed off as processes: M `a process pool starts slower than a thread pool`, T"
    if keys == {"fork", "spawn"}:  # 01 §6, spawn against fork
        return "fork passed off as spawn: M `spawn starts slower than fork`"
    if "gain_bar" in keys:
        return "work that waits instead of computing (sleep tasks gain ~2x): M `more processes than cores add nothing`, T"
    if "cores_used" in keys and "speedup" in keys and "vs_control" not in keys:  # 09, threads on CPU work
        return "processes passed off as threads: T `test_threads_on_cpu_claim_fails_when_fed_processes`"
    if needs and needs >= 2 and {"speedup", "vs_control"} <= keys:
        return ("threads (GIL), workers pinned to one CPU, no parallelism, one worker: "
                "M `processes compute pure-Python work in parallel`")
    if needs and needs >= 2 and "stretch" in keys:
        return "threads, one shared core, a sequential executor: M (overlap claim)"
    if needs and needs >= 2:
        return "work that waits instead of computing; a busy machine says 'cannot be shown': M `more processes than cores add nothing`, T"
    if needs == 1:
        return "a sequential executor or one worker: M `threads overlap waiting`, T"
    return "the behaviour it states changes (a different result, order, type or count makes the check false): N/T"


def main(argv) -> int:
    if not argv:
        print(__doc__)
        return 2
    entries = [json.loads(x) for x in Path(argv[0]).read_text().splitlines() if x.strip()]
    sources = {p.stem: p.read_text() for p in sorted((ROOT / "src" / "notebooks").glob("[0-9]*.py"))}
    # claims the tests and the mutation cases judge (a wrong mechanism on purpose), not a notebook's
    tested = "\n".join(p.read_text() for p in [*sorted((ROOT / "tests").glob("*.py")),
                                                  ROOT / "src" / "futureslab" / "claim_cases.py"])
    # the test run's own process judges made-up rooms and wrong mechanisms on purpose, and in a green
    # run only it logs failures: its claims are not a notebook's, even when their text is
    test_pids = {e.get("pid") for e in entries if e["outcome"] == "failed"}
    seen, rows = set(), []
    for e in entries:
        if e["text"] in seen or e.get("pid") in test_pids:
            continue
        seen.add(e["text"])
        quoted = f'"{e["text"]}"'
        if not any(e["text"][:30] in src for src in sources.values()) or (
                quoted in tested and not any(quoted in src for src in sources.values())):
            continue  # a claim made by a unit test, a mutation case or a checker, not a notebook's
        nb = notebook_of(e["text"], sources)
        figs = ", ".join(f"{k}={v}" for k, v in e["measured"].items())
        needs = "—" if e["needs"] is None else f"{e['needs']:g} cores"
        rows.append((nb, e["text"].replace("|", "\\|"), needs, e["outcome"], figs.replace("|", "\\|"),
                     mutation(e)))
    rows.sort(key=lambda r: r[0])
    table = ["| notebook | claim | needs | outcome | judged on | broken by |", "|---|---|---|---|---|---|"]
    table += [f"| {nb[:3].rstrip('-')} | {t} | {n} | {o} | {f} | {m} |" for nb, t, n, o, f, m in rows]
    doc = DOC.read_text()
    head = doc.split(MARK)[0]
    DOC.write_text(head + MARK + "\n\n" + "\n".join(table) + "\n")
    print(f"{len(rows)} claims written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
