"""Checkers for notebook 06 (a real-world pipeline). Each returns a Verdict and never raises."""

from __future__ import annotations

import os
import tempfile
import time
from functools import partial

from . import Wrong, exercise, expect, run_with_timeout

__all__ = ["fetch_json", "download_all", "stream"]


def _session():
    from ..pipeline import make_session

    return make_session(pool_maxsize=16)


def _attempts(answer, api, url, limit, retries, backoff, timeout):
    """Call the answer once (giving up after ``limit`` s); return (value or None, exception or None,
    requests made, seconds)."""
    api.reset_stats()
    t0 = time.perf_counter()
    with _session() as session:
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
          hint="for attempt in range(retries + 1): try session.get(url, timeout=timeout); on a 503 or "
               "requests.Timeout sleep backoff * 2 ** attempt and go round again; on a 404 raise at once.",
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

        value, error, made, took = _attempts(answer, api, f"{base}/posts/2?fail=1", 10,
                                             retries=3, backoff=0.05, timeout=2)
        expect(error is not None, "a URL that always fails with HTTP 503 should end in an exception, "
                                  f"got {value!r:.60}.")
        expect(made == 4, f"with retries=3 an always-failing URL should be tried 4 times, it was tried "
                          f"{made} times.")
        expect(took >= 0.3, f"with backoff=0.05 the pauses should be 0.05 + 0.1 + 0.2 s, but all 4 tries "
                            f"took only {took:.2f} s: is the back-off doubling?")
        expect(str(error).strip() != "", "the exception should say why it gave up (its message is empty).")

        value, error, made, _ = _attempts(answer, api, f"{base}/posts/999", 10,
                                          retries=3, backoff=0.05, timeout=2)
        expect(error is not None, f"/posts/999 does not exist (HTTP 404), so it should raise, got {value!r:.60}.")
        expect(made == 1, f"a 404 will not get better: it should be tried once, it was tried {made} times.")

        value, error, made, took = _attempts(answer, api, f"{base}/slow?seconds=3", 10,
                                             retries=1, backoff=0.01, timeout=0.2)
        expect(error is not None, "a request slower than its timeout should end in an exception.")
        expect(took < 2, f"with timeout=0.2 and retries=1 it took {took:.1f} s: pass timeout= to session.get.")
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
          hint="futures = {pool.submit(fetch, i): i for i in ids}; for each future in as_completed: "
               "try ok[i] = future.result() except Exception as exc: failed[i] = f'{type(exc).__name__}: {exc}'.",
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
    expect(peak >= 4, f"at most {peak} downloads ran at the same time: use a pool of `workers` threads.")
    return f"All {len(ids)} ids accounted for: {len(ok)} downloaded, {len(failed)} failed with a reason; up to {peak} at once."


@exercise("06.3", "Your own streaming pipeline",
          hint="Open three pools together; keep a dict future -> (stage, id); loop on "
               "wait(in_flight, return_when=FIRST_COMPLETED) and submit each item's next stage.",
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
            sv_trace.wrap(saver.save, label=item_label), timeout=60)
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
