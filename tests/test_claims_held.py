"""On a quiet machine every claim of every notebook holds: no "cannot be shown right now" excuses.

Under nbval a claim that "cannot be shown right now" compares equal to one that held (see the
[claims] rule of nbval-sanitize.cfg), so a busy machine gives no false failure. That would also hide
a yardstick that excuses itself on a quiet machine. So every claim is logged (FUTURESLAB_CLAIMS_LOG,
set by conftest.py) and, while the notebooks run, conftest's LoadWatch measures from *outside* the
kernels how much CPU other programs use (the test run's own process included: to a kernel, the
notebook client is another program). This test, run after every notebook, fails on any claim that
was "cannot be shown" while the watcher saw the machine quiet around it, or that was excused for
too few granted cores on a machine that grants enough.
"""

from __future__ import annotations

import json
import os

import pytest

from futureslab.cores import granted_cores

QUIET = 0.25  # other programs' cores, as the watcher measured them, below which the machine is quiet
AROUND = 4.0  # seconds before a claim's line in which its measurement ran


def _entries(since: float):
    path = os.environ.get("FUTURESLAB_CLAIMS_LOG", "")
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        entries = [json.loads(line) for line in f if line.strip()]
    # this run's claims, made in notebook kernels (unit tests in this process judge made-up rooms)
    return [e for e in entries if e["time"] >= since and e.get("pid") != os.getpid()]


def _notebooks_ran(session) -> bool:
    return any(str(getattr(item, "fspath", "")).endswith(".ipynb") for item in session.items)


def _unbacked_excuse(measured: dict) -> str | None:
    """An excused claim must log the CPU time that backs it: every ``cores_used*`` at least its
    ``cores_bar*`` (futureslab.claims.slowed_cores). Returns what is missing, or None."""
    used = {k[len("cores_used"):]: v for k, v in measured.items() if k.startswith("cores_used")}
    if not used:
        return "excused without any CPU time logged"
    for suffix, value in used.items():
        bar = measured.get("cores_bar" + suffix)
        if not isinstance(value, (int, float)) or not isinstance(bar, (int, float)) or value < bar:
            return f"excused although cores_used{suffix}={value!r} is below its bar {bar!r}"
    return None


def test_unbacked_excuse():
    assert _unbacked_excuse({"cores_used_2": 1.9, "cores_bar_2": 1.4}) is None
    assert _unbacked_excuse({"cores_used": 1.0, "cores_bar": 1.4})
    assert _unbacked_excuse({"speedup": 1.1})
    assert _unbacked_excuse({"cores_used_2": 1.9})


@pytest.mark.after_notebooks
def test_no_claim_was_excused_on_a_quiet_machine(request):
    if not _notebooks_ran(request.session):
        pytest.skip("no notebook ran in this session: there are no claims to judge")
    entries = _entries(request.config._futureslab_started)
    assert entries, ("notebooks ran but no claim was logged: futureslab.claims did not see "
                     "FUTURESLAB_CLAIMS_LOG (set by conftest.py)")
    samples = request.config._futureslab_watch.samples
    granted = granted_cores().cores
    false_excuses = []
    for e in entries:
        if e["outcome"] != "unshown":
            continue
        if e.get("excuse"):  # not load: "the cores slowed each other", on CPU time it measured
            weak = _unbacked_excuse(e["measured"])
            if weak:
                false_excuses.append((e["text"], weak))
            continue
        needs = e["needs"] or 0
        if e["granted"] is not None and e["granted"] < needs:
            if granted >= needs:  # the kernel was told fewer cores than this process has
                false_excuses.append((e["text"], f"said {e['granted']} granted, the run has {granted:g}"))
            continue
        near = [other for t, other in samples if e["time"] - AROUND <= t <= e["time"] + 1.5]
        if near and max(near) < QUIET:
            false_excuses.append((e["text"], f"excused by other programs' load {e['other']}, but "
                                             f"the watcher measured at most {max(near):.2f} cores"))
    counts = {k: sum(e["outcome"] == k for e in entries) for k in ("held", "unshown", "failed")}
    runner = request.config._futureslab_watch.runner
    print(f"claims judged: {counts}; watcher: {len(samples)} samples, "
          f"busiest {max((o for _, o in samples), default=0):.2f} cores (of which this test run, outside "
          f"the kernels: at most {max((o for _, o in runner), default=0):.2f})")
    assert not false_excuses, ("claims said 'cannot be shown' on a quiet machine:\n"
                               + "\n".join(f"- {t}: {why}" for t, why in false_excuses))
    busy = [e for e in entries if e["outcome"] == "unshown"]
    if busy and os.environ.get("FUTURESLAB_REQUIRE_ALL_CLAIMS"):
        pytest.fail(f"{len(busy)} claims could not be shown (machine busy) and "
                    f"FUTURESLAB_REQUIRE_ALL_CLAIMS is set: " + "; ".join(e["text"] for e in busy))
