#!/usr/bin/env bash
# Run the course's tests (or any command) on a Python that Debian's testing suite ships (3.14, 3.15).
#
#   .ci/debian-python.sh 3.14                      # the suite, browser test aside: python -m pytest -m "not browser"
#   .ci/debian-python.sh 3.15 python -m pytest -m "not browser" notebooks/09-newer-pythons-and-clusters.ipynb
#   FUTURESLAB_START_METHOD=spawn .ci/debian-python.sh 3.14
#   .ci/debian-python.sh 3.14 --check              # only: can this Python be had? (builds the root if needed)
#
# How: a minimal Debian-testing root (codename forky) made ONCE with debootstrap and cached in
# $FUTURESLAB_DEBIAN_ROOT (default /var/cache/futureslab/forky, ~340 MB; delete it to rebuild). Each run
# enters a private mount namespace and a PID namespace (unshare -m --pid --kill-child: nothing it starts
# outlives the run, even under `timeout`), mounts /proc, /dev, /sys, a fresh /tmp and this project
# (bind-mounted at /src/project) inside the root, and chroots into it with a clean environment. The
# mounts are removed on exit (trap), and being private they are never visible outside the run, so
# several runs can share the root at once. Each Python gets its own venv in the root
# (/opt/venv-3.14, ...: `pip install -e ".[test]"` of this project, redone when its dependencies change).
#
# Needs root (debootstrap, mount, chroot) and Debian's package mirror. Exit status: the command's, or
# 90 when the Python cannot be had (printed as MISSING; also when not run as root), 2 on wrong usage.
set -euo pipefail

MISSING=90
ROOT="${FUTURESLAB_DEBIAN_ROOT:-/var/cache/futureslab/forky}"
SUITE="${FUTURESLAB_DEBIAN_SUITE:-forky}"
PROJECT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGES="make util-linux iproute2 ca-certificates"

say() { echo "debian-python: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
missing() { say "MISSING: Python $VERSION: $*"; echo "MISSING: Python $VERSION"; exit "$MISSING"; }

# --- inside the private mount namespace (the script re-executes itself under unshare) --------------
if [ "${_FUTURESLAB_IN_NS:-}" = 1 ]; then
    unset _FUTURESLAB_IN_NS
    VERSION="$1"; shift
    mounted=()
    cleanup() {
        local i
        for (( i=${#mounted[@]}-1; i>=0; i-- )); do umount -R "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done
    }
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mount --make-rprivate / 2>/dev/null || true
    mount -t proc proc "$ROOT/proc";                                  mounted+=("$ROOT/proc")
    mount --rbind /dev "$ROOT/dev"; mount --make-rslave "$ROOT/dev";  mounted+=("$ROOT/dev")
    mount --rbind /sys "$ROOT/sys"; mount --make-rslave "$ROOT/sys";  mounted+=("$ROOT/sys")
    mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp";                    mounted+=("$ROOT/tmp")
    mkdir -p "$ROOT/src/project"
    mount --bind "$PROJECT" "$ROOT/src/project";                      mounted+=("$ROOT/src/project")
    # A clean environment: the host's pip settings (PIP_FIND_LINKS, pip.conf) point at folders the
    # root does not have; TMPDIR must be a folder inside the root (conftest.py makes its own in it).
    envs=(PATH="/opt/venv-$VERSION/bin:/usr/local/bin:/usr/bin:/bin" HOME=/root TMPDIR=/tmp
          LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM="${TERM:-dumb}")
    while IFS='=' read -r name _; do
        case "$name" in
            # host paths mean nothing inside the root: a claims log set outside (benchmarks set it
            # to read a whole run's claims) would point the doctor and every kernel at a folder
            # the root does not have; conftest.py makes its own log inside.
            FUTURESLAB_CLAIMS_LOG|FUTURESLAB_DEBIAN_ROOT|FUTURESLAB_DEBIAN_SUITE) ;;
            FUTURESLAB_*|CI|PYTEST_ADDOPTS|PIP_DEFAULT_TIMEOUT|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY)
                envs+=("$name=${!name}") ;;
        esac
    done < <(env)
    set +e
    chroot "$ROOT" /usr/bin/env -i "${envs[@]}" /bin/bash -c 'cd /src/project && exec "$@"' bash "$@"
    status=$?
    set -e
    exit "$status"
fi

# --- on the host -------------------------------------------------------------------------------------
[ $# -ge 1 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
VERSION="$1"; shift
[[ "$VERSION" =~ ^3\.[0-9]+$ ]] || { say "ERROR: the first argument must be a Python version like 3.14, got '$VERSION'"; exit 2; }
CHECK_ONLY=0
if [ "${1:-}" = "--check" ]; then CHECK_ONLY=1; shift; fi
[ $# -ge 1 ] || set -- python -m pytest -m "not browser"

if [ "$(id -u)" != 0 ]; then
    missing "building and entering the Debian-testing root needs root (debootstrap, mount, chroot): run as root or with sudo, or install python$VERSION yourself"
fi
for tool in unshare chroot mount flock; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (apt-get install util-linux coreutils mount)"
done

mkdir -p "$(dirname "$ROOT")"
LOCK="$ROOT.lock"

mirror() {
    local uri=""
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

mounted_inside() { awk -v r="${1:-$ROOT}/" 'index($2, r) == 1 {found = 1} END {exit !found}' /proc/self/mounts; }

build_root() {
    # Called with the lock held. A root is complete when debootstrap finished (it removes its own
    # /debootstrap folder last) and a stamp says we checked it.
    if [ -f "$ROOT/.futureslab-root" ]; then return 0; fi
    if [ -e "$ROOT" ]; then
        # Never deleted here: it may be in use. A finished debootstrap has removed its /debootstrap folder.
        if [ -x "$ROOT/usr/bin/apt-get" ] && [ -x "$ROOT/usr/bin/dpkg-query" ] && [ ! -d "$ROOT/debootstrap" ]; then
            say "reusing the Debian-testing root in $ROOT"
            date -u +%FT%TZ > "$ROOT/.futureslab-root"
            return 0
        fi
        die "$ROOT exists but is not a finished Debian root (an interrupted debootstrap?): remove it (after checking nothing is mounted inside: grep $ROOT /proc/mounts), then re-run"
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 || die "debootstrap is not installed and there is no apt-get to install it"
        say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
    fi
    # Debian 12's debootstrap has no script for forky: the sid script builds any testing suite.
    local script=/usr/share/debootstrap/scripts/sid
    [ -e "/usr/share/debootstrap/scripts/$SUITE" ] && script="/usr/share/debootstrap/scripts/$SUITE"
    local m; m=$(mirror)
    if [ -e "$ROOT.partial" ]; then
        mounted_inside "$ROOT.partial" && die "$ROOT.partial (an interrupted build) has something mounted inside it; unmount it, then re-run"
        rm -rf --one-file-system "$ROOT.partial"
    fi
    local include="python3.14,python3.14-venv,python3.15,python3.15-venv,${PACKAGES// /,}"
    say "building a Debian $SUITE root in $ROOT from $m (once; ~1 min, ~340 MB)"
    if ! debootstrap --variant=minbase --include="$include" "$SUITE" "$ROOT.partial" "$m" "$script"; then
        mounted_inside "$ROOT.partial" || rm -rf --one-file-system "$ROOT.partial"
        die "debootstrap of $SUITE from $m failed (see the lines above); set DEBIAN_MIRROR to another mirror to retry"
    fi
    mv "$ROOT.partial" "$ROOT"
    date -u +%FT%TZ > "$ROOT/.futureslab-root"
}

has_package() { chroot "$ROOT" dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

ensure_packages() {
    # Called with the lock held: the Python asked for, its venv module, and the tools the tests use.
    local need=() p
    for p in "python$VERSION" "python$VERSION-venv" $PACKAGES; do has_package "$p" || need+=("$p"); done
    [ ${#need[@]} -eq 0 ] && return 0
    say "installing into the root: ${need[*]}"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    if ! chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@"' sh "${need[@]}"; then
        has_package "python$VERSION" && has_package "python$VERSION-venv" || \
            missing "cannot install python$VERSION and python$VERSION-venv from Debian $SUITE (apt-get's error above)"
        die "could not install ${need[*]} into the root"
    fi
}

exec 9>"$LOCK"
flock 9
build_root
ensure_packages
[ -x "$ROOT/usr/bin/python$VERSION" ] || missing "not in the root after installing it"
# The host's name server and CA bundle (pip reaches the package index through the host's certificates).
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
[ -r /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"

# A private mount namespace (the mounts are never seen outside) and a PID namespace: the run's first
# process there is its init, and when it ends, or unshare is killed (--kill-child, e.g. by `timeout`), the
# kernel kills every process left inside, even one in a session of its own (a Jupyter kernel, a worker).
in_root() { _FUTURESLAB_IN_NS=1 unshare -m --propagation private --pid --kill-child "$0" "$VERSION" "$@"; }

flock -u 9

# The venv for this Python, rebuilt when pyproject.toml's dependencies or the Python change: set up under an
# exclusive lock, used under a shared one (held by every process of the run through fd 8), so a
# rebuild waits until no run is using the venv.
VENV="/opt/venv-$VERSION"
exec 8>"$ROOT/opt/venv-$VERSION.lock"
deps() {  # what the venv depends on: pyproject.toml's dependency lists (the whole file if unreadable)
    python3 -c 'import json, sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(json.dumps([p.get("dependencies"), p.get("optional-dependencies")], sort_keys=True))' \
        "$PROJECT/pyproject.toml" 2>/dev/null || cat "$PROJECT/pyproject.toml"
}
want="$(deps | sha256sum | cut -d' ' -f1) $(chroot "$ROOT" "python$VERSION" -VV | tr '\n' ' ')"
current() { cat "$ROOT$VENV/.futureslab-installed" 2>/dev/null; }
flock -s 8
if [ "$(current)" != "$want" ]; then
    flock -u 8
    flock -n 8 || { say "waiting for other runs on Python $VERSION to finish: the venv needs a rebuild"; flock 8; }
    if [ "$(current)" != "$want" ]; then
        say "setting up $VENV in the root (python$VERSION -m venv; pip install -e \".[test]\")"
        rm -rf --one-file-system "${ROOT:?}$VENV"
        in_root sh -c "python$VERSION -m venv $VENV && $VENV/bin/python -m pip install -q -e '.[test]'" \
            || die "could not set up $VENV for Python $VERSION (see pip's error above)"
        echo "$want" > "$ROOT$VENV/.futureslab-installed"
    fi
    flock -s 8
fi
# make's own stamp for a venv it set up (Makefile: $(VENV)/.installed, newer than pyproject.toml): this
# venv is current for pyproject.toml's dependencies (checked above), so `make lab VENV=/opt/venv-3.14`
# inside the root uses it as it is (tests/test_make_lab.py runs that on every Python).
touch "$ROOT$VENV/.installed"

if [ "$CHECK_ONLY" = 1 ]; then
    in_root python -c 'import sys, futureslab; print("Python", sys.version.split()[0], "in", sys.prefix)'
    exit 0
fi
say "Python $(chroot "$ROOT" "python$VERSION" -c 'import sys; print(sys.version.split()[0])') (Debian $SUITE root, $VENV): $*"
in_root "$@"
