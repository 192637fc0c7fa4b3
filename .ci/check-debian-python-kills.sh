#!/usr/bin/env bash
# Check that .ci/debian-python.sh leaves nothing running when `timeout` ends it: a process started inside
# the root in a session of its own (as a Jupyter kernel or a cluster's worker is) must die with the run.
# Run by .ci/run after the Debian-root steps (the root and its 3.14 venv exist by then; ~15 s).
# Without the PID namespace (unshare --pid --kill-child in debian-python.sh) it fails: the process is left.
set -uo pipefail
cd "$(dirname "$0")/.."

marker="sleep 3133.$$"  # a command line no other process has
out="$(timeout -s "${1:-TERM}" 20 bash .ci/debian-python.sh 3.14 python -c "
import subprocess, time
subprocess.Popen('$marker'.split(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print('started', flush=True)
time.sleep(600)" </dev/null)"
status=$?
[ "$status" = 124 ] || [ "$status" = 137 ] || { echo "check-debian-python-kills: the run ended with $status, not by timeout" >&2; exit 1; }
# a run that timed out before the process was started would leave nothing and prove nothing
[ "$out" = started ] || { echo "check-debian-python-kills: the process was never started (output: '$out'): nothing checked" >&2; exit 1; }
sleep 2
left="$(pgrep -fx "$marker" || true)"
if [ -n "$left" ]; then
    echo "check-debian-python-kills: FAILED: '$marker' (pid $left) outlived the timed-out run" >&2
    kill $left 2>/dev/null
    exit 1
fi
echo "check-debian-python-kills: nothing left running after timeout -s ${1:-TERM} ended the run"
