"""Helpers for tests/test_browser.py: find Chromium, run a private JupyterLab, drive a notebook.

Kept apart from the test so the steps are readable and reusable (e.g. to take screenshots by hand:
``python -m tests.browser_support notebooks/00-start-here.ipynb``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = Path(os.environ.get("FUTURESLAB_NOTEBOOKS_DIR") or ROOT / "notebooks")  # override: try other notebooks
SCREENSHOTS = ROOT / "artifacts" / "screenshots"

# Flags that keep a headless Chromium quiet and fast on a closed network (see the notes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # the lab is on 127.0.0.1: never ask a configured proxy for it
]

HOW_TO_ENABLE = (
    "Chromium was not found. To enable the real-browser test (tests/test_browser.py): "
    "`sudo apt-get install chromium` (Debian/Ubuntu; or run .ci/install-browser.sh), or point "
    "FUTURESLAB_CHROMIUM=/path/to/chromium-or-chrome at any Chromium build. "
    "(Never `playwright install`: the test drives your own Chromium.)"
)

# JupyterLab user settings for the test server: render every cell (not only those on screen), no
# news pop-up, no autosave (the test works on a temporary copy anyway).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def find_chromium() -> str | None:
    """The Chromium to drive: $FUTURESLAB_CHROMIUM, else /usr/bin/chromium, else one on PATH."""
    wanted = os.environ.get("FUTURESLAB_CHROMIUM")
    if wanted:
        return wanted if os.access(wanted, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_RAW_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def http_status(url: str, token: str | None = None, timeout: float = 5.0) -> int:
    """The HTTP status of GET ``url`` (redirects not followed; proxies never used)."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with _RAW_OPENER.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def api(url: str, token: str, method: str = "GET", timeout: float = 10.0):
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with _NO_PROXY_OPENER.open(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


class LabServer:
    """A JupyterLab on 127.0.0.1 with a random token, serving a temporary COPY of ``notebooks/``.

    Every Jupyter folder (config, data, runtime, settings, workspaces, IPython) is private and
    temporary, so the test neither reads nor writes the user's own set-up or the committed notebooks.
    """

    def __init__(self, notebooks: Path = NOTEBOOKS, startup_timeout: float = 60.0):
        self.tmp = Path(tempfile.mkdtemp(prefix="futureslab-lab-"))
        self.root = self.tmp / "notebooks"
        shutil.copytree(notebooks, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.log_path = self.tmp / "jupyterlab.log"

    def _env(self) -> dict:
        env = dict(os.environ)
        dirs = {name: self.tmp / name for name in
                ("config", "data", "runtime", "settings", "workspaces", "ipython")}
        for d in dirs.values():
            d.mkdir()
        for rel, values in LAB_SETTINGS.items():
            path = dirs["settings"] / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        env.update({
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "JUPYTER_PLATFORM_DIRS": "1",
        })
        env.pop("MPLBACKEND", None)  # would hide the plots in the kernels
        return env

    def start(self) -> "LabServer":
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if hasattr(os, "getuid") and os.getuid() == 0:
            cmd.append("--allow-root")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.tmp, env=self._env(), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if http_status(f"{self.url}/api/status", self.token, timeout=2) == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {self.startup_timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def lab_url(self, notebook: str) -> str:
        # ?reset: start from an empty workspace (no tabs restored from a previous page).
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def wait_for_idle_kernel(self, notebook: str, timeout: float = 90.0) -> None:
        """Wait until the server reports the notebook's kernel started and idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for session in api(f"{self.url}/api/sessions", self.token):
                if session.get("path", "").endswith(notebook) and \
                        (session.get("kernel") or {}).get("execution_state") == "idle":
                    return
            time.sleep(0.25)
        raise TimeoutError(f"the kernel of {notebook} was not idle within {timeout:.0f} s")

    def shutdown_kernels(self) -> None:
        for session in api(f"{self.url}/api/sessions", self.token):
            api(f"{self.url}/api/sessions/{session['id']}", self.token, method="DELETE")
        for kernel in api(f"{self.url}/api/kernels", self.token):
            api(f"{self.url}/api/kernels/{kernel['id']}", self.token, method="DELETE")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.shutdown_kernels()
            except OSError:
                pass
            self.proc.terminate()  # SIGTERM: the server shuts its kernels down and exits
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ------------------------------------------------------------------------------ the committed notebook


def committed_expectations(path: Path) -> list[dict]:
    """For each code cell of the committed notebook: its tags and whether it stores a PNG plot."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        cells.append({
            "tags": list(cell.get("metadata", {}).get("tags", [])),
            "png": any("image/png" in out.get("data", {}) for out in cell.get("outputs", [])),
            "widget": any("application/vnd.jupyter.widget-view+json" in out.get("data", {})
                          for out in cell.get("outputs", [])),
            "source": "".join(cell["source"]),
        })
    return cells


# ---------------------------------------------------------------------------------- in the browser

# Reads the notebook as rendered: per code cell its prompt, whether it shows a traceback, and its
# plots (img elements in image/png outputs, and whether each image has loaded).
READ_CELLS_JS = r"""
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell')].map(cell => {
    const prompt = cell.querySelector('.jp-InputArea .jp-InputPrompt');
    const outputs = [...cell.querySelectorAll('.jp-OutputArea-output')];
    const text = outputs.map(o => o.innerText || '').join('\n');
    const imgs = [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="image/png"] img')];
    return {
      prompt: prompt ? prompt.innerText.trim() : '',
      traceback: /Traceback \(most recent call last\)|^\w+(Error|Exception)\b.*$/m.test(text)
                 && outputs.some(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr'),
      imgs: imgs.length,
      imgs_loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
      text: text.slice(0, 1500),
    };
  });
  return {status: indicator ? indicator.getAttribute('data-status') : null, cells};
}
"""

# Finished: the kernel is idle, no cell waits or runs ([*]), and every code cell has a number, or the
# run stopped at an error (JupyterLab then leaves the cells after it unnumbered).
DONE_JS = r"""
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  if (!indicator || indicator.getAttribute('data-status') !== 'idle') return false;
  const prompts = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea .jp-InputPrompt')]
    .map(p => p.innerText.trim());
  if (prompts.some(p => p.includes('*'))) return false;
  const numbered = prompts.every(p => /\[\d+\]/.test(p));
  const errored = [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .some(o => /Traceback \(most recent call last\)/.test(o.innerText || ''));
  return numbered || errored;
}
"""


def run_menu_command(page, menu: str, command: str) -> None:
    """Click a top menu (e.g. "Run") and then the entry with ``data-command=command``, as a user would."""
    page.click(f'.lm-MenuBar-itemLabel:text-is("{menu}")')
    item = page.locator(f'.lm-Menu-item[data-command="{command}"]')
    item.wait_for(state="visible", timeout=10_000)
    item.click()
    page.locator(".lm-Menu").first.wait_for(state="hidden", timeout=10_000)


def run_notebook_in_browser(page, server: LabServer, name: str, timeout: float = 120.0) -> dict:
    """Open ``name``, clear every output, run all cells, wait until done; return what the page shows.

    Returns ``{"cells": [...], "seconds": run time, "status": kernel status}``.
    """
    page.goto(server.lab_url(name))
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    page.wait_for_selector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]',
                           timeout=60_000)
    server.wait_for_idle_kernel(name)  # the toolbar can read "idle" before the kernel is connected
    run_menu_command(page, "Edit", "editmenu:clear-all")
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea .jp-InputPrompt')]
                 .every(p => !/\\d/.test(p.innerText))""", timeout=10_000)
    start = time.monotonic()
    started = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea .jp-InputPrompt')]
                 .some(p => /\\*|\\d/.test(p.innerText))"""
    # The first prompt must change before "done" means anything. A run-all that a kernel still
    # settling in ignored (seen once on a fresh machine) is clicked again, once.
    for attempt in (1, 2):
        run_menu_command(page, "Run", "runmenu:run-all")
        try:
            page.wait_for_function(started, timeout=20_000)
            break
        except Exception:
            if attempt == 2:
                raise
            server.wait_for_idle_kernel(name)
    page.wait_for_function(DONE_JS, timeout=timeout * 1000, polling=250)
    seconds = time.monotonic() - start
    page.wait_for_timeout(300)  # let the last images decode
    state = page.evaluate(READ_CELLS_JS)
    state["seconds"] = seconds
    return state


def click_explorer_runs(page, timeout: float = 30.0) -> int:
    """Click every explorer widget's Run button and wait until its timeline is redrawn.

    Returns how many explorers were clicked. A redraw means the output area's image changed (a new
    run draws new bars) and the button is enabled again.
    """
    run_button = page.locator("button.jupyter-button", has_text=re.compile(r"^\s*Run\s*$"))
    boxes = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .widget-vbox").filter(has=run_button)
    clicked = 0
    for i in range(boxes.count()):
        box = boxes.nth(i)
        img = box.locator('.jp-OutputArea-output[data-mime-type="image/png"] img').first
        img.wait_for(state="attached", timeout=timeout * 1000)
        before = img.get_attribute("src")
        box.locator("button.jupyter-button", has_text=re.compile(r"^\s*Run\s*$")).click()
        page.wait_for_function(
            """([box, before]) => {
                 const img = box.querySelector('.jp-OutputArea-output[data-mime-type="image/png"] img');
                 const button = [...box.querySelectorAll('button.jupyter-button')].find(b => b.innerText.trim() === 'Run');
                 return img && img.getAttribute('src') !== before && img.complete && img.naturalWidth > 0
                        && button && !button.disabled;
               }""", arg=[box.element_handle(), before], timeout=timeout * 1000)
        clicked += 1
    return clicked


def screenshot(page, path: Path) -> None:
    """Save what a learner sees, scrolled to the last plot (or the end), with the file browser shut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").count():
        page.keyboard.press("Control+b")  # View > Show Left Sidebar (toggle)
    plots = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type="image/png"] img')
    if plots.count():
        plots.last.scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    page.screenshot(path=str(path))


if __name__ == "__main__":  # manual use: screenshots of the given notebooks
    from playwright.sync_api import sync_playwright

    names = [Path(a).name for a in sys.argv[1:]] or sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with LabServer() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name in names:
            state = run_notebook_in_browser(page, server, name)
            screenshot(page, SCREENSHOTS / (Path(name).stem + ".png"))
            print(name, f"{state['seconds']:.1f} s", [c["prompt"] for c in state["cells"]])
            server.shutdown_kernels()
        browser.close()
