"""The building blocks of notebook 06's pipeline: download (threads), analyse (processes), save (threads).

Everything a process pool runs must be importable, and the orchestration is reused by the notebook, the
script version (:mod:`futureslab.examples.pipeline_script`) and the tests, so it all lives here:

* :func:`make_session`, :func:`thread_session` - a ``requests.Session`` set up for many threads
  (a connection pool as large as the thread pool; no proxy for our own 127.0.0.1 server);
* :func:`get_with_retry`, :func:`download` - GET with a timeout, retrying temporary failures (HTTP
  503, timeouts, refused connections) with exponential back-off; a permanent error (HTTP 404) is not
  retried. Failure raises :class:`FetchFailed` whose message is the reason;
* :func:`analyse` - deliberately heavy pure-Python work on one post (~50-100 ms), module level so a
  ``ProcessPoolExecutor`` can run it under fork, spawn and forkserver alike; :class:`Crash` is
  the same work, except that a worker process dies on the way (a real ``os._exit``);
* :class:`Saver` - writes one JSON file per result into a folder (write, flush, rename), remembers
  each file's SHA-256 and :meth:`Saver.verify` reads every file back against it; optionally fails
  after a number of files as a full disk would;
* :class:`Ledger`, :func:`tally` - every input's fate (saved, failed with its reason, retried), kept
  as a list of events so that an item that ended twice shows up;
* :func:`run_staged`, :func:`run_streaming` - the two pipelines; both survive a process pool that
  breaks (a fresh pool, the affected items retried) and keep the work done for items that failed;
* :func:`item_label`, :func:`stage_records`, :func:`plot_pipeline` - the timeline's labels, rows and
  picture.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from functools import partial

from ._validate import check_callable, check_int, check_number
from ._config import api_url, is_loopback

__all__ = ["FetchFailed", "make_session", "thread_session", "get_with_retry", "download", "analyse",
           "Crash", "Saver", "Ledger", "Run", "run_staged", "run_streaming", "item_label", "tally",
           "stage_records", "plot_pipeline", "ANALYSE_ROUNDS", "RETRY_STATUSES"]

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

    ``timeout`` is what ``requests`` makes of it: a limit on *each socket operation* (connecting, then
    each wait for bytes), not a deadline for the whole request. A server that trickles one byte just
    under every ``timeout`` keeps a request going for much longer; a real deadline needs a watchdog
    around the call (or an async client with one).
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
            last = f"timed out (one socket wait took over {timeout:g} s)"
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


class Crash:
    """:func:`analyse`, except that the worker process that meets post ``post_id`` dies at once, the
    first ``times`` times.

    The death is real: ``os._exit(70)``, as a segfault or the out-of-memory killer would end it, so
    the pool breaks (``BrokenProcessPool``) and every task in flight in it fails. Each crash first
    creates a marker file atomically (``marker``, then ``marker.2``, ``marker.3``... with
    ``O_CREAT | O_EXCL``), so across processes and start methods exactly ``times`` meetings crash and
    later ones do the work. Refuses to run in the process that made it (it would end your kernel).
    """

    def __init__(self, post_id: int, marker, times: int = 1, rounds: int = ANALYSE_ROUNDS):
        self.post_id = check_int("post_id", post_id, low=1)
        self.times = check_int("times", times, low=1)
        marker = os.fspath(marker)
        self.markers = [marker] + [f"{marker}.{k}" for k in range(2, self.times + 1)]
        if any(os.path.exists(m) for m in self.markers):
            raise ValueError(f"marker must not exist yet (it means 'already crashed'), got {marker!r}")
        self.rounds = check_int("rounds", rounds, low=1)
        self.owner = os.getpid()
        self.__name__ = "analyse"

    def __call__(self, post: dict) -> dict:
        if os.getpid() == self.owner:
            raise RuntimeError("Crash runs only in a worker process: it would end this one")
        if isinstance(post, dict) and post.get("id") == self.post_id:
            for marker in self.markers:
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    continue  # this crash happened already
                os.close(fd)
                os._exit(70)
        return analyse(post, self.rounds)

    def crashes(self) -> int:
        """How many times a worker has died on purpose so far."""
        return sum(os.path.exists(m) for m in self.markers)

    def __repr__(self) -> str:
        return f"Crash(post_id={self.post_id}, times={self.times})"


class Saver:
    """Stage 3 (threads): ``save(result)`` writes ``post_<id>.json`` into ``folder``; thread-safe.

    Each file is written under a temporary name, flushed, then renamed over the final name
    (``os.replace``, atomic within one folder), so a reader finds either no file, the old file or the
    complete new one, never half a file; a failed write removes its temporary file. Saving the same
    result again overwrites it with the same bytes (saving is idempotent).

    What survives what: without ``durable``, the rename protects against a crash of *this process*
    (the operating system still holds the written data), not against a crash of the *machine* or a
    power loss, after which a renamed file can be empty. With ``durable=True`` it also calls
    ``os.fsync`` on the file before the rename and, on POSIX, on the folder after it, which covers a
    power loss on a disk that honours flushes, at the cost of a disk flush per file.

    ``saved`` counts files completely written; ``digests`` maps each file name to the SHA-256 of the
    bytes written, which :meth:`verify` checks on disk. With ``fail_after=n`` every save after the
    first ``n`` raises ``OSError(ENOSPC)``, like a disk that fills up partway; :meth:`make_room` ends it.
    """

    def __init__(self, folder, fail_after: int | None = None, durable: bool = False):
        folder = os.fspath(folder)
        if not os.path.isdir(folder):
            raise ValueError(f"folder must be an existing directory, got {folder!r}")
        if not isinstance(durable, bool):
            raise TypeError(f"durable must be True or False, got {durable!r}")
        self.folder = folder
        self.fail_after = None if fail_after is None else check_int("fail_after", fail_after, low=0)
        self.durable = durable
        self._lock = threading.Lock()
        self._writing = 0  # saves started and not yet finished (they count against fail_after)
        self.saved = 0
        self.digests: dict[str, str] = {}

    def make_room(self) -> None:
        """Stop failing (as if someone freed disk space)."""
        self.fail_after = None

    def save(self, result: dict) -> str:
        """Write ``result`` as JSON; return the file name (not the full path)."""
        if not isinstance(result, dict) or "id" not in result:
            raise TypeError(f"result must be a dict with an 'id', got {result!r:.80}")
        name = f"post_{int(result['id']):03d}.json"
        with self._lock:
            if self.fail_after is not None and self.saved + self._writing >= self.fail_after:
                raise OSError(errno.ENOSPC, "No space left on device (simulated)")
            self._writing += 1
        tmp = os.path.join(self.folder, f".{name}.{uuid.uuid4().hex}.tmp")
        digest = hashlib.sha256()
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                for chunk in json.JSONEncoder(sort_keys=True).iterencode(result):
                    f.write(chunk)  # a value JSON cannot encode fails here, halfway through the file
                    digest.update(chunk.encode("utf-8"))
                f.flush()
                if self.durable:
                    os.fsync(f.fileno())
            os.replace(tmp, os.path.join(self.folder, name))
            if self.durable:
                _fsync_folder(self.folder)
        except BaseException:
            with self._lock:
                self._writing -= 1
            raise
        finally:
            try:
                os.remove(tmp)  # still there only if the write or the rename failed
            except FileNotFoundError:
                pass
        with self._lock:
            self._writing -= 1
            self.saved += 1  # counted only once the file is complete under its final name
            self.digests[name] = digest.hexdigest()
        return name

    def files(self) -> list[str]:
        """The result files in the folder, sorted."""
        return sorted(n for n in os.listdir(self.folder) if re.fullmatch(r"post_\d+\.json", n))

    def verify(self, outcomes=None) -> dict:
        """Read every file back and compare it with what was written.

        Returns ``{"checked", "good", "bad", "missing", "unexpected", "temporary"}``: ``bad`` lists
        files whose SHA-256 differs from the bytes :meth:`save` wrote, or whose JSON is not a result
        for the post its name says; ``missing`` files a save (or, when given, a ``("saved", file)``
        outcome, a dict or a :class:`Ledger`) promised that are not there; ``unexpected`` result files
        nothing accounts for; ``temporary`` left-over temporary files. All good when
        ``good == checked`` and the four lists are empty.
        """
        promised = set(self.digests)
        if outcomes is not None:
            final = outcomes.outcomes() if isinstance(outcomes, Ledger) else outcomes
            if not isinstance(final, dict):
                raise TypeError(f"outcomes must be a dict or a Ledger, got {type(outcomes).__name__}")
            promised |= {v[1] for v in final.values() if isinstance(v, tuple) and v[0] == "saved"}
        on_disk = set(self.files())
        bad = []
        for name in sorted(promised & on_disk):
            with open(os.path.join(self.folder, name), "rb") as f:
                data = f.read()
            good = hashlib.sha256(data).hexdigest() == self.digests.get(name)
            try:
                content = json.loads(data)
                good = good and isinstance(content, dict) and f"post_{int(content['id']):03d}.json" == name
            except (ValueError, KeyError, TypeError):
                good = False
            if not good:
                bad.append(name)
        checked = len(promised & on_disk)
        return {"checked": checked, "good": checked - len(bad), "bad": bad,
                "missing": sorted(promised - on_disk), "unexpected": sorted(on_disk - promised),
                "temporary": sorted(n for n in os.listdir(self.folder) if n.endswith(".tmp"))}


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (POSIX); Windows cannot open a folder, and needs no such step
    for ``os.replace`` (MoveFileEx) to be recorded with the file system's journal."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------- fates

_FINAL = ("saved", "failed")


class Ledger:
    """Every input's fate, as an append-only list of events ``(item, status, detail)``; thread-safe.

    ``status`` is ``"retried"`` (any number of times, with the reason), then one final ``"saved"``
    (detail: the file) or ``"failed"`` (detail: ``"stage: reason"``). :meth:`reopen` marks an item
    whose failed stage is being run again (a resumed save), after which it ends once more. Because
    events are kept, not overwritten, an item that ends twice shows up: :func:`tally` counts it as a
    duplicate.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.events: list[tuple] = []

    def _add(self, item, status, detail) -> None:
        with self._lock:
            self.events.append((item, status, str(detail)))

    def saved(self, item, file: str) -> None:
        self._add(item, "saved", file)

    def failed(self, item, stage: str, reason) -> None:
        self._add(item, "failed", f"{stage}: {reason}")

    def retried(self, item, stage: str, reason) -> None:
        self._add(item, "retried", f"{stage}: {reason}")

    def reopen(self, item, reason: str = "resumed") -> None:
        self._add(item, "reopened", reason)

    def outcomes(self) -> dict:
        """Each item's latest final outcome: ``{item: ("saved", file) or ("failed", reason)}``."""
        with self._lock:
            events = list(self.events)
        return {item: (status, detail) for item, status, detail in events if status in _FINAL}

    def history(self, item) -> list[tuple[str, str]]:
        """Everything that happened to ``item``, in order: ``[(status, detail), ...]``."""
        with self._lock:
            return [(status, detail) for i, status, detail in self.events if i == item]

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return f"<Ledger: {len(self.events)} events, {len(self.outcomes())} items ended>"


def tally(inputs, outcomes) -> dict:
    """Check that every input ended exactly once, as ``("saved", file)`` or ``("failed", reason)``.

    ``outcomes``: a :class:`Ledger`, a list of ``(item, (status, detail))`` pairs (where an item
    may appear twice), or a dict ``{item: (status, detail)}`` (where it cannot). Returns
    ``{"inputs", "saved", "failed", "retried", "missing", "unexpected", "duplicates"}``:
    ``duplicates`` counts items that ended more than once (without a :meth:`Ledger.reopen` in
    between), ``missing`` inputs with no final outcome, ``retried`` retry events. Nothing was lost
    or doubled when ``missing == unexpected == duplicates == 0`` and ``saved + failed == inputs``.
    """
    inputs = list(inputs)
    if isinstance(outcomes, Ledger):
        with outcomes._lock:
            events = list(outcomes.events)
    elif isinstance(outcomes, dict):
        events = [(item, *_outcome(item, value)) for item, value in outcomes.items()]
    elif isinstance(outcomes, (list, tuple)):
        events = []
        for pair in outcomes:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ValueError(f"outcomes must hold (item, (status, detail)) pairs, got {pair!r:.80}")
            events.append((pair[0], *_outcome(pair[0], pair[1])))
    else:
        raise TypeError("outcomes must be a Ledger, a dict of item -> (status, detail) or a list of "
                        f"(item, (status, detail)) pairs, got {type(outcomes).__name__}")
    open_, final, duplicates, retried = {}, {}, set(), 0
    for item, status, _ in events:
        if status == "retried":
            retried += 1
        elif status == "reopened":
            open_[item] = True
        else:
            if item in final and not open_.get(item, False):
                duplicates.add(item)
            final[item], open_[item] = status, False
    ended = {item for item in final if not open_[item]}
    statuses = [final[item] for item in ended]
    return {"inputs": len(inputs), "saved": statuses.count("saved"), "failed": statuses.count("failed"),
            "retried": retried, "missing": len(set(inputs) - ended),
            "unexpected": len(final.keys() - set(inputs)), "duplicates": len(duplicates)}


def _outcome(item, value) -> tuple:
    if not (isinstance(value, tuple) and len(value) == 2 and value[0] in _FINAL):
        raise ValueError(f"outcomes[{item!r}] must be ('saved', file) or ('failed', reason), got {value!r:.80}")
    return value


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _died(exc: BaseException, attempt: int) -> str:
    return (f"{type(exc).__name__}: a worker process died while this item was in its pool "
            f"(attempt {attempt})")


# ----------------------------------------------------------------------------------- pipelines

@dataclass
class Run:
    """What a pipeline run did. ``ledger``: every input's fate; ``kept``: the work done for each item
    that did not end saved, ``{item: (stage to run next, its input)}`` (a downloaded post whose
    analysis failed, an analysed result whose save failed), so a resume repeats nothing;
    ``restarts``: process pools replaced after one broke; times in seconds (``first_saved`` is None
    when nothing was saved); ``stalled``: the run stopped waiting after ``timeout`` s without progress.
    """

    ledger: Ledger
    elapsed: float = 0.0
    first_saved: float | None = None
    kept: dict = field(default_factory=dict)
    restarts: int = 0
    stalled: bool = False

    @property
    def outcomes(self) -> dict:
        return self.ledger.outcomes()


class _Analysers:
    """A process pool that is replaced by a fresh one when it breaks (``generation`` counts pools).

    :meth:`shutdown` first terminates the workers if a task it was given has not finished: the run
    then ended early (an error, or the learner's interrupt), nobody will read that result, and an
    interrupt can leave a worker that would never stop (see :func:`futureslab.interrupts.stopping_workers`).
    """

    def __init__(self, workers, mp_context):
        self.workers, self.mp_context = workers, mp_context
        self.generation, self.restarts = 0, 0
        self.pool = self._new()
        self.futures = []  # those of the current pool

    def _new(self):
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self.mp_context)

    def replace(self, generation: int) -> None:
        """The pool of ``generation`` broke: shut it down and start a fresh one (once per break)."""
        if generation != self.generation:
            return  # already replaced
        self.pool.shutdown(wait=True)  # a broken pool has already ended its workers: returns at once
        self.pool, self.futures = self._new(), []
        self.generation += 1
        self.restarts += 1

    def submit(self, fn, *args):
        """Submit to the current pool; if it is broken already, replace it and submit again."""
        from concurrent.futures.process import BrokenProcessPool

        for _ in range(3):
            generation = self.generation
            try:
                future = self.pool.submit(fn, *args)
            except BrokenProcessPool:
                self.replace(generation)
                continue
            self.futures.append(future)
            return future, generation
        raise BrokenProcessPool("three fresh process pools in a row broke before a task could be submitted")

    def shutdown(self) -> None:
        from .interrupts import terminate_workers

        if not all(f.done() for f in self.futures):  # the run ended early: do not wait for its workers
            terminate_workers(self.pool)
        self.pool.shutdown(wait=True)


def _check_common(inputs, saver, download, analyse, workers, attempts, mp_context):
    inputs = list(inputs)
    if len(set(inputs)) != len(inputs):
        raise ValueError("inputs must not repeat an item: each one is accounted for once")
    if not isinstance(saver, Saver) and not callable(getattr(saver, "save", None)):
        raise TypeError(f"saver must be a Saver (or have a save method), got {saver!r}")
    download = partial(globals()["download"], retries=5) if download is None else download
    analyse = globals()["analyse"] if analyse is None else analyse
    check_callable("download", download)
    check_callable("analyse", analyse)
    if workers is None:
        from .timing import cpu_count

        workers = cpu_count()
    workers = check_int("workers", workers, low=1)
    attempts = check_int("attempts", attempts, low=1)
    if mp_context is None:
        import multiprocessing

        mp_context = multiprocessing.get_context()
    return inputs, download, analyse, workers, attempts, mp_context


def _traced(tracer, download, analyse, save):
    if tracer is None:
        return download, analyse, save
    return (tracer.wrap(download), tracer.wrap(analyse, label=item_label),
            tracer.wrap(save, label=item_label))


def run_streaming(inputs, saver, *, tracer=None, download=None, analyse=None, workers=None,
                  attempts: int = 3, timeout: float = 30.0, mp_context=None) -> Run:
    """Download (8 threads), analyse (``workers`` processes), save (4 threads), handing each item to
    the next stage as soon as it is ready; returns a :class:`Run`.

    One loop in the calling thread waits for whichever future finishes first and submits that item's
    next stage, so no task waits on another and every future is read. Every input ends in the ledger
    as saved or failed with its reason. If the process pool breaks (a worker died: every task in it
    fails with ``BrokenProcessPool``, and so does the next ``submit``), a fresh pool takes over and
    each affected item is analysed again, up to ``attempts`` times in all, each retry in the ledger.
    (Which task killed the worker cannot be known: an item that kills it every time fails after
    ``attempts`` tries, and so does any item that was in the pool with it each time.)
    If nothing finishes for ``timeout`` s, it stops: tasks not started are cancelled and fail with
    that reason; tasks already running cannot be stopped (a running save may still write its file),
    so it waits for them and records what they really did.

    ``download(item)``, ``analyse(post)`` (picklable) and ``saver.save(result)`` default to this
    module's stages (downloads retry up to 5 times); ``tracer`` records every task.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from .timing import stopwatch

    inputs, download, analyse, workers, attempts, mp_context = _check_common(
        inputs, saver, download, analyse, workers, attempts, mp_context)
    timeout = check_number("timeout", timeout, low=0.001)
    download, analyse, save = _traced(tracer, download, analyse, saver.save)
    run = Run(Ledger())
    tries: dict = {}
    in_flight: dict = {}  # future -> (stage, item, its input, pool generation)

    def start_analysis(item, post):
        tries[item] = tries.get(item, 0) + 1
        future, generation = analysers.submit(analyse, post)
        in_flight[future] = ("analyse", item, post, generation)

    with stopwatch() as clock, \
            ThreadPoolExecutor(max_workers=8, thread_name_prefix="download") as downloads, \
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="save") as savers:
        analysers = _Analysers(workers, mp_context)
        try:
            for item in inputs:
                in_flight[downloads.submit(download, item)] = ("download", item, item, 0)
            while in_flight:
                done, _ = wait(in_flight, timeout=None if run.stalled else timeout,
                               return_when=FIRST_COMPLETED)
                if not done:  # no progress for `timeout` s: stop starting work
                    run.stalled = True
                    for future, (stage, item, given, _) in list(in_flight.items()):
                        if future.cancel():  # never started: it will not run
                            del in_flight[future]
                            run.ledger.failed(item, stage, f"not started: nothing finished for {timeout:g} s")
                            if stage != "download":
                                run.kept[item] = (stage, given)
                    continue  # what is running goes on: wait for it and record what it did
                for future in done:
                    stage, item, given, generation = in_flight.pop(future)
                    try:
                        value = future.result()
                    except BrokenProcessPool as exc:
                        analysers.replace(generation)
                        if tries[item] < attempts and not run.stalled:
                            run.ledger.retried(item, stage, _died(exc, tries[item]) + "; again in a fresh pool")
                            start_analysis(item, given)
                        else:
                            run.ledger.failed(item, stage, _died(exc, tries[item]))
                            run.kept[item] = (stage, given)
                        continue
                    except Exception as exc:
                        run.ledger.failed(item, stage, _reason(exc))
                        if stage != "download":
                            run.kept[item] = (stage, given)  # the work done so far is not lost
                        continue
                    if stage == "save":
                        run.ledger.saved(item, value)
                        run.first_saved = run.first_saved or clock.lap()
                    elif run.stalled:
                        following = "analyse" if stage == "download" else "save"
                        run.ledger.failed(item, following, f"not started: the run had stopped after "
                                                           f"nothing finished for {timeout:g} s")
                        run.kept[item] = (following, value)
                    elif stage == "download":
                        start_analysis(item, value)
                    else:
                        in_flight[savers.submit(save, value)] = ("save", item, value, 0)
        finally:
            analysers.shutdown()
            run.restarts = analysers.restarts
    run.elapsed = clock.elapsed
    return run


def run_staged(inputs, saver, *, tracer=None, download=None, analyse=None, workers=None,
               attempts: int = 3, mp_context=None) -> Run:
    """All downloads (8 threads), then all analyses (``workers`` processes), then all saves (4 threads);
    returns a :class:`Run`. The same accounting and the same recovery from a broken process pool as
    :func:`run_streaming`: the items a broken pool took down are analysed again in a fresh pool."""
    from concurrent.futures import ThreadPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from .timing import stopwatch

    inputs, download, analyse, workers, attempts, mp_context = _check_common(
        inputs, saver, download, analyse, workers, attempts, mp_context)
    download, analyse, save = _traced(tracer, download, analyse, saver.save)
    run = Run(Ledger())
    with stopwatch() as clock:
        posts = {}
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="download") as pool:
            futures = {pool.submit(download, item): item for item in inputs}
            for future in as_completed(futures):
                item = futures[future]
                try:
                    posts[item] = future.result()
                except Exception as exc:
                    run.ledger.failed(item, "download", _reason(exc))
        results, todo = {}, dict(posts)
        analysers = _Analysers(workers, mp_context)
        try:
            for attempt in range(1, attempts + 1):
                futures = {}
                for item, post in todo.items():
                    futures[analysers.submit(analyse, post)] = item
                todo = {}
                for future, item in futures.items():
                    future, generation = future
                    try:
                        results[item] = future.result()
                    except BrokenProcessPool as exc:
                        analysers.replace(generation)
                        if attempt < attempts:
                            run.ledger.retried(item, "analyse", _died(exc, attempt) + "; again in a fresh pool")
                            todo[item] = posts[item]
                        else:
                            run.ledger.failed(item, "analyse", _died(exc, attempt))
                            run.kept[item] = ("analyse", posts[item])
                    except Exception as exc:
                        run.ledger.failed(item, "analyse", _reason(exc))
                        run.kept[item] = ("analyse", posts[item])
                if not todo:
                    break
        finally:
            analysers.shutdown()
            run.restarts = analysers.restarts
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="save") as pool:
            futures = {pool.submit(save, result): item for item, result in results.items()}
            for future in as_completed(futures):
                item = futures[future]
                try:
                    run.ledger.saved(item, future.result())
                    run.first_saved = run.first_saved or clock.lap()
                except Exception as exc:
                    run.ledger.failed(item, "save", _reason(exc))
                    run.kept[item] = ("save", results[item])
    run.elapsed = clock.elapsed
    return run


# ------------------------------------------------------------------------------------ pictures

def item_label(item, *args, **kwargs) -> str:
    """A timeline label for any stage's argument: a post or result dict gives its ``id``, anything
    else its ``str``. Module level, so traced tasks using it can go to a process pool."""
    if isinstance(item, dict) and "id" in item:
        return str(item["id"])
    return str(item)


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


#: Colours for posts: matplotlib's tab20 without its two reds, which would read as "failed".
_POST_COLOURS = [i for i in range(20) if i not in (6, 7)]
_FAILED = "#d62728"


def plot_pipeline(records, ax=None, title: str | None = None, span: float | None = None):
    """The pipeline's timeline: one row per worker, grouped by stage (:func:`stage_records`), one bar
    per task, coloured by post and labelled with its id.

    A task that raised (post 999's download: HTTP 404; a save on a full disk) is drawn white with a
    red hatch; a
    task too short to show as a bar (a save takes about a millisecond) is drawn as a diamond at its
    start. A legend says both. ``span``: the x range in seconds (default: the last task's end).
    Returns the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    records = stage_records(records)
    if ax is None:
        rows = len({r.worker for r in records})
        _, ax = plt.subplots(figsize=(9, 0.42 * max(rows, 1) + 1.6), layout="constrained")
    span = check_number("span", span, low=0.001) if span is not None else \
        (max((r.end for r in records), default=1.0) or 1.0)
    workers = sorted({r.worker for r in records})  # "1. download 01" ... "3. save 04"
    row = {w: i for i, w in enumerate(workers)}
    posts = sorted({r.task for r in records}, key=lambda t: (not t.isdigit(), int(t) if t.isdigit() else 0, t))
    cmap = plt.get_cmap("tab20")
    colour = {t: cmap(_POST_COLOURS[i % len(_POST_COLOURS)]) for i, t in enumerate(posts)}
    tiny = span / 150
    shown_tiny = shown_error = False
    for r in records:
        hatch = "///" if r.error else None
        shown_error |= bool(r.error)
        if r.duration < tiny:
            shown_tiny = True
            ax.plot(r.start, row[r.worker], marker="D", markersize=7, color=colour[r.task],
                    markeredgecolor="black", markeredgewidth=0.6, linestyle="none")
            continue
        ax.barh(row[r.worker], r.duration, left=r.start, height=0.7,
                color="white" if r.error else colour[r.task], hatch=hatch,
                edgecolor=_FAILED if r.error else "black", linewidth=0.8 if r.error else 0.5)
        if r.duration > span / 22:
            ax.text(r.start + r.duration / 2, row[r.worker], r.task, ha="center", va="center",
                    fontsize=9, clip_on=True)
    ax.set_yticks(range(len(workers)), workers)
    ax.set_ylim(len(workers) - 0.5, -0.5)
    ax.set_xlim(0, 1.02 * span)
    ax.set_xlabel("seconds since the run started")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    handles = []
    if shown_error:
        handles.append(Patch(facecolor="white", edgecolor=_FAILED, hatch="///",
                             label="red hatch: the task raised (its reason is in the ledger)"))
    if shown_tiny:
        handles.append(Line2D([], [], marker="D", color="grey", markeredgecolor="black", linestyle="none",
                              label="diamond: a task too short to see as a bar (a save: about 1 ms)"))
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=9, framealpha=0.95)
    return ax
