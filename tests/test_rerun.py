"""Every cell can be re-run: learners run a cell twice, and run a whole notebook again in one kernel.

For every notebook (a fresh kernel each time, in a temporary copy of notebooks/, the start method in
force), two ways of running it:

* ``cells-twice``: each code cell is run twice in a row (cell 1, cell 1, cell 2, cell 2, ...);
* ``all-twice``: the whole notebook top to bottom, then again in the same kernel.

Every cell must succeed both times, except cells tagged ``raises-exception``, which must raise both
times. At the end, nothing may be left behind: the leak probes of tests/test_no_leaks.py run around
the notebook (threads, child processes, listening sockets, files in the notebook's folder and in the
kernel's temporary folder), so a re-run set-up cell that leaves a second server running is caught.

Failures are collected from the whole run (``allow_errors``), so one report names every cell that
failed, with its position and first line and the error it raised.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from test_no_leaks import GRACE_SECONDS, NOTEBOOKS, _listing, run_with_probes

NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
MODES = ["cells-twice", "all-twice"]

pytestmark = [pytest.mark.slow, pytest.mark.course_again,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the leak probes read /proc")]


def expects_error(cell) -> bool:
    return "raises-exception" in cell.metadata.get("tags", [])


def doubled(nb, mode: str):
    """A copy of ``nb`` whose code cells run twice (``mode``); each cell remembers where it came from."""
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    runs = []
    if mode == "cells-twice":
        for i, cell in code:
            runs += [(i, cell, 1), (i, cell, 2)]
    elif mode == "all-twice":
        runs = [(i, cell, 1) for i, cell in code] + [(i, cell, 2) for i, cell in code]
    else:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    out = copy.deepcopy(nb)
    out.cells = []
    for index, cell, attempt in runs:
        new = nbformat.v4.new_code_cell(cell.source, metadata=copy.deepcopy(cell.metadata))
        new.metadata["futureslab_rerun"] = {"cell": index, "run": attempt}
        out.cells.append(new)
    return out


def describe(cell) -> str:
    where = cell.metadata.get("futureslab_rerun", {})
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"cell {where.get('cell')} (run {where.get('run')}) `{first[:70]}`"


def failures(nb) -> list[str]:
    """Each cell that raised without a raises-exception tag, or has the tag and did not raise."""
    problems = []
    for cell in nb.cells:
        if "futureslab_rerun" not in cell.metadata:
            continue  # a probe cell
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors and not expects_error(cell):
            problems.append(f"{describe(cell)} raised {errors[0]['ename']}: {errors[0]['evalue'][:300]}")
        elif not errors and expects_error(cell):
            problems.append(f"{describe(cell)} is tagged raises-exception but did not raise")
    return problems


def run_doubled(name: str, mode: str, tmp_path: Path):
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    before = _listing(work)
    nb = doubled(nbformat.read(work / name, as_version=4), mode)
    report = run_with_probes(nb, work, tmp_path, allow_errors=True)
    return nb, report, sorted(_listing(work) - before)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_every_cell_can_be_rerun(name, mode, tmp_path):
    nb, report, new_files = run_doubled(name, mode, tmp_path)
    problems = failures(nb)
    assert not problems, f"{name}, {mode}: {len(problems)} cell(s) failed:\n" + "\n".join(problems)
    left = {what: items for what, items in report.items() if items}
    assert not left, (f"{name}, {mode}: left behind after its last cell (waited {GRACE_SECONDS:.0f} s): "
                      f"{json.dumps(left, indent=1)}")
    assert not new_files, f"{name}, {mode}: wrote into its own folder: {new_files}"


def test_doubling_and_failure_detection_are_not_vacuous(tmp_path):
    """A cell that cannot run twice is caught, and so is a raises-exception cell that stops raising."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import os, tempfile\n"
                                          "folder = os.path.join(tempfile.gettempdir(), 'once')\n"
                                          "os.makedirs(folder)  # fails the second time"),
                nbformat.v4.new_code_cell("import shutil\nshutil.rmtree(folder)\n"
                                          "assert not os.path.exists(folder)"),
                nbformat.v4.new_code_cell("first = globals().setdefault('_seen', 0) == 0\n_seen = 1\n"
                                          "if first: raise ValueError('only the first time')",
                                          metadata={"tags": ["raises-exception"]})]
    for mode, expected in [("cells-twice", ["cell 0 (run 2)", "cell 1 (run 2)", "cell 2 (run 2)"]),
                           ("all-twice", ["cell 2 (run 2)"])]:
        doubled_nb = doubled(nb, mode)
        assert [c.metadata["futureslab_rerun"]["cell"] for c in doubled_nb.cells] == (
            [0, 0, 1, 1, 2, 2] if mode == "cells-twice" else [0, 1, 2, 0, 1, 2])
        work = tmp_path / mode
        work.mkdir()
        report = run_with_probes(doubled_nb, work, tmp_path, allow_errors=True)
        found = failures(doubled_nb)
        assert [f.split(" `")[0] for f in found] == expected, found
        assert not any(report.values()), report
