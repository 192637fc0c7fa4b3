"""The course's settings (``FUTURESLAB_*`` environment variables) and where the lessons' API lives.

A tiny module, so worker processes import it fast. :data:`SETTINGS` lists every environment variable
the course reads; :func:`check_settings` validates the ones that are set and raises one
:class:`SettingError` naming each bad variable, its value and the fix. ``futureslab.setup()`` (the first
line of every set-up cell) calls it, and so does the doctor.
"""

from __future__ import annotations

import ipaddress
import os
import re
from urllib.parse import urlsplit

ENV_URL = "FUTURESLAB_API_URL"
ENV_REMOTE = "FUTURESLAB_REMOTE_API"
ENV_START_METHOD = "FUTURESLAB_START_METHOD"
ENV_CHROMIUM = "FUTURESLAB_CHROMIUM"
ENV_BROWSER_TIMEOUT = "FUTURESLAB_BROWSER_TIMEOUT"
ENV_NOTEBOOKS_DIR = "FUTURESLAB_NOTEBOOKS_DIR"
ENV_CLAIMS_LOG = "FUTURESLAB_CLAIMS_LOG"
ENV_REQUIRE_ALL_CLAIMS = "FUTURESLAB_REQUIRE_ALL_CLAIMS"
ENV_DEBIAN_ROOT = "FUTURESLAB_DEBIAN_ROOT"
ENV_DEBIAN_SUITE = "FUTURESLAB_DEBIAN_SUITE"

#: Every environment variable the course reads, with what it does. ``lessons`` ones are checked by
#: ``futureslab.setup()``; the doctor checks them all.
SETTINGS = {
    ENV_START_METHOD: ("lessons", "the multiprocessing start method every notebook uses (fork, spawn, forkserver)"),
    ENV_REMOTE: ("lessons", "a real remote API for the lessons instead of the built-in local one"),
    ENV_URL: ("lessons", "set by the course itself while a LocalAPI runs (its address, for worker processes)"),
    ENV_CHROMIUM: ("tests", "the Chromium the browser test drives"),
    ENV_BROWSER_TIMEOUT: ("tests", "seconds the browser test allows each notebook"),
    ENV_NOTEBOOKS_DIR: ("tests", "the folder of notebooks the browser test opens"),
    ENV_CLAIMS_LOG: ("tests", "a file every claim's verdict is appended to (set by conftest.py)"),
    ENV_REQUIRE_ALL_CLAIMS: ("tests", "any value: a claim that cannot be shown right now fails the run"),
    ENV_DEBIAN_ROOT: ("tests", "where .ci/debian-python.sh keeps its Debian-testing root"),
    ENV_DEBIAN_SUITE: ("tests", "the Debian suite .ci/debian-python.sh builds that root from"),
}

_RESTART = "then restart JupyterLab (or the terminal) so the notebooks see the change"


class SettingError(ValueError):
    """One or more ``FUTURESLAB_*`` environment variables have values the course cannot use.

    ``problems`` is a list of ``(name, value, problem, fix)``; the message has one line per problem:
    ``FUTURESLAB_START_METHOD='bogus' is not a start method on this platform. Fix: ...``.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        lines = [f"{name}={value!r} {problem}. Fix: {fix}." for name, value, problem, fix in self.problems]
        head = "A course setting is wrong" if len(lines) == 1 else f"{len(lines)} course settings are wrong"
        super().__init__(head + ":\n  " + "\n  ".join(lines))


def _unset(name: str) -> str:
    return f"unset it (`unset {name}`; Windows: `set {name}=`)"


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as an API base URL, or None: http(s), a host, a valid port."""
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "has no host name"
    if parts.query or parts.fragment:
        return "has a ?query or #fragment; a base URL has neither"
    return None


def probe_api(url: str, timeout: float = 5.0) -> str | None:
    """GET ``url``/posts/1 as the lessons do; None when it answers a post, else what went wrong."""
    import requests  # only when a remote API is set: worker processes never import this

    try:
        reply = requests.get(f"{url.rstrip('/')}/posts/1", timeout=timeout)
        reply.raise_for_status()
        post = reply.json()
    except requests.Timeout:
        return f"no answer within {timeout:g} s"
    except requests.ConnectionError as exc:
        reason = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))  # e.g. [Errno 111] Connection refused
        return f"cannot connect: {reason.group(0) if reason else exc}"
    except Exception as exc:  # any other failure to get a post is the answer
        return f"{type(exc).__name__}: {exc}"
    if not isinstance(post, dict) or post.get("id") != 1:
        return f"answered GET /posts/1 with {str(post)[:80]!r}, not a post with id 1"
    return None


def setting_problems(names=None, *, probe: bool = True, environ=None) -> list[tuple[str, str, str, str]]:
    """``(name, value, problem, fix)`` for each set variable of ``names`` (default: all of SETTINGS)
    whose value the course cannot use. ``probe`` also asks FUTURESLAB_REMOTE_API for /posts/1."""
    import multiprocessing

    env = os.environ if environ is None else environ
    problems = []
    for name in SETTINGS if names is None else names:
        value = env.get(name)
        if value is None or value == "":
            continue  # unset (or set to nothing): the course's default
        if name == ENV_START_METHOD:
            methods = multiprocessing.get_all_start_methods()  # this platform's default first
            if value not in methods:
                hint = f" (did you mean {value.strip().lower()!r}?)" if value.strip().lower() in methods else ""
                problems.append((name, value, f"is not a start method on this platform{hint}",
                                 f"set it to one of {', '.join(methods)}, or {_unset(name)} to use this "
                                 f"platform's default ({methods[0]}); {_RESTART}"))
        elif name in (ENV_REMOTE, ENV_URL):
            bad = url_problem(value)
            if name == ENV_URL:
                fix = (f"{_unset(name)}: the course sets it while its local API runs; to use another API, "
                       f"set {ENV_REMOTE} instead")
            else:
                fix = (f"set it to the base URL of a JSON API shaped like the course's local one (GET "
                       f"<URL>/posts/1 must answer a post), or {_unset(name)} to use the course's "
                       f"built-in local API; {_RESTART}")
            if bad is None and probe and name == ENV_REMOTE:
                failed = probe_api(value)
                if failed:
                    bad = f"does not answer GET /posts/1 ({failed})"
            if bad:
                problems.append((name, value, bad, fix))
        elif name == ENV_CHROMIUM:
            if not (os.path.isfile(value) and os.access(value, os.X_OK)):
                problems.append((name, value, "is not an executable file",
                                 f"point it at a Chromium or Chrome program (e.g. /usr/bin/chromium), "
                                 f"or {_unset(name)} to use /usr/bin/chromium or one on PATH"))
        elif name == ENV_BROWSER_TIMEOUT:
            try:
                ok = float(value) > 0
            except ValueError:
                ok = False
            if not ok:
                problems.append((name, value, "is not a number of seconds above 0",
                                 f"set it to e.g. 120, or {_unset(name)} (default 120)"))
        elif name == ENV_CLAIMS_LOG:
            folder = os.path.dirname(os.path.abspath(value))
            if os.path.isdir(value) or not os.path.isdir(folder):
                problems.append((name, value, "is not a file in an existing folder",
                                 f"point it at a file to append to, or {_unset(name)}"))
        elif name == ENV_REQUIRE_ALL_CLAIMS:
            if value.strip().lower() in ("0", "false", "no", "off"):
                problems.append((name, value, "turns the requirement ON (any value does)",
                                 f"{_unset(name)} to turn it off"))
        elif name == ENV_DEBIAN_ROOT:
            if not os.path.isabs(value) or os.path.normpath(value) == os.sep:
                problems.append((name, value, "is not an absolute path to a folder of its own",
                                 f"set it to e.g. /var/cache/futureslab/forky, or {_unset(name)}"))
        elif name == ENV_DEBIAN_SUITE:
            if not re.fullmatch(r"[a-z][a-z0-9-]*", value):
                problems.append((name, value, "is not a Debian suite name",
                                 f"set it to e.g. forky, testing or sid, or {_unset(name)} (default forky)"))
        elif name == ENV_NOTEBOOKS_DIR:
            if not os.path.isdir(value):
                problems.append((name, value, "is not a folder",
                                 f"point it at a folder of notebooks, or {_unset(name)} to use the course's"))
    return problems


def check_settings(names=None, *, probe: bool = True) -> None:
    """Raise one :class:`SettingError` listing every bad setting of ``names`` (default: all)."""
    problems = setting_problems(names, probe=probe)
    if problems:
        raise SettingError(problems)


def lesson_settings() -> list[str]:
    """The variables the notebooks read (checked by ``futureslab.setup()``)."""
    return [name for name, (who, _) in SETTINGS.items() if who == "lessons"]


def api_url(base_url: str | None = None) -> str:
    """The base URL the lessons talk to.

    An explicit ``base_url`` wins; then a running :class:`LocalAPI` (or ``FUTURESLAB_REMOTE_API``).
    Raises ``RuntimeError`` with the fix when there is none.
    """
    if base_url is not None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL string, got {base_url!r}")
        return base_url.rstrip("/")
    for name in (ENV_URL, ENV_REMOTE):
        url = os.environ.get(name)
        if url:
            bad = url_problem(url)
            if bad:
                raise SettingError(setting_problems([name], probe=False))
            return url.rstrip("/")
    raise RuntimeError(
        "No API to talk to: start the local one first, e.g. `api = LocalAPI().start()` or "
        "`with LocalAPI() as api: ...`, or set FUTURESLAB_REMOTE_API to a base URL."
    )


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (localhost, 127.0.0.0/8, ::1): no proxy can reach it."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
