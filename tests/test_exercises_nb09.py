"""Every checker of notebook 09 on its worked solution, on the untouched starter, on the wrong answers
learners write, and on bad input (one clear verdict within the time limit, nothing left running)."""

import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pytest

import checker_support as bad
from futureslab.checks import load_solution
from futureslab.checks import nb09 as check
from futureslab.tasks import count_primes_in, fetch_post, sleep_then_return

LIMIT = check.TIME_LIMIT + 5  # the verdict, including giving up on a hung answer

pytestmark = pytest.mark.filterwarnings("ignore:Port .* is already in use")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A cluster shaped like the notebook's (2 workers of 1 thread), in threads to start fast. Dask's
    scratch space and its lock files go into a temporary folder (not the system's temp dir)."""
    distributed = pytest.importorskip("distributed")
    import dask

    scratch = str(tmp_path_factory.mktemp("dask"))
    with dask.config.set({"temporary-directory": scratch}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                     dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            distributed.Client(cluster) as c:
        yield c


# ---- wrong answers learners write

def first_n_without_cancel(ids, n):
    with ThreadPoolExecutor(max_workers=4) as pool:  # `with` waits for all 40 requests
        futures = [pool.submit(fetch_post, i) for i in ids]
        results = []
        for f in as_completed(futures):
            results.append(f.result())
            if len(results) == n:
                break
    return results


def first_n_one_thread_per_id(ids, n):
    pool = ThreadPoolExecutor(max_workers=len(ids))  # nothing queued: nothing to cancel
    try:
        futures = [pool.submit(fetch_post, i) for i in ids]
        return [f.result() for f in list(as_completed(futures))[:n]]
    finally:
        pool.shutdown(cancel_futures=True)


def first_n_sequential(ids, n):
    return [fetch_post(i) for i in ids[:n]]


def first_n_returns_futures(ids, n):
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        futures = [pool.submit(fetch_post, i) for i in ids]
        return [f for f, _ in zip(as_completed(futures), range(n))]
    finally:
        pool.shutdown(cancel_futures=True)


def first_n_made_up(ids, n):
    return [{"id": i} for i in ids[:n]]


def total_in_the_caller(executor, ranges, task=count_primes_in):
    return sum(task(r) for r in ranges)


def total_one_at_a_time(executor, ranges, task=count_primes_in):
    return sum(executor.submit(task, r).result() for r in ranges)


def total_ignores_task(executor, ranges, task=count_primes_in):
    return sum(f.result() for f in as_completed([executor.submit(count_primes_in, r) for r in ranges]))


def total_returns_future(executor, ranges, task=count_primes_in):
    return executor.submit(sum, [task(r) for r in ranges])


def total_twice(executor, ranges, task=count_primes_in):
    list(executor.map(task, ranges))
    return sum(f.result() for f in as_completed([executor.submit(task, r) for r in ranges]))


def total_constant(executor, ranges, task=count_primes_in):
    return 17984


def in_submission_order(client, delays):
    return client.gather([client.submit(sleep_then_return, d, d) for d in delays])


def in_a_loop_over_futures(client, delays):
    futures = [client.submit(sleep_then_return, d, d) for d in delays]
    return [f.result() for f in futures]


def sorted_results(client, delays):
    return sorted(client.gather([client.submit(sleep_then_return, d, d) for d in delays]))


def one_after_another(client, delays):
    return [client.submit(sleep_then_return, d, d).result() for d in delays]


def made_up_order(client, delays):
    return sorted(delays)


def standard_as_completed(client, delays):  # fails: Dask futures are not concurrent.futures futures
    return [f.result() for f in as_completed([client.submit(sleep_then_return, d, d) for d in delays])]


def returns_dask_futures(client, delays):
    from distributed import as_completed as dask_as_completed
    return list(dask_as_completed([client.submit(sleep_then_return, d, d) for d in delays]))


# ---- tests

def test_solutions_pass(client):
    assert check.first_n_then_stop(load_solution("09.1")).solved
    assert check.total_primes(load_solution("09.2")).solved
    verdict = check.fastest_first(load_solution("09.3"), client)
    assert verdict.solved, str(verdict)


def test_starters_are_not_solved_yet(client):
    assert check.first_n_then_stop(bad.starter).status == "not solved yet"
    assert check.total_primes(bad.starter).status == "not solved yet"
    assert check.fastest_first(bad.starter, client).status == "not solved yet"


@pytest.mark.parametrize("answer, why", [
    (first_n_without_cancel, "queued ones still ran"),
    (first_n_one_thread_per_id, "use a pool of 4 threads"),
    (first_n_sequential, "one at a time"),
    (first_n_returns_futures, "you returned futures"),
    (first_n_made_up, "no request reached the server"),
])
def test_first_n_wrong_answers_say_why(answer, why):
    verdict = check.first_n_then_stop(answer)
    assert not verdict and why in verdict.message, str(verdict)


@pytest.mark.parametrize("answer, why", [
    (total_in_the_caller, "calling thread"),
    (total_one_at_a_time, "one after another"),
    (total_ignores_task, "never called"),
    (total_returns_future, "you returned a future"),
    (total_twice, "run it once per range"),
    (total_constant, "never called"),
])
def test_total_primes_wrong_answers_say_why(answer, why):
    verdict = check.total_primes(answer)
    assert not verdict and why in verdict.message, str(verdict)


@pytest.mark.parametrize("answer, why", [
    (in_submission_order, "in the order you submitted them"),
    (in_a_loop_over_futures, "in the order you submitted them"),
    (sorted_results, "sorting the results"),
    (one_after_another, "one after another"),
    (made_up_order, "before the"),
    (standard_as_completed, "your code raised AttributeError"),
    (returns_dask_futures, "you returned futures"),
])
def test_fastest_first_wrong_answers_say_why(client, answer, why):
    verdict = check.fastest_first(answer, client)
    assert not verdict and why in verdict.message, str(verdict)


def test_fastest_first_needs_a_client():
    verdict = check.fastest_first(load_solution("09.3"), None)
    assert not verdict and "pass the notebook's Dask client" in verdict.message, str(verdict)


BAD_INPUTS = [
    (None, "expected a function, got None"),
    (lambda *a, **k: 42, "42"),
    (bad.raises, "your code raised KeyError: 'boom'"),
    (bad.returns_none, "None"),
    (bad.generator, "a generator"),
    (bad.sleeps_30, "did not finish within"),
    (bad.starter, "Replace `raise NotImplementedError`"),
]


@pytest.mark.parametrize("answer, why", BAD_INPUTS)
@pytest.mark.parametrize("name", ["first_n_then_stop", "total_primes"])
def test_bad_input_gives_one_clear_verdict(name, answer, why):
    verdict = bad.run_bad_input(getattr(check, name), answer, limit=LIMIT)
    assert why in verdict.message, str(verdict)


@pytest.mark.parametrize("answer, why", BAD_INPUTS)
def test_bad_input_on_the_cluster_gives_one_clear_verdict(client, answer, why):
    verdict = bad.run_bad_input(lambda a: check.fastest_first(a, client), answer, limit=LIMIT)
    assert why in verdict.message, str(verdict)


# ---- the notebook's Dask cluster: reachable by nobody else on the machine, and leaves nothing behind

NOTEBOOK_SOURCE = Path(__file__).resolve().parent.parent / "src" / "notebooks" / "09-newer-pythons-and-clusters.py"

STRANGER = '''
"""Another user of this machine tries to use a Dask scheduler: python stranger.py ADDRESS."""
import os
import sys

from distributed import Client, Security

own = Security.temporary()  # a certificate of the stranger's own making
for warm_up, security in (("tcp://127.0.0.1:9", None), ("tls://127.0.0.1:9", own)):
    try:  # load every module a connection needs while they can still be read (as root)
        Client(warm_up, security=security, timeout=0.5)
    except Exception:
        pass
if os.geteuid() == 0:  # become the user "nobody"
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    import tempfile  # TLS with in-memory certificates writes them to a temporary folder for a moment:
    tempfile.tempdir = next(d for d in ("/dev/shm", "/tmp", "/var/tmp") if os.access(d, os.W_OK))
print("stranger uid", os.getuid(), flush=True)
address = sys.argv[1]
attempts = [(address.replace("tls://", "tcp://"), None)]
if address.startswith("tls://"):
    attempts.append((address, own))
for target, security in attempts:
    try:
        with Client(target, security=security, timeout=10) as client:
            print("connected, ran code as uid", client.submit(os.getuid, pure=False).result(timeout=20), flush=True)
    except Exception as exc:
        print("refused", type(exc).__name__, flush=True)
'''


def notebook_cell(marker: str) -> str:
    """The source of the notebook's code cell that contains ``marker``."""
    cells = re.split(r"^# %%.*$", NOTEBOOK_SOURCE.read_text(encoding="utf-8"), flags=re.M)
    found = [c for c in cells if marker in c and not c.lstrip().startswith("# ")]
    assert len(found) == 1, f"expected one cell with {marker!r} in {NOTEBOOK_SOURCE.name}, found {len(found)}"
    return found[0]


@pytest.fixture
def notebook_cluster(tmp_path, monkeypatch):
    """The cluster exactly as notebook 09's set-up cell starts it (that cell's code, executed), with the
    temporary folder pointed at an empty ``tmp_path / "tmp"``."""
    pytest.importorskip("cryptography")  # Security.temporary() needs it
    from futureslab import lesson09

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    ns = {"lesson09": lesson09}
    exec(notebook_cell("security = Security.temporary()"), ns)
    try:
        yield ns, temp
    finally:
        ns["lab"].close()


def stranger_attempts(tmp_path, address: str) -> list:
    script = tmp_path / "stranger.py"
    script.write_text(STRANGER, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), address], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines and lines[0].startswith("stranger uid"), done.stderr[-2000:]
    if os.geteuid() == 0:
        assert lines[0] == "stranger uid 65534", lines  # really another user
    return lines[1:]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX users and setuid")
def test_notebook_cluster_refuses_another_user(notebook_cluster, tmp_path):
    ns, _ = notebook_cluster
    address = ns["lab"].cluster.scheduler_address
    assert address.startswith("tls://127.0.0.1:"), address
    attempts = stranger_attempts(tmp_path, address)
    assert attempts == ["refused CommClosedError", "refused FatalCommClosedError"], attempts
    # and the notebook's own client, which has the certificate, still works
    assert ns["client"].submit(sum, [1, 2], pure=False).result(timeout=20) == 3


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX users and setuid")
def test_an_open_cluster_runs_a_strangers_code(tmp_path):
    """The control: the same stranger against a cluster without TLS connects and runs code as us, so
    the refusal above is the security's doing, not a broken stranger."""
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"temporary-directory": str(tmp_path)}), \
            distributed.LocalCluster(n_workers=1, processes=False, protocol="tcp", host="127.0.0.1",
                                     dashboard_address=None, silence_logs=logging.CRITICAL) as cluster:
        attempts = stranger_attempts(tmp_path, cluster.scheduler_address)
    assert attempts == [f"connected, ran code as uid {os.getuid()}"], attempts


def test_notebook_cluster_leaves_no_files(notebook_cluster):
    ns, temp = notebook_cluster
    client = ns["client"]
    assert client.submit(sum, [1, 2], pure=False).result(timeout=20) == 3
    assert sorted(os.listdir(temp)) == [os.path.basename(ns["lab"].scratch.name)]  # all of Dask's files are in there
    assert ns["lab"].close() == []
    assert os.listdir(temp) == []  # no dask-scratch-space, no global.lock / purge.lock


def test_task_stream_counts_tasks_computed_at_once():
    """09.3's witness of "submitted together": the workers' compute intervals, not the wall time."""
    from futureslab.checks.nb09 import _TaskStream

    def task(start, stop, action="compute"):
        return {"startstops": [{"action": action, "start": start, "stop": stop}]}

    stream = _TaskStream(None)
    assert stream.most_at_once() is None  # nothing recorded: the checker falls back on wall time
    stream.data = [task(0.0, 0.2), task(0.2, 0.3), task(0.3, 0.45)]  # back to back: one at a time
    assert stream.most_at_once() == 1
    stream.data = [task(0.0, 0.45), task(0.01, 0.06), task(0.06, 0.36), task(0.36, 0.51)]
    assert stream.most_at_once() == 2
    stream.data = [task(0.0, 0.2), task(0.1, 0.3, action="transfer")]  # only computing counts
    assert stream.most_at_once() == 1
