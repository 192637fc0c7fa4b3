"""Every notebook, run in a real JupyterLab in a real (headless) Chromium, as a learner would.

One JupyterLab (127.0.0.1, random token, a temporary copy of notebooks/) and one browser serve every
notebook. For each: open it, Edit > Clear All Outputs, Run > Run All Cells, wait until the kernel is
idle and every cell is numbered, then check that

* no cell shows a traceback, except cells tagged ``raises-exception``;
* every code cell whose committed output has a plot shows that plot as a loaded <img>;
* every explorer widget (futureslab.explorer) re-runs its job and redraws when Run is clicked;

and save a screenshot to artifacts/screenshots/NN-name.png (git-ignored).

Needs Chromium (Debian's ``chromium``; .ci/install-browser.sh installs it) and Playwright (pinned in
pyproject's ``test`` extra; it drives that Chromium: never run ``playwright install``). Without
Chromium the test is skipped with instructions, except in CI (``CI`` set), where that is a failure.
Run it alone: ``pytest -m browser``; leave it out: ``pytest -m "not browser"``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from browser_support import (CHROMIUM_ARGS, HOW_TO_ENABLE, NOTEBOOKS, SCREENSHOTS, LabServer,
                             click_explorer_runs, committed_expectations, find_chromium,
                             http_status, run_notebook_in_browser, screenshot)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
PER_NOTEBOOK_TIMEOUT = float(os.environ.get("FUTURESLAB_BROWSER_TIMEOUT", "120"))


def _require(what: str, reason: str):
    """Missing prerequisite: a failure in CI, a skip with instructions on a laptop."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_path():
    path = find_chromium()
    if path is None:
        _require("Chromium", HOW_TO_ENABLE)
    return path


@pytest.fixture(scope="module")
def playwright_api():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("Playwright", "Playwright is not installed: `pip install -e .[test]` installs the pinned "
                 "version (then the test drives your Chromium; never run `playwright install`).")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def lab():
    server = LabServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(chromium_path, playwright_api, lab):
    browser = playwright_api.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS,
                                             headless=True)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
    finally:
        browser.close()


def test_server_requires_the_token(lab):
    """The lab answers only with its token: without it the API refuses and the page asks to log in."""
    assert http_status(f"{lab.url}/api/contents") == 403
    assert http_status(f"{lab.url}/api/contents?token=wrong{lab.token}") == 403
    assert http_status(f"{lab.url}/lab") == 302  # to /login
    assert http_status(f"{lab.url}/api/contents", token=lab.token) == 200
    assert http_status(f"{lab.url}/api/contents?token={lab.token}") == 200


def test_there_are_notebooks():
    assert NOTEBOOK_NAMES, f"no notebooks found in {NOTEBOOKS}"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_in_jupyterlab(name, lab, page):
    expected = committed_expectations(NOTEBOOKS / name)
    shot = SCREENSHOTS / (Path(name).stem + ".png")
    explorers = sum(1 for cell in expected if cell["widget"] and "explore(" in cell["source"])
    try:
        state = run_notebook_in_browser(page, lab, name, timeout=PER_NOTEBOOK_TIMEOUT)
        # the interactive explorer (futureslab.explorer): a click on Run re-runs the job and redraws
        clicked = click_explorer_runs(page) if explorers else 0
    except Exception as exc:
        screenshot(page, shot)
        pytest.fail(f"{name} did not finish in JupyterLab within {PER_NOTEBOOK_TIMEOUT:.0f} s "
                    f"({type(exc).__name__}: {str(exc).splitlines()[0]}); screenshot: {shot}\n"
                    f"server log tail:\n{lab.log()[-1500:]}", pytrace=False)
    finally:
        lab.shutdown_kernels()  # one kernel at a time; the next notebook starts its own
    screenshot(page, shot)

    cells = state["cells"]
    assert len(cells) == len(expected), (
        f"{name}: the browser shows {len(cells)} code cells, the notebook has {len(expected)} "
        f"(is windowingMode 'none' in effect?)")
    problems = []
    for i, (seen, want) in enumerate(zip(cells, expected), start=1):
        where = f"code cell {i} ({want['source'].splitlines()[0] if want['source'] else ''!r})"
        if not seen["prompt"] or not any(ch.isdigit() for ch in seen["prompt"]):
            problems.append(f"{where} did not run (prompt {seen['prompt']!r})")
        if seen["traceback"] and "raises-exception" not in want["tags"]:
            problems.append(f"{where} shows an error:\n{seen['text'][-800:]}")
        if want["png"] and (seen["imgs"] == 0 or seen["imgs_loaded"] < seen["imgs"]):
            problems.append(f"{where} should show a plot: {seen['imgs']} <img>, "
                            f"{seen['imgs_loaded']} loaded")
    if clicked < explorers:
        problems.append(f"{explorers} explorer widget(s) expected, {clicked} redrew on a click of Run")
    assert not problems, f"{name} in JupyterLab (screenshot {shot}):\n" + "\n".join(problems)
    assert state["seconds"] < PER_NOTEBOOK_TIMEOUT
    print(f"{name}: ran in {state['seconds']:.1f} s in the browser; screenshot {shot.relative_to(shot.parents[2])}")
