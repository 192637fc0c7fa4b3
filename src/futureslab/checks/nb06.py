"""Checkers for notebook 06 (a real-world pipeline). Each returns a Verdict and never raises."""

from __future__ import annotations

import os
import tempfile
import time
from functools import partial

from . import Wrong, exercise, expect, run_with_timeout

__all__ = ["fetch_json", "download_all", "stream"]


def _session():
    """A ``requests.Session`` (set up like ``pipeline.make_session``) that notes when each request
    starts, so the checker can measure the pauses between tries."""
    import requests
    from requests.adapters import HTTPAdapter

    class TimedSession(requests.Session):
        def __init__(self):
            super().__init__()
            self.starts = []
            self.trust_env = False  # the checker's own API is on 127.0.0.1: no proxy
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
            self.mount("http://", adapter)
            self.mount("https://", adapter)

        def request(self, *args, **kwargs):
            self.starts.append(time.perf_counter())
            return super().request(*args, **kwargs)

    return TimedSession()


def _attempts(answer, api, url, limit, retries, backoff, timeout, session=None):
    """Call the answer once (giving up after ``limit`` s); return (value or None, exception or None,
    requests made, seconds)."""
    api.reset_stats()
    t0 = time.perf_counter()
    with session or _session() as session:
        try:
            value = run_with_timeout(answer, session, url, retries, backoff, timeout, timeout=limit)
            error = None
        except Wrong:
            raise
        except NotImplementedError:
            raise
        except Exception as exc:
            value, error = None, exc
    return value, error, api.stats()["requests"], time.perf_counter() - t0


@exercise("06.1", "A GET that retries",
          hint="Make one try a small step: GET, then decide from response.status_code (or the exception "
               "requests raised) whether this failure can get better. Only those are worth another try, "
               "after a pause that grows each time; give up with a message once the tries run out.",
          solution="futureslab.solutions.nb06:fetch_json")
def fetch_json(answer):
    from ..data import POSTS
    from ..server import LocalAPI

    with LocalAPI(latency=0.01) as api:
        base = api.url
        value, error, _, _ = _attempts(answer, api, f"{base}/posts/1", 10,
                                       retries=2, backoff=0.01, timeout=2)
        expect(error is None, f"a plain GET of /posts/1 raised {type(error).__name__}: {error}.")
        expect(value == POSTS[0], f"/posts/1 should give post 1 as a dict, got {value!r:.80}.")

        timed = _session()
        value, error, made, took = _attempts(answer, api, f"{base}/posts/2?fail=1", 10,
                                             retries=3, backoff=0.1, timeout=2, session=timed)
        expect(error is not None, "a URL that always fails with HTTP 503 should end in an exception, "
                                  f"got {value!r:.60}.")
        expect(made == 4, f"with retries=3 an always-failing URL should be tried 4 times, it was tried "
                          f"{made} times.")
        expect(str(error).strip() != "", "the exception should say why it gave up (its message is empty).")
        starts = timed.starts
        expect(len(starts) == made, f"the server saw {made} requests but only {len(starts)} went through the "
                                    f"`session` you were given: GET with session.get(...), so connections "
                                    f"are reused, rather than requests.get(...).")
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        if len(gaps) == 3:
            said = ", ".join(f"{g:.2f}" for g in gaps)
            # A pause can only come out longer than asked (a busy machine), never shorter.
            expect(gaps[0] >= 0.095 and gaps[1] >= 0.19 and gaps[2] >= 0.38,
                   f"with backoff=0.1 the pauses should double: about 0.1, 0.2, 0.4 s; yours were {said} s.")
            expect(gaps[0] < 0.19, f"the first pause should be about backoff (0.1 s), yours was {gaps[0]:.2f} s "
                                   f"(pauses between tries: {said} s).")

        value, error, made, _ = _attempts(answer, api, f"{base}/posts/999", 10,
                                          retries=3, backoff=0.05, timeout=2)
        expect(error is not None, f"/posts/999 does not exist (HTTP 404), so it should raise, got {value!r:.60}.")
        expect(made == 1, f"a 404 will not get better: it should be tried once, it was tried {made} times.")

        value, error, made, took = _attempts(answer, api, f"{base}/slow?seconds=3", 10,
                                             retries=1, backoff=0.01, timeout=0.2)
        expect(took < 2, f"a server that sends nothing for 3 s kept your code waiting {took:.1f} s although "
                         f"timeout=0.2: pass timeout= to session.get, so a silent server is cut off.")
        expect(error is not None, "a server that sends nothing for longer than the timeout (twice, with "
                                  f"retries=1) should end in an exception, got {value!r:.60}.")
        expect(made == 2, f"a timeout should be retried: expected 2 tries, saw {made}.")

        api.reset_stats()
        ok = 0
        with _session() as session:
            for _ in range(6):
                try:
                    run_with_timeout(answer, session, f"{base}/flaky?rate=0.3", 12, 0.001, 2, timeout=10)
                    ok += 1
                except Wrong:
                    raise
                except Exception:
                    pass
        expect(ok == 6, f"only {ok} of 6 calls to an endpoint failing 30% of the time succeeded with "
                        f"12 retries: are HTTP 503 answers retried?")
    return "Retries 503s and timeouts with a doubling pause, gives up with a reason, never retries a 404."


def _download_for_check(post_id, base_url):
    from ..pipeline import get_with_retry

    return get_with_retry(f"{base_url}/posts/{post_id}", retries=0, timeout=5)


def _slow_first_download(post_id, base_url, slow_id=1, slow_seconds=2.0):
    from ..pipeline import get_with_retry

    latency = slow_seconds if post_id == slow_id else 0.02
    return get_with_retry(f"{base_url}/posts/{post_id}?latency={latency}", retries=0, timeout=5)


@exercise("06.2", "Download everything, lose nothing",
          hint="Remember which id each future belongs to, and read every future's result as it completes; "
               "a failure then raises right there, where you can catch it for that one id and go on.",
          solution="futureslab.solutions.nb06:download_all")
def download_all(answer):
    from ..data import POSTS
    from ..server import LocalAPI
    from ..trace import Tracer

    ids = list(range(1, 13)) + [998, 999]
    with LocalAPI(latency=0.1) as api, Tracer() as tracer:
        fetch = tracer.wrap(partial(_download_for_check, base_url=api.url))
        out = run_with_timeout(answer, ids, fetch, 8, timeout=20)
        peak = tracer.max_concurrency()
    expect(isinstance(out, tuple) and len(out) == 2, f"download_all should return (ok, failed), got {out!r:.80}.")
    ok, failed = out
    expect(isinstance(ok, dict) and isinstance(failed, dict), "ok and failed should both be dicts.")
    expect(not (ok.keys() & failed.keys()), f"ids in both ok and failed: {sorted(ok.keys() & failed.keys())}.")
    missing = set(ids) - ok.keys() - failed.keys()
    expect(not missing, f"these ids were lost (in neither ok nor failed): {sorted(missing)}.")
    expect(ok.keys() <= set(ids) and failed.keys() <= set(ids), "ok and failed hold ids that were not given.")
    expect(set(failed) == {998, 999}, f"posts 998 and 999 do not exist and should be in failed; failed has "
                                      f"{sorted(failed)}.")
    expect(all(ok[i] == POSTS[i - 1] for i in ok), "some results in ok are not what fetch returned.")
    expect(all(isinstance(r, str) and "404" in r for r in failed.values()),
           f"each reason should be a string with the exception's message (here HTTP 404), got {failed!r:.100}.")
    expect(all("FetchFailed" in r for r in failed.values()),
           f"each reason should also name the exception's type (here FetchFailed), got {failed!r:.100}.")
    expect(peak >= 4, f"at most {peak} downloads ran at the same time: use a pool of `workers` threads.")
    return f"All {len(ids)} ids accounted for: {len(ok)} downloaded, {len(failed)} failed with a reason; up to {peak} at once."


@exercise("06.3", "Your own streaming pipeline",
          hint="Keep all three pools open at once, and keep every future in flight together with its "
               "stage and id. Wait for whichever finishes first (section 3), then give that item its next "
               "stage; the loop ends when nothing is left in flight.",
          solution="futureslab.solutions.nb06:stream")
def stream(answer):
    from ..pipeline import Saver, analyse, item_label, tally
    from ..server import LocalAPI
    from ..trace import Tracer

    ids = list(range(1, 9)) + [999]
    with LocalAPI(latency=0.02) as api, Tracer() as dl_trace, Tracer() as an_trace, \
            Tracer() as sv_trace, tempfile.TemporaryDirectory(prefix="futureslab-check-") as folder:
        saver = Saver(folder)
        outcomes = run_with_timeout(
            answer, ids, dl_trace.wrap(partial(_slow_first_download, base_url=api.url)),
            an_trace.wrap(partial(analyse, rounds=2000), label=item_label),
            sv_trace.wrap(saver.save, label=item_label), timeout=40)
        files = saver.files()
    downloads, analyses, saves = dl_trace.records, an_trace.records, sv_trace.records
    expect(isinstance(outcomes, dict), f"stream should return a dict of id -> outcome, got {outcomes!r:.60}.")
    try:
        count = tally(ids, outcomes)
    except ValueError as exc:
        raise Wrong(f"every outcome should be ('saved', ...) or ('failed', reason): {exc}") from None
    expect(count["missing"] == 0, f"{count['missing']} ids have no outcome: every input must end saved or failed.")
    expect(count["unexpected"] == 0, "outcomes holds ids that were not given.")
    expect(outcomes.get(999, ("",))[0] == "failed", "post 999 does not exist: it should end as failed.")
    expect(count["saved"] == 8 and len(files) == 8,
           f"8 posts exist; {count['saved']} were reported saved and {len(files)} files written.")
    pid = os.getpid()
    expect(len(analyses) == 8 and all(r.pid != pid for r in analyses),
           f"{sum(r.pid != pid for r in analyses)} analyses ran in worker processes, expected 8: analyse "
           f"on a ProcessPoolExecutor.")
    slow_arrived = max((r.end + dl_trace.t0 for r in downloads if r.task == "1"), default=0.0)
    first_saved = min((r.start + sv_trace.t0 for r in saves), default=float("inf"))
    expect(first_saved < slow_arrived,
           "nothing was saved before the slow download finished: hand each item to the next stage as "
           "soon as it is ready instead of waiting for a whole stage.")
    return "Every id accounted for, analysis on processes, and items flowed on while the slow download waited."
