"""Where the lessons' API lives: a tiny module, so worker processes import it fast."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

ENV_URL = "FUTURESLAB_API_URL"
ENV_REMOTE = "FUTURESLAB_REMOTE_API"


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
