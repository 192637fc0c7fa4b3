"""The building blocks of notebook 06's pipeline: download (threads), analyse (processes), save (threads).

The notebook writes the orchestration itself (staged, then streaming); the pieces that must be
importable (anything a process pool runs) or that are plain plumbing live here:

* :func:`make_session`, :func:`thread_session` - a ``requests.Session`` set up for many threads
  (a connection pool as large as the thread pool; no proxy for our own 127.0.0.1 server);
* :func:`get_with_retry`, :func:`download` - GET with a timeout, retrying temporary failures (HTTP
  503, timeouts, refused connections) with exponential back-off; a permanent error (HTTP 404) is not
  retried. Failure raises :class:`FetchFailed` whose message is the reason;
* :func:`analyse` - deliberately heavy pure-Python work on one post (~50-100 ms), module level so a
  ``ProcessPoolExecutor`` can run it under fork, spawn and forkserver alike;
* :class:`Saver` - writes one JSON file per result into a folder (atomically), optionally failing
  after a number of files as a full disk would;
* :func:`tally`, :func:`stage_records` - accounting (nothing lost) and the timeline's rows.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
import time
from dataclasses import replace

from ._validate import check_int, check_number
from ._config import api_url, is_loopback

__all__ = ["FetchFailed", "make_session", "thread_session", "get_with_retry", "download", "analyse",
           "Saver", "item_label", "tally", "stage_records", "ANALYSE_ROUNDS", "RETRY_STATUSES"]

#: HTTP statuses worth retrying: the server says "not now", not "never".
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: How many times :func:`analyse` runs its hashing loop over a post (about 50-100 ms of CPU).
ANALYSE_ROUNDS = 8000


class FetchFailed(Exception):
    """A download that gave up; ``str(exc)`` is the reason, ``exc.attempts`` how many tries it made."""

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.attempts = attempts


def make_session(pool_maxsize: int = 10, base_url: str | None = None):
    """A ``requests.Session`` whose connection pool keeps up to ``pool_maxsize`` connections per host.

    Share it between at most ``pool_maxsize`` threads. For a loopback ``base_url`` (the local API, the
    default) it ignores proxy settings from the environment (``trust_env = False``): a proxy cannot
    reach this machine's 127.0.0.1.
    """
    import requests
    from requests.adapters import HTTPAdapter

    pool_maxsize = check_int("pool_maxsize", pool_maxsize, low=1)
    session = requests.Session()
    session.trust_env = not is_loopback(api_url(base_url))
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_local = threading.local()


def thread_session():
    """This thread's own session (made on first use): no connection is ever shared between threads.

    Each session is closed when its thread ends (pool threads end at ``shutdown``)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = make_session(pool_maxsize=1)
    return session


def get_with_retry(url: str, *, session=None, retries: int = 3, backoff: float = 0.05,
                   timeout: float = 1.0):
    """GET ``url`` and return its JSON, trying up to ``retries + 1`` times.

    Retried: a timeout, a failed connection, and HTTP 429/500/502/503/504. Between tries it sleeps
    ``backoff``, then twice that, four times... (exponential back-off). Not retried: any other HTTP
    error (a 404 will not get better). Raises :class:`FetchFailed` with the reason.
    """
    import requests

    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"url must be an http(s) URL string, got {url!r}")
    retries = check_int("retries", retries, low=0)
    backoff = check_number("backoff", backoff, low=0, high=60)
    timeout = check_number("timeout", timeout, low=0.001)
    if session is None:
        session = thread_session()
    last = "no attempt made"
    for attempt in range(1, retries + 2):
        try:
            response = session.get(url, timeout=timeout)
        except requests.Timeout:
            last = f"timed out after {timeout:g} s"
        except requests.ConnectionError as exc:
            last = f"connection failed ({type(exc).__name__})"
        else:
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code}"
            elif response.status_code >= 400:
                raise FetchFailed(f"HTTP {response.status_code} (not retried)", attempt)
            else:
                return response.json()
        if attempt <= retries:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise FetchFailed(f"gave up after {retries + 1} attempts, last: {last}", retries + 1)


def download(post_id: int, base_url: str | None = None, retries: int = 3, backoff: float = 0.05,
             timeout: float = 1.0) -> dict:
    """Stage 1 (threads): fetch post ``post_id`` from the API with :func:`get_with_retry`."""
    post_id = check_int("post_id", post_id, low=1)
    return get_with_retry(f"{api_url(base_url)}/posts/{post_id}", retries=retries, backoff=backoff,
                          timeout=timeout)


def analyse(post: dict, rounds: int = ANALYSE_ROUNDS) -> dict:
    """Stage 2 (processes): summarise one post, with a deliberately expensive fingerprint.

    Pure Python, so it holds the GIL the whole time: threads cannot run two of these at once,
    processes can. Returns ``{"id", "userId", "words", "top_word", "fingerprint"}``.
    """
    if not isinstance(post, dict) or not {"id", "title", "body"} <= post.keys():
        raise TypeError(f"post must be a dict with id, title and body, got {post!r:.80}")
    rounds = check_int("rounds", rounds, low=1)
    text = f"{post['title']} {post['body']}"
    words = text.split()
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    h = 2166136261  # FNV-1a, run `rounds` times over the text: heavy on purpose
    data = text.encode()
    for _ in range(rounds):
        for b in data:
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    top = max(sorted(counts), key=counts.get) if counts else ""
    return {"id": post["id"], "userId": post.get("userId"), "words": len(words), "top_word": top,
            "fingerprint": f"{h:08x}"}


class Saver:
    """Stage 3 (threads): ``save(result)`` writes ``post_<id>.json`` into ``folder``; thread-safe.

    Each file is written to a temporary name and renamed, so a reader never sees half a file and a
    re-run overwrites cleanly (saving is idempotent). With ``fail_after=n`` every save after the
    first ``n`` raises ``OSError(ENOSPC)``, like a disk that fills up partway; :meth:`make_room` ends it.
    """

    def __init__(self, folder, fail_after: int | None = None):
        folder = os.fspath(folder)
        if not os.path.isdir(folder):
            raise ValueError(f"folder must be an existing directory, got {folder!r}")
        self.folder = folder
        self.fail_after = None if fail_after is None else check_int("fail_after", fail_after, low=0)
        self._lock = threading.Lock()
        self.saved = 0

    def make_room(self) -> None:
        """Stop failing (as if someone freed disk space)."""
        self.fail_after = None

    def save(self, result: dict) -> str:
        """Write ``result`` as JSON; return the file name (not the full path)."""
        if not isinstance(result, dict) or "id" not in result:
            raise TypeError(f"result must be a dict with an 'id', got {result!r:.80}")
        with self._lock:
            if self.fail_after is not None and self.saved >= self.fail_after:
                raise OSError(errno.ENOSPC, "No space left on device (simulated)")
            self.saved += 1
        name = f"post_{int(result['id']):03d}.json"
        tmp = os.path.join(self.folder, f".{name}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(result, f)
        os.replace(tmp, os.path.join(self.folder, name))
        return name

    def files(self) -> list[str]:
        """The result files in the folder, sorted."""
        return sorted(n for n in os.listdir(self.folder) if re.fullmatch(r"post_\d+\.json", n))


def item_label(item, *args, **kwargs) -> str:
    """A timeline label for any stage's argument: a post or result dict gives its ``id``, anything
    else its ``str``. Module level, so traced tasks using it can go to a process pool."""
    if isinstance(item, dict) and "id" in item:
        return str(item["id"])
    return str(item)


def tally(inputs, outcomes: dict) -> dict:
    """Check that every input ended exactly once, as ``("saved", file)`` or ``("failed", reason)``.

    Returns ``{"inputs", "saved", "failed", "missing", "unexpected"}`` (counts). Nothing was lost when
    ``missing == unexpected == 0`` and ``saved + failed == inputs``.
    """
    inputs = list(inputs)
    if not isinstance(outcomes, dict):
        raise TypeError(f"outcomes must be a dict of item -> (status, detail), got {type(outcomes).__name__}")
    for item, value in outcomes.items():
        if not (isinstance(value, tuple) and len(value) == 2 and value[0] in ("saved", "failed")):
            raise ValueError(f"outcomes[{item!r}] must be ('saved', file) or ('failed', reason), got {value!r}")
    statuses = [v[0] for v in outcomes.values()]
    return {"inputs": len(inputs), "saved": statuses.count("saved"), "failed": statuses.count("failed"),
            "missing": len(set(inputs) - outcomes.keys()), "unexpected": len(outcomes.keys() - set(inputs))}


def stage_records(records, stages=("download", "analyse", "save")):
    """Rename the workers of traced records for a pipeline timeline: threads named
    ``<stage>_<n>`` (``thread_name_prefix=<stage>``) become ``"<stage> n"``, process workers
    ``"analyse n"``; rows then sort by stage. ``records``: a Tracer or a list of TaskRecord."""
    from .trace import Tracer

    if isinstance(records, Tracer):
        records = records.records
    out = []
    for r in records:
        name = r.worker
        m = re.fullmatch(r"(\w+?)_(\d+)", r.thread) if name == r.thread else None
        if m and m.group(1) in stages:
            name = f"{stages.index(m.group(1)) + 1}. {m.group(1)} {int(m.group(2)) + 1:02d}"
        elif name.startswith("process-"):
            name = f"{stages.index('analyse') + 1 if 'analyse' in stages else 2}. analyse {int(name[8:]):02d}"
        out.append(replace(r, worker=name))
    return out
