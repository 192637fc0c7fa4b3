"""The notebooks as documents: in step with their sources, executed in order, no stray errors or
machine paths, links that resolve, the anatomy of the guide, and a course map that matches."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]*-*.ipynb"))
MACHINE_PATH = re.compile(r"(/(?:work|root|home/[a-z_]+|Users/[A-Za-z_]+|tmp/[A-Za-z0-9_.-]+)/|[A-Z]:\\\\Users\\\\)")

spec = importlib.util.spec_from_file_location("nb_build", ROOT / "src" / "notebooks" / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _ids(paths):
    return [p.stem for p in paths]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_matches_its_source(path):
    source = ROOT / "src" / "notebooks" / (path.stem + ".py")
    assert source.exists(), f"{path.name} has no source {source.relative_to(ROOT)}"
    want = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in build.parse(source.read_text(encoding="utf-8"))]
    nb = _load(path)
    have = [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"],
             c.get("metadata", {}).get("tags", [])) for c in nb["cells"]]
    assert have == want, (f"{path.name} and its source differ: rebuild it with "
                          f"`python src/notebooks/build.py {path.stem.split('-')[0]}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_executed_in_order_without_stray_errors(path):
    nb = _load(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{path.name}: some code cells were never executed"
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: not executed top to bottom in one run"
    for i, c in enumerate(code):
        tags = c.get("metadata", {}).get("tags", [])
        for out in c.get("outputs", []):
            if out["output_type"] == "error":
                assert "raises-exception" in tags, f"{path.name} cell {i}: unexpected {out['ename']}"
            text = json.dumps(out)
            m = MACHINE_PATH.search(text)
            assert not m, f"{path.name} cell {i}: output shows a machine path {m.group(0)!r}"
            if out["output_type"] == "stream":
                assert out["name"] != "stderr" or "nbval-ignore-output" in tags or "raises-exception" in tags, (
                    f"{path.name} cell {i}: stderr output (warnings?) is stored: silence it or explain it")
    assert path.stat().st_size < 1_500_000, f"{path.name} is {path.stat().st_size} bytes: shrink its figures"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_links_resolve(path):
    for cell in _load(path)["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", "".join(cell["source"])):
            if re.match(r"[a-z]+://|#|mailto:", target):
                continue
            assert (path.parent / target.split("#")[0]).exists(), f"{path.name}: broken link {target}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_anatomy(path):
    cells = _load(path)["cells"]
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and first.startswith(f"# {path.stem.split('-')[0]} "), "title first"
    assert "Time:" in first or "**Time" in first, f"{path.name}: say how long it takes"
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert re.search(r"^## Recap", text, flags=re.M), f"{path.name}: needs a Recap section"
    if path.stem.split('-')[0] != "00":
        assert re.search(r"^## Your turn", text, flags=re.M), f"{path.name}: needs exercises"
        assert re.search(r"^\*\*Previous:\*\*|\*\*Previous:\*\*", text), f"{path.name}: link the previous notebook"
    if path != NOTEBOOKS[-1]:
        assert "**Next:**" in text, f"{path.name}: link the next notebook"


def test_course_map_lists_exactly_the_notebooks():
    from futureslab.course import COURSE

    assert [lesson.notebook for lesson in COURSE] == [p.name for p in NOTEBOOKS]
    readme = (ROOT / "README.md").read_text()
    for lesson in COURSE:
        assert f"(notebooks/{lesson.notebook})" in readme, f"README course map lacks {lesson.notebook}"


def test_readme_minutes_match_the_course_map():
    """README's course map and futureslab.course bill the same minutes for every notebook."""
    from futureslab.course import COURSE

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for lesson in COURSE:
        row = next((ln for ln in readme.splitlines() if f"(notebooks/{lesson.notebook})" in ln), None)
        assert row is not None, f"README's course map has no row for {lesson.notebook}"
        assert row.rstrip().endswith(f"| {lesson.minutes} |"), (lesson.notebook, lesson.minutes, row)
        nb = (NB_DIR / lesson.notebook).read_text(encoding="utf-8")
        assert f"**Time:** about {lesson.minutes} minutes" in nb, (
            f"{lesson.notebook} must say '**Time:** about {lesson.minutes} minutes' like the course map")
