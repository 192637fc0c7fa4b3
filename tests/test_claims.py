"""The claims' yardstick and their three outcomes (futureslab.cores, futureslab.claims)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from futureslab.claims import (HELD, UNSHOWN, ClaimFailed, Room, claim, cpu_parallel,
                               overlap_parallel)
from futureslab.cores import LoadMeter, _cgroup_quota, granted_cores
from load_support import busy_outside


# --- the yardstick ----------------------------------------------------------------------------

def test_granted_cores_is_what_the_os_grants_this_process():
    g = granted_cores()
    assert 1 <= g.affinity <= g.machine
    assert 0 < g.cores <= g.affinity
    assert str(g.machine) in str(g)


@pytest.mark.skipif(shutil.which("taskset") is None or os.cpu_count() < 2,
                    reason="needs taskset and 2 CPUs")
def test_granted_cores_sees_taskset():
    code = "from futureslab.cores import granted_cores; g = granted_cores(); print(g.cores, g)"
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.split()[0] == "1.0", out
    assert "CPU affinity allows 1" in out


def _fake_cgroup(tmp_path, content: str):
    """A cgroup v2 tree shaped like this process's own, with cpu.max = content in its group."""
    with open("/proc/self/cgroup") as f:
        line = next((ln for ln in f.read().splitlines() if ln.startswith("0::")), None)
    if line is None:
        pytest.skip("this process is not in a cgroup v2 hierarchy")
    group = tmp_path / line.split(":", 2)[2].strip("/")
    group.mkdir(parents=True, exist_ok=True)
    (group / "cpu.max").write_text(content)
    return tmp_path


@pytest.mark.skipif(not os.path.exists("/proc/self/cgroup"), reason="Linux cgroups only")
@pytest.mark.parametrize("content, cores", [("150000 100000\n", 1.5), ("max 100000\n", None),
                                            ("50000 100000\n", 0.5)])
def test_cgroup_quota_is_read_from_cpu_max(tmp_path, content, cores):
    assert _cgroup_quota(str(_fake_cgroup(tmp_path, content))) == cores


def _busy_child(seconds: float):
    return subprocess.Popen([sys.executable, "-c",
                             f"import time\nt=time.time()\nwhile time.time()-t<{seconds}: pass"])


@pytest.mark.skipif(sys.platform != "linux", reason="starts a detached busy loop with sh")
def test_load_meter_counts_other_programs_not_our_children():
    child = _busy_child(1.5)
    try:
        time.sleep(0.2)
        with LoadMeter() as ours:
            time.sleep(0.8)
    finally:
        child.wait()
    busy_outside(1.5)
    time.sleep(0.2)
    with LoadMeter() as other:
        time.sleep(0.8)
    # one outside loop keeps about one core busy; our own busy child counts as ours, not theirs
    assert other.other >= 0.6 + ours.other / 2, (ours, other)
    assert ours.other < other.other


def test_load_meter_adds_windows():
    meter = LoadMeter()
    with meter:
        time.sleep(0.1)
    with meter:
        time.sleep(0.1)
    assert 0.18 < meter.seconds < 1.0


# --- three outcomes ---------------------------------------------------------------------------

def test_claim_holds(capsys):
    assert claim(True, "it held") == HELD
    assert capsys.readouterr().out == "\u2713 it held\n"


def test_claim_fails_with_the_numbers():
    with pytest.raises(ClaimFailed, match=r"did not hold.*speedup=0\.9"):
        claim(False, "it held", speedup=0.9)


def test_too_few_granted_cores_is_never_a_tick(capsys):
    room = Room(granted=1.0, other=0.0, detail="1 CPU granted")
    assert claim(True, "parallel", needs_cores=2, room=room) == UNSHOWN
    out = capsys.readouterr().out
    assert "\u2713" not in out and "cannot be shown right now" in out and "1 CPU granted" in out


def test_a_busy_machine_gives_no_tick_and_no_failure(capsys):
    busy = Room(granted=2.0, other=1.0)
    assert claim(False, "parallel", needs_cores=2, room=busy) == UNSHOWN
    assert "other programs kept 1.00 of the 2 cores busy" in capsys.readouterr().out
    # under load, numbers that pass prove nothing (noise beyond the margins): still no tick
    assert claim(True, "parallel", needs_cores=2, room=busy) == UNSHOWN
    assert "\u2713" not in capsys.readouterr().out
    # a little load (within the slack) still judges
    assert claim(True, "parallel", needs_cores=2, room=Room(granted=2.0, other=0.2)) == HELD


def test_a_quiet_machine_does_not_excuse_a_failure():
    with pytest.raises(ClaimFailed):
        claim(False, "parallel", needs_cores=2, room=Room(granted=2.0, other=0.1))


@pytest.mark.parametrize("bad, match", [(dict(text=""), "text"),
                                        (dict(needs_cores=2), "room must be a Room"),
                                        (dict(needs_cores=-1, room=Room(2)), "needs_cores")])
def test_claim_bad_arguments(bad, match):
    kwargs = dict(holds=True, text="x") | bad
    with pytest.raises((ValueError, TypeError), match=match):
        claim(**kwargs)


def test_cpu_parallel_bar():
    # 2 workers, 2 cores: 1.2x over sequential and 1.25x over the control
    assert cpu_parallel(1.0, 0.55, 1.0, 2, 2)[0]
    assert not cpu_parallel(1.0, 0.9, 1.0, 2, 2)[0]          # below 60% of the ideal
    assert not cpu_parallel(1.0, 0.8, 0.9, 2, 2)[0]          # 1.25x, but the control was almost as fast
    assert not cpu_parallel(1.0, 0.3, 1.0, 2, 1)[0]          # one core cannot show parallel work
    with pytest.raises(ValueError, match="workers"):
        cpu_parallel(1.0, 0.5, 1.0, 0, 2)


def test_cpu_parallel_needs_the_cores_kept_busy_when_it_is_told_them():
    """Speed ratios that pass (a noisy sequential run) do not make one busy core parallel: with
    ``cores_used`` the parallel run must keep BUSY * min(workers, granted) cores busy."""
    from futureslab.claims import BUSY, cpu_parallel

    assert cpu_parallel(1.0, 0.55, 0.95, 2, 2.0)[0]                       # ratios alone pass
    assert cpu_parallel(1.0, 0.55, 0.95, 2, 2.0, cores_used=1.9)[0]       # processes on two cores
    holds, facts = cpu_parallel(1.0, 0.55, 0.95, 2, 2.0, cores_used=1.0)  # threads under the GIL
    assert not holds and facts["cores_bar"] == BUSY * 2 and facts["cores_used"] == 1.0
    with pytest.raises(ValueError, match="cores_used"):
        cpu_parallel(1.0, 0.55, 0.95, 2, 2.0, cores_used=-1)


# --- the fourth case: the mechanism worked, the machine's cores slowed each other ------------------

def test_slowed_cores_needs_every_run_busy_and_a_real_control():
    from futureslab.claims import slowed_cores

    assert "1.90 cores busy" in slowed_cores([(1.9, 1.4)])                 # processes on two cores
    assert slowed_cores([(1.9, 1.4), (1.8, 1.4)]).startswith("the workers kept 1.90 and 1.80")
    assert slowed_cores([(1.0, 1.4)]) is None                              # threads, one CPU, a loop
    assert slowed_cores([(1.9, 1.4), (1.0, 1.4)]) is None                  # one run was not parallel
    assert slowed_cores([]) is None
    assert slowed_cores([(1.9, 1.4)], control=(1.0, 1.3)) is not None      # the control took turns
    assert slowed_cores([(1.9, 1.4)], control=(1.9, 1.3)) is None          # the control ran in parallel
    with pytest.raises(ValueError, match="cores_used"):
        slowed_cores([(-1, 1.4)])


def test_an_excuse_is_cannot_be_shown_only_when_the_claim_failed(capsys, tmp_path, monkeypatch):
    import json

    from futureslab.claims import LOG_ENV

    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    quiet = Room(granted=2.0, other=0.0)
    assert claim(False, "faster", needs_cores=2, room=quiet, excuse="cores slowed", cores_used=1.9) == UNSHOWN
    assert "cannot be shown right now: cores slowed" in capsys.readouterr().out
    assert claim(True, "faster", needs_cores=2, room=quiet, excuse="cores slowed") == HELD  # not used
    with pytest.raises(ClaimFailed):
        claim(False, "faster", needs_cores=2, room=quiet, excuse=None)
    with pytest.raises(TypeError, match="excuse"):
        claim(False, "faster", needs_cores=2, room=quiet, excuse=1)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["outcome"], e["excuse"]) for e in entries] == [("unshown", True), ("held", False), ("failed", False)]
    # load is reported as load, not as the excuse
    assert claim(False, "faster", needs_cores=2, room=Room(granted=2.0, other=1.0), excuse="cores slowed") == UNSHOWN
    assert "other programs kept" in capsys.readouterr().out
    assert json.loads(log.read_text().splitlines()[-1])["excuse"] is False


def _race(times, cores, granted=2.0):
    from futureslab.claims import Race

    race = Race(workers=2, times=dict(times), cores_used=dict(cores))
    race.room = Room(granted=granted, other=0.0)
    return race


def test_race_claim_parallel_excuses_slow_cores_only_with_a_real_control(capsys):
    slow = {"sequential": 1.0, "control": 1.0, "parallel": 0.9}  # 1.11x: below the 1.2x bar
    assert _race(slow, {"control": 1.0, "parallel": 1.9}).claim_parallel("parallel") == UNSHOWN
    assert "slowed each other" in capsys.readouterr().out
    with pytest.raises(ClaimFailed):  # one busy core: no parallelism, no excuse
        _race(slow, {"control": 1.0, "parallel": 1.0}).claim_parallel("parallel")
    with pytest.raises(ClaimFailed):  # the control computed in parallel too (GIL released)
        _race(slow, {"control": 1.9, "parallel": 1.9}).claim_parallel("parallel")
    one_worker = _race(slow, {"control": 1.0, "parallel": 1.0})
    one_worker.workers = 1  # one busy core is all one worker can keep busy: no parallel claim, no excuse
    with pytest.raises(ClaimFailed):
        one_worker.claim_parallel("parallel")


def _timelines(pids, slice_s, at_once=True):
    """Made-up tracer records: 4 tasks of ``slice_s`` s on workers with ``pids`` (2 at a time or one by one)."""
    from futureslab.claims import _Frozen
    from futureslab.trace import TaskRecord

    recs = []
    for i in range(4):
        start = (i // 2) * slice_s if at_once else i * slice_s
        pid = pids[i % len(pids)]
        recs.append(TaskRecord(str(i), f"w{pid}", pid, "MainThread", start, start + slice_s))
    return _Frozen(recs)


def test_race_claim_overlap_excuses_slowed_cores_only_for_processes_running_at_once(capsys):
    """The overlap claim's third outcome: stretched slices on busy cores are "cannot be shown", and
    only when two processes ran two tasks at once; one process, one task at a time or one busy core
    keep the claim failing."""
    sequential = _timelines([1], 0.10, at_once=False)

    def race(pids, slice_s, cores, at_once=True):
        r = _race({"sequential": 1.0, "control": 1.0, "parallel": 0.5}, {"control": 1.0, "parallel": cores})
        r.tracers = {"sequential": sequential, "parallel": _timelines(pids, slice_s, at_once)}
        return r

    assert race([11, 12], 0.12, 1.95).claim_overlap("overlap") == HELD  # 1.2x stretch: holds
    capsys.readouterr()
    assert race([11, 12], 0.20, 1.95).claim_overlap("overlap") == UNSHOWN  # 2x stretch on 2 busy cores
    assert "slowed each other" in capsys.readouterr().out
    with pytest.raises(ClaimFailed):  # 2x stretch on one busy core: one shared CPU, no excuse
        race([11, 12], 0.20, 1.0).claim_overlap("overlap")
    with pytest.raises(ClaimFailed):  # one process (threads): no excuse, whatever the cores say
        race([11], 0.20, 1.95).claim_overlap("overlap")
    with pytest.raises(ClaimFailed):  # two processes, one task at a time: no excuse
        race([11, 12], 0.20, 1.95, at_once=False).claim_overlap("overlap")


def test_busy_cores_tells_one_busy_core_from_two():
    """BusyCores, the CPU-time witness of cpu_race, process_sweep and 09's threads claim: threads on
    pure-Python work under the GIL keep about one core busy, two worker processes about two."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    from futureslab.cores import BusyCores
    from futureslab.lesson01 import gil_enabled
    from futureslab.tasks import count_primes_in, prime_ranges
    from futureslab.timing import warm_up

    work = prime_ranges(400_000, chunks=4)
    two_cores = (os.cpu_count() or 1) >= 2 and len(os.sched_getaffinity(0)) >= 2
    for _ in range(3):  # other programs' load takes cores from our processes: measure again then
        load = LoadMeter()
        with ThreadPoolExecutor(2) as threads, BusyCores() as on_threads:
            list(threads.map(count_primes_in, work))
        with ProcessPoolExecutor(2) as pool:
            warm_up(pool, 2)
            with load, BusyCores() as on_processes:
                list(pool.map(count_primes_in, work))
        if load.other <= 0.3:
            break
    assert on_threads.seconds > 0 and on_processes.seconds > 0
    if gil_enabled():
        assert on_threads.cores < 1.3, on_threads.cores
    if two_cores:
        if load.other > 0.3:  # the same honest third outcome as the claims: said, with the evidence
            pytest.skip(f"other programs kept {load.other:.2f} cores busy in 3 tries: two cores could not be shown")
        assert on_processes.cores > 1.3 or on_processes.cores > on_threads.cores + 0.3, on_processes.cores


# --- measuring again while other programs are busy ---------------------------------------------

def test_quiet_applies_claims_own_room_test_and_names_bad_arguments():
    from futureslab.claims import SLACK, quiet

    assert quiet(Room(granted=2, other=SLACK), 2)               # 1.7 free of the 1.7 needed
    assert not quiet(Room(granted=2, other=SLACK + 0.01), 2)
    assert quiet(Room(granted=2, other=1.5), 0.5)               # a claim that needs half a core
    assert quiet(Room(granted=1, other=1.0), 2)                 # too few granted: measuring again cannot help
    for room, needs, word in ((None, 2, "room"), (Room(2), -1, "needs_cores"), (Room(2), "2", "needs_cores")):
        with pytest.raises((TypeError, ValueError), match=word):
            quiet(room, needs)


@pytest.mark.skipif(sys.platform != "linux", reason="starts detached busy loops with sh and nice")
def test_cpu_race_measures_again_while_other_programs_are_busy_even_when_its_bars_hold():
    """Low-priority busy loops of other programs take only the CPU the race leaves idle: processes
    still compute in parallel at full speed, so the bars hold, but the meter sees the machine busy.
    A race that stopped as soon as its bars held would stop after ``rounds``; it must measure on
    until the room is quiet or its budget is spent, and then say "cannot be shown"."""
    from futureslab.claims import cpu_race, quiet
    from futureslab.tasks import count_primes_in, prime_ranges
    from load_support import stop

    slices = prime_ranges(1_240_000, 4, start=1_200_000)  # a round takes about half a second here

    if granted_cores().cores < 2:
        pytest.skip(f"needs 2 granted cores, this run has {granted_cores().cores:g}")
    hogs = [busy_outside(12.0, nice=19) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        t0 = time.perf_counter()
        race = cpu_race(count_primes_in, slices, 2, rounds=2, budget=2.5)
        elapsed = time.perf_counter() - t0
    finally:
        for pid in hogs:
            stop(pid)
    assert not quiet(race.room, 2), race.room          # the nice loops took the idle cores
    assert race.rounds > 2 and elapsed >= 2.5, (race.rounds, elapsed, race.parallel())
    assert race.claim_parallel("processes computed in parallel") == UNSHOWN
    # and the same race with no loops of ours: it stops as soon as its bars hold and the room is quiet
    # (a race that always spent its budget fails here), and measures on only while it is not. Other
    # programs may be busy now too (a CI machine, a second test run): then it must have measured on.
    t0 = time.perf_counter()
    calm = cpu_race(count_primes_in, slices, 2, rounds=2, budget=20.0)
    calm_s = time.perf_counter() - t0
    if calm.settled() and quiet(calm.room, 2):
        assert calm_s < 20, (calm.rounds, calm_s, calm.room)
    else:
        print(f"other programs were busy ({calm.room}): the calm race measured on, as it must")
        assert calm_s >= 20, (calm.rounds, calm_s, calm.room)
