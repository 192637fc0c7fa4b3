"""The course works behind a configured HTTP proxy, and with no network at all.

* Behind a proxy: every proxy variable points at a proxy that refuses connections (127.0.0.1:9) and
  NO_PROXY is unset, as on a laptop whose proxy is configured for the office network. The tasks
  that call the local API must not go through it (futureslab.tasks bypasses proxies for loopback),
  and notebook 00 must pass under nbval.
* No network: notebook 00 and the loopback tasks run in a new network namespace whose only
  interface is the loopback (``unshare --net`` + ``ip link set lo up``): no route anywhere else.
  Needs permission to create a network namespace (root, or an unprivileged user namespace). Where
  that is impossible the test is skipped with the reason, except in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
START_NOTEBOOK = ROOT / "notebooks" / "00-start-here.ipynb"
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
NO_PROXY_VARS = ("NO_PROXY", "no_proxy")


def proxied_env(base=None) -> dict:
    env = dict(os.environ if base is None else base)
    for var in PROXY_VARS:
        env[var] = DEAD_PROXY
    for var in NO_PROXY_VARS:
        env.pop(var, None)
    return env


@pytest.fixture
def dead_proxy(monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.setenv(var, DEAD_PROXY)
    for var in NO_PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


def test_the_proxy_is_really_in_the_way(dead_proxy):
    """Sanity check of the set-up: a plain requests call to the local API does try the dead proxy."""
    import requests

    from futureslab.server import LocalAPI

    with LocalAPI(latency=0) as api:
        with pytest.raises(requests.exceptions.ProxyError):
            requests.get(f"{api.url}/posts/1", timeout=5)


def test_loopback_tasks_ignore_a_dead_proxy(dead_proxy):
    from futureslab import tasks
    from futureslab.server import LocalAPI

    with LocalAPI(latency=0) as api:
        assert tasks.fetch_post(1)["id"] == 1
        assert tasks.fetch_user(2)["id"] == 2
        assert isinstance(tasks.get_json("/users"), list)
        assert isinstance(tasks.fetch_user_posts(1), list)
        assert isinstance(tasks.fetch_comments(1), list)
        assert tasks.fetch_url_size(f"{api.url}/posts/1") > 0
        assert tasks.fetch_url_size(api.url.replace("127.0.0.1", "localhost") + "/posts/1") > 0
        assert api.stats()["failures"] == 0


def _pytest_cmd(*targets: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *targets]


@pytest.mark.slow
def test_start_notebook_behind_a_dead_proxy():
    result = subprocess.run(_pytest_cmd(str(START_NOTEBOOK)), cwd=ROOT, env=proxied_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"notebook 00 failed behind a proxy:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"


def _netns_prefix() -> list[str] | str:
    """The command prefix that runs a command in a new network namespace, or why there is none."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux-only"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "needs `unshare` (util-linux) and `ip` (iproute2)"
    for prefix in (["unshare", "--net"], ["unshare", "--map-root-user", "--net"]):
        probe = subprocess.run(prefix + ["ip", "link", "set", "lo", "up"], capture_output=True, text=True)
        if probe.returncode == 0:
            return prefix
        last = probe.stderr.strip()
    return f"cannot create a network namespace here ({last}); run as root or allow user namespaces"


NO_ROUTE_CHECK = (
    "import errno, os, socket, sys\n"
    "lines = open('/proc/net/dev').read().splitlines()[2:]  # this namespace's interfaces\n"
    "interfaces = sorted(line.split(':')[0].strip() for line in lines)\n"
    "if interfaces != ['lo']:\n"
    "    sys.exit(f'the namespace has network interfaces: {interfaces}')\n"
    "try:\n"
    "    socket.create_connection(('192.0.2.1', 80), timeout=2).close()\n"
    "except OSError as exc:\n"
    "    if exc.errno != errno.ENETUNREACH:\n"
    "        sys.exit(f'expected no route to anywhere, got {exc!r}')\n"
    "else:\n"
    "    sys.exit('a connection left the machine')\n"
)


@pytest.mark.slow
def test_with_no_network_at_all():
    prefix = _netns_prefix()
    if isinstance(prefix, str):
        if os.environ.get("CI"):
            pytest.fail(f"the no-network test must run in CI: {prefix}", pytrace=False)
        pytest.skip(f"no-network test skipped: {prefix}")
    py = sys.executable
    script = " && ".join([
        "ip link set lo up",
        f"{py} -c \"$NO_ROUTE_CHECK\"",
        " ".join(_pytest_cmd(str(START_NOTEBOOK),
                             "tests/test_offline_proxy.py::test_loopback_tasks_ignore_a_dead_proxy")),
    ])
    env = dict(os.environ, NO_ROUTE_CHECK=NO_ROUTE_CHECK)
    result = subprocess.run(prefix + ["sh", "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (f"with no network (only loopback):\n{result.stdout[-3000:]}\n"
                                    f"{result.stderr[-2000:]}")
    assert "passed" in result.stdout
