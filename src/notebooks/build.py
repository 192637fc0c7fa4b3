"""Build the course notebooks from their sources: ``python src/notebooks/build.py [NAME ...]``.

Each notebook is written here as a plain-text "percent" script (``NN-topic.py``), easy to review and
diff. This script turns one into ``notebooks/NN-topic.ipynb`` and executes it top to bottom in a fresh
kernel (cells tagged ``raises-exception`` may fail; any other error stops the build), so the notebooks
are always committed executed, in order, with their outputs.

Source format::

    # %% [markdown]
    # # Title
    # Text, each line starting with "# ".

    # %% tags=["nbval-ignore-output"]
    print("a code cell, with tags")

Anything before the first ``# %%`` is ignored (a header for the author).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NOTEBOOKS = ROOT / "notebooks"
MARKER = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def parse(text: str) -> list:
    """Turn percent-format source text into a list of nbformat cells."""
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(re.sub(r"^# ?", "", ln) for ln in body.splitlines())
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        m = MARKER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:03d}"
    return cells


def _scrub_paths(nb) -> None:
    """Tracebacks and stderr text show this machine's paths: shorten them."""
    prefixes = sorted({str(ROOT), sys.prefix, sys.base_prefix, tempfile.gettempdir(),
                       os.path.expanduser("~")}, key=len, reverse=True)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tb = []
                for line in out["traceback"]:
                    for p in prefixes:
                        line = line.replace(p + os.sep, "…" + os.sep).replace(p, "…")
                    tb.append(line)
                out["traceback"] = tb
            elif out.get("output_type") == "stream":  # e.g. a dying worker's stderr, shown on purpose
                text = out["text"]
                for p in prefixes:
                    text = text.replace(p + os.sep, "…" + os.sep).replace(p, "…")
                out["text"] = text


def build(source: Path, execute: bool = True, timeout: int = 120) -> Path:
    cells = parse(source.read_text(encoding="utf-8"))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    target = NOTEBOOKS / (source.stem + ".ipynb")
    if execute:
        env_backend = os.environ.pop("MPLBACKEND", None)
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                           resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        finally:
            if env_backend is not None:
                os.environ["MPLBACKEND"] = env_backend
        _scrub_paths(nb)
        nb.metadata.pop("widgets", None) if not any(
            "application/vnd.jupyter.widget-view+json" in o.get("data", {})
            for c in nb.cells for o in c.get("outputs", [])) else None
    nbformat.validate(nb)
    target.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return target


def sources() -> list[Path]:
    return sorted(HERE.glob("[0-9][0-9]*-*.py"))


def main(argv: list[str]) -> int:
    chosen = sources()
    if argv:
        chosen = [s for s in chosen if any(a in s.name for a in argv)]
        if not chosen:
            print(f"no notebook source matches {argv}", file=sys.stderr)
            return 2
    for src in chosen:
        import time
        t0 = time.perf_counter()
        out = build(src)
        print(f"built {out.relative_to(ROOT)} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
