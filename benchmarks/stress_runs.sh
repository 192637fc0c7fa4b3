#!/usr/bin/env bash
# Does the suite pass on a busy machine, again and again?
#
#   benchmarks/stress_runs.sh [RUNS] [BUSY_RUNS] [pytest targets...]
#
# Runs the targets (default: every notebook, under nbval) RUNS times in a row on the machine as it
# is, then BUSY_RUNS times while other processes keep every core busy (one pure-Python busy loop per
# CPU, started here and always stopped by a trap). Prints one line per run and a pass/fail summary;
# for each failure, the test that failed and the claim or error it printed. Logs go to
# artifacts/stress/ (git-ignored). Exit status: 0 only if every run passed.
#
# Environment: PYTHON (default .venv/bin/python), HOGS (default: number of CPUs),
# FUTURESLAB_START_METHOD (passed through: stress one start method).
set -uo pipefail
cd "$(dirname "$0")/.."

RUNS="${1:-10}"
BUSY_RUNS="${2:-10}"
shift $(( $# >= 2 ? 2 : $# ))
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(notebooks)
PYTHON="${PYTHON:-.venv/bin/python}"
HOGS="${HOGS:-$("$PYTHON" -c 'import os; print(os.cpu_count() or 2)')}"
LOGS="artifacts/stress/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$LOGS"

HOG_PIDS=()
stop_hogs() {
    for pid in "${HOG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${HOG_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    HOG_PIDS=()
}
trap 'stop_hogs' EXIT
trap 'stop_hogs; exit 130' INT TERM

start_hogs() {
    for _ in $(seq "$HOGS"); do
        "$PYTHON" -c 'while True: pass' &
        HOG_PIDS+=("$!")
    done
}

passed=0; failed=0; busy_passed=0; busy_failed=0
declare -a SUMMARY

one_run() {  # $1 = label (quiet|busy), $2 = index
    local label="$1" i="$2" log="$LOGS/$1-$2.log" t0 t1 rc
    t0=$(date +%s.%N)
    "$PYTHON" -m pytest -q -p no:cacheprovider -rf "${TARGETS[@]}" >"$log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    local tail; tail=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed).* =+$' "$log" | tail -n1 | tr -d '=')
    printf '%-5s run %2d: %s in %6s s  %s\n' "$label" "$i" "$([ $rc = 0 ] && echo PASS || echo FAIL)" "$secs" "$tail"
    if [ $rc != 0 ]; then
        sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^FAILED ' | sed 's/^/          /' | head -n 10
        sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^[A-Za-z]*(Error|Failed|Exception): ' | sort -u | head -n 6 | sed 's/^/          /'
        SUMMARY+=("$label run $i: see $log")
    fi
    return $rc
}

echo "stress: ${TARGETS[*]}; $RUNS quiet runs, then $BUSY_RUNS with $HOGS busy loops; start method ${FUTURESLAB_START_METHOD:-default}; logs in $LOGS"
T0=$(date +%s)
for i in $(seq "$RUNS"); do
    if one_run quiet "$i"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
if [ "$BUSY_RUNS" -gt 0 ]; then
    start_hogs
    for i in $(seq "$BUSY_RUNS"); do
        if one_run busy "$i"; then busy_passed=$((busy_passed + 1)); else busy_failed=$((busy_failed + 1)); fi
    done
    stop_hogs
fi
T1=$(date +%s)
echo "stress summary: quiet $passed/$RUNS passed, busy ($HOGS hogs) $busy_passed/$BUSY_RUNS passed, $((T1 - T0)) s in all"
for line in "${SUMMARY[@]+"${SUMMARY[@]}"}"; do echo "  failed: $line"; done
[ $((failed + busy_failed)) = 0 ]
