#!/usr/bin/env bash
# The whole test suite, as CI runs it: `sudo scripts/test-all.sh` on a Debian 12 machine.
#
#   1. scripts/setup-host.sh installs podman, buildah, qemu-user-static, mmdebstrap, ... and
#      creates/configures an unprivileged user (default podrepro-ci) for rootless podman
#   2. a venv with podrepro + dev tools; ruff; mypy --strict; unit tests
#   3. the e2e suite AS THAT USER (rootless podman, real qemu via binfmt_misc, images
#      bootstrapped from the host's Debian mirror), then the root-only binfmt tests
#
# Environment: PODREPRO_CI_USER (default podrepro-ci), PODREPRO_SKIP_E2E=1 (lint + unit only),
# PODREPRO_PYTEST_ARGS (extra pytest args for the e2e run), PODREPRO_SKIP_VM=1 (skip the VM stage).
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
CI_USER="${PODREPRO_CI_USER:-podrepro-ci}"
T0=$(date +%s)
stage() { printf '\n==== [%4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root (sudo scripts/test-all.sh): it installs packages and creates the test user" >&2
    exit 2
fi

stage "host setup"
bash "$HERE/scripts/setup-host.sh" --user "$CI_USER" --create-user
# a second account with a rootless podman of its own: replays bundles made by $CI_USER
PEER_USER=podrepro-peer
bash "$HERE/scripts/setup-host.sh" --user "$PEER_USER" --create-user --no-install
# test-only tools: a real OCI registry for push/pull, a native compiler for the example's
# native run, static libc for the zero-sudo shim, rsync for the VM stage and remote engines, an
# sshd the peer account runs as itself for the remote-engine tests, qemu-system for --system
TEST_PKGS=(docker-registry gcc libc6-dev rsync procps openssh-server openssh-client qemu-system-arm qemu-system-mips)
missing=()
for p in "${TEST_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# the package starts a registry as a service on hosts with an init system; tests run their own.
# pkill exits 1 when nothing matched (the usual case here); anything else is a real failure
rc=0; pkill -x docker-registry || rc=$?
[ "$rc" -le 1 ] || { echo "error: could not stop the packaged docker-registry (pkill exit $rc)" >&2; exit 1; }

CI_UID=$(id -u "$CI_USER")
CI_HOME=$(getent passwd "$CI_USER" | cut -d: -f6)
WORK=/var/tmp/podrepro-ci
SRC="$WORK/src"
VENV="$WORK/venv"

stage "copy of the checkout for $CI_USER, venv"
install -d -m 0755 "$WORK"
rm -rf "$SRC"
mkdir -p "$SRC"
# the working tree as git sees it: tracked files (as they are now) and untracked files that are
# not ignored. Never what .gitignore ignores: a demo's build-podrepro-*/ made for another path,
# caches, venvs. Without git (an unpacked tarball), everything but the usual caches.
if git -c safe.directory="$HERE" -C "$HERE" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$HERE" && git -c safe.directory="$HERE" ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -C "$SRC" -xf -
else
    tar -C "$HERE" --exclude=.git --exclude='*.egg-info' --exclude=__pycache__ --exclude=.mypy_cache \
        --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.hypothesis --exclude=build --exclude=dist \
        --exclude='build-podrepro-*' -cf - . | tar -C "$SRC" -xf -
fi
chown -R "$CI_USER:" "$SRC"
if [ ! -x "$VENV/bin/python" ]; then
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
fi
# an install that fails must fail CI: the venv is reused between runs, and a half-failed install
# would leave the suite testing the podrepro of an earlier run
pip_or_die() {
    if ! "$VENV/bin/pip" "$@" > "$WORK/pip.log" 2>&1; then
        cat "$WORK/pip.log" >&2
        echo "error: pip $* failed" >&2
        exit 1
    fi
}
pip_or_die install -q --upgrade pip
pip_or_die install -q "$SRC[dev]"
pip_or_die install -q --force-reinstall --no-deps "$SRC"
# ...and the suite must import the code under test: the installed package is the copy, file by file
SITE_PKG=$(cd / && "$VENV/bin/python" -I -c 'import os, podrepro; print(os.path.dirname(podrepro.__file__))')
case "$SITE_PKG" in "$VENV"/*) ;; *) echo "error: podrepro imports from $SITE_PKG, not from $VENV" >&2; exit 1 ;; esac
if ! diff -rq --exclude=__pycache__ --exclude=containerfiles "$SRC/podrepro" "$SITE_PKG"; then
    echo "error: the installed podrepro ($SITE_PKG) differs from the code under test ($SRC/podrepro)" >&2
    exit 1
fi
diff -rq "$SRC/containerfiles" "$SITE_PKG/containerfiles" || { echo "error: installed Containerfiles differ" >&2; exit 1; }
echo "podrepro under test: $SITE_PKG (same files as $SRC/podrepro)"
chmod -R a+rX "$VENV"

as_user() {
    runuser -u "$CI_USER" -- env -i PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" HOME="$CI_HOME" \
        USER="$CI_USER" LOGNAME="$CI_USER" XDG_RUNTIME_DIR="/run/user/$CI_UID" LANG=C.UTF-8 \
        PODREPRO_AUDIT_LOG="${PODREPRO_AUDIT_LOG:-}" CI="${CI:-}" "$@"
}

stage "lint: ruff + mypy --strict"
# scripts/podrepro has no .py suffix: named explicitly, or ruff and mypy would pass it by
(cd "$SRC" && "$VENV/bin/ruff" check podrepro tests bench scripts scripts/podrepro \
    && "$VENV/bin/mypy" --strict podrepro tests bench scripts/podrepro)

stage "unit tests (as $CI_USER; test_packaging builds the wheel and lists it)"
as_user sh -c "cd '$SRC' && python -m pytest -q -p no:cacheprovider tests/unit"

if [ "${PODREPRO_SKIP_E2E:-0}" = "1" ]; then
    stage "e2e skipped (PODREPRO_SKIP_E2E=1)"
    exit 0
fi

AUDIT="$WORK/audit.jsonl"
: > "$AUDIT"
chown "$CI_USER:" "$AUDIT"
# every e2e test that runs in any stage below is listed here (tests/conftest.py), so the end can
# check that together they ran every e2e test: none deselected by a marker mistake
RAN="$WORK/ran.tsv"
: > "$RAN"
chown "$CI_USER:" "$RAN"
stage "e2e tests, rootless, as $CI_USER"
as_user podman info --format "e2e runs as user=$CI_USER (uid $CI_UID) rootless={{.Host.Security.Rootless}} runtime={{.Host.OCIRuntime.Name}} storage={{.Store.GraphDriverName}} cgroups={{.Host.CgroupsVersion}} podman={{.Version.Version}}"
as_user env PODREPRO_AUDIT_LOG="$AUDIT" PODREPRO_RAN_LOG="$RAN" sh -c "cd '$SRC' && python -m pytest -p no:cacheprovider --e2e -m 'e2e and not root and not core' tests/e2e ${PODREPRO_PYTEST_ARGS:-}"

# --core needs a hard core-file limit above 0. sudo (1.9) sets it to 0 for the command, and a root
# without CAP_SYS_RESOURCE (this machine) cannot raise it again: under sudo these tests cannot
# run, and scripts/ci-newcomer.sh runs them in a stage of its own, without sudo
DEFERRED="$WORK/deferred.txt"
: > "$DEFERRED"
if [ "$(ulimit -Hc)" != 0 ]; then
    stage "e2e tests that need core dumps (hard core-file limit $(ulimit -Hc)), as $CI_USER"
    as_user env PODREPRO_AUDIT_LOG="$AUDIT" PODREPRO_RAN_LOG="$RAN" sh -c "cd '$SRC' && python -m pytest -p no:cacheprovider --e2e -m 'e2e and core' tests/e2e"
else
    stage "e2e tests that need core dumps: not here (hard core-file limit 0, as sudo sets it)"
    (cd "$SRC" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider --e2e -m core --collect-only tests/e2e) \
        | grep '::' | sort -u > "$DEFERRED"
    echo "deferred to a stage without sudo (scripts/ci-newcomer.sh):"
    sed 's/^/  /' "$DEFERRED"
fi

stage "e2e tests that need root (binfmt registration), containers as $CI_USER"
(cd "$SRC" && PODREPRO_TEST_USER="$CI_USER" PODREPRO_PEER_USER="$PEER_USER" PODREPRO_TEST_PYTHON="$VENV/bin/python" PODREPRO_AUDIT_LOG="$AUDIT" \
    PODREPRO_RAN_LOG="$RAN" "$VENV/bin/python" -m pytest -p no:cacheprovider --e2e -m root tests/e2e)

stage "privilege audit over every command the e2e suite ran"
(cd "$SRC" && PODREPRO_AUDIT_LOG="$AUDIT" PODREPRO_RAN_LOG="$RAN" \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider --e2e tests/e2e/test_zz_audit.py)

stage "every e2e test ran in one of the stages above"
(cd "$SRC" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider --e2e --collect-only tests/e2e) \
    | grep '::' | sort -u > "$WORK/collected.txt"
cut -f1 "$RAN" | cat - "$DEFERRED" | sort -u > "$WORK/ran.txt"
if [ -n "${PODREPRO_PYTEST_ARGS:-}" ]; then
    echo "PODREPRO_PYTEST_ARGS narrowed the e2e run: $(wc -l < "$WORK/ran.txt") of $(wc -l < "$WORK/collected.txt") e2e tests ran"
else
    missing=$(comm -23 "$WORK/collected.txt" "$WORK/ran.txt")
    if [ -n "$missing" ]; then
        echo "FAIL: these e2e tests ran in no stage (deselected by their markers?):" >&2
        echo "$missing" >&2
        exit 1
    fi
    echo "all $(wc -l < "$WORK/collected.txt") e2e tests ran"
fi

if [ "${PODREPRO_SKIP_VM:-0}" != "1" ]; then
    stage "VM stage: rootless podman 5 over cgroup v2, crun, pasta, systemd (Debian trixie guest under TCG)"
    bash "$SRC/tests/hosts/vm_stage.sh"
fi

if [ "${PODREPRO_SKIP_VM:-0}" = "1" ]; then
    stage "all stages passed EXCEPT the VM stage, which was skipped (PODREPRO_SKIP_VM=1): podman 5 / cgroup v2 untested"
else
    stage "all stages passed"
fi
