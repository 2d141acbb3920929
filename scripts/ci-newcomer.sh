#!/usr/bin/env bash
# CI: the README's two commands, as a newcomer runs them, on a host set up by nobody.
#
#   sudo scripts/ci-newcomer.sh
#
# A brand-new non-root user with passwordless sudo (no podman store, no config, ~/.local/bin not
# on PATH) in a fresh clone of this checkout:
#   1. binfmt_misc unmounted (a host without an init system, as a new machine of CI's kind is):
#      `scripts/setup-host.sh` must load the distro's handlers (update-binfmts lives in
#      /usr/sbin, which the user's PATH lacks);
#   2. the distro's arm handler disabled: `scripts/setup-host.sh --demo` must show and perform
#      the one-time registration, then `podrepro test arm` (no separate build) must reproduce the
#      example's bug; exit 0;
#   2b. the README's second command (`cd ~/src/yourproject && podrepro test arm`) in a copy of
#      the example without its podrepro.toml: a CMake project with no configuration; ctest's exit 8
#      with the two failures;
#   3. the handlers restored, then `sudo scripts/test-all.sh` from the same clone, with what the
#      demo left in it (build-podrepro-arm/).
# Environment: PODREPRO_NEWCOMER (default podrepro-newcomer), PODREPRO_SKIP_SUITE=1 (stop after 2).
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
NEW_USER="${PODREPRO_NEWCOMER:-podrepro-newcomer}"
T0=$(date +%s)
stage() { printf '\n==== [%4ds] newcomer: %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() { echo "FAIL newcomer: $*" >&2; exit 1; }
BM=/proc/sys/fs/binfmt_misc
SUDOERS=/etc/sudoers.d/podrepro-newcomer

if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root (sudo scripts/ci-newcomer.sh): it creates a user and changes binfmt_misc" >&2
    exit 2
fi

stage "a brand-new user $NEW_USER with passwordless sudo"
if id "$NEW_USER" >/dev/null 2>&1; then
    pkill -KILL -u "$NEW_USER" 2>/dev/null || true
    sleep 1
    userdel -r "$NEW_USER" >/dev/null 2>&1 || true
    rm -rf "/home/$NEW_USER"
fi
useradd -m -s /bin/bash "$NEW_USER"
NEW_UID=$(id -u "$NEW_USER")
NEW_HOME=$(getent passwd "$NEW_USER" | cut -d: -f6)
# the runtime dir a login would create (logind does on a desktop; nothing does here): the same
# thing setup-host.sh creates, made here so the first podman call does not depend on it
install -d -m 0700 -o "$NEW_UID" -g "$(id -g "$NEW_USER")" "/run/user/$NEW_UID"
echo "$NEW_USER ALL=(ALL) NOPASSWD:ALL" > "$SUDOERS"
chmod 0440 "$SUDOERS"

CLONE="$NEW_HOME/podrepro"
if git -c safe.directory="$HERE" -C "$HERE" rev-parse --git-dir >/dev/null 2>&1; then
    git -c safe.directory="$HERE" clone -q --no-local "$HERE" "$CLONE"
    # uncommitted changes too (a developer running this before committing)
    (cd "$HERE" && git -c safe.directory="$HERE" ls-files -z -m --others --exclude-standard) \
        | (cd "$HERE" && tar --null -T - -cf -) | tar -C "$CLONE" -xf -
else
    mkdir -p "$CLONE" && tar -C "$HERE" --exclude=.git -cf - . | tar -C "$CLONE" -xf -
fi
chown -R "$NEW_USER:" "$CLONE"
# a login's environment: the user's PATH has no /usr/sbin and no ~/.local/bin
as_newcomer() {
    runuser -u "$NEW_USER" -- env -i PATH="/usr/local/bin:/usr/bin:/bin" HOME="$NEW_HOME" USER="$NEW_USER" \
        LOGNAME="$NEW_USER" XDG_RUNTIME_DIR="/run/user/$NEW_UID" LANG=C.UTF-8 TERM=dumb "$@"
}

restore_handlers() {
    rm -f "$SUDOERS"
    # what the demo registered, and what this script disabled
    for e in "$BM"/podrepro-*; do [ -e "$e" ] && echo -1 > "$e"; done
    rm -f /etc/binfmt.d/zz-podrepro-*.conf
    [ -e "$BM/status" ] || mount -t binfmt_misc binfmt_misc "$BM"
    if [ ! -e "$BM/qemu-arm" ]; then
        /usr/sbin/update-binfmts --enable qemu-arm >/dev/null 2>&1 || echo "WARNING: could not re-enable qemu-arm" >&2
    fi
}
trap restore_handlers EXIT

stage "1. a host where nothing loaded the binfmt handlers: setup-host.sh as $NEW_USER"
# the packages must be there first (installing is not what this checks; the first run does it)
bash "$HERE/scripts/setup-host.sh" --user "$NEW_USER" >/dev/null
# as after a boot without init: no qemu handler loaded, binfmt_misc not mounted (the host
# instance keeps its entries over an umount, so they are removed first)
for e in "$BM"/qemu-* "$BM"/podrepro-*; do [ -e "$e" ] && echo -1 > "$e"; done
umount "$BM"
[ ! -e "$BM/status" ] || fail "binfmt_misc still mounted"
as_newcomer bash -c "cd '$CLONE' && scripts/setup-host.sh" | tee "$NEW_HOME/setup.log"
[ -e "$BM/qemu-arm" ] || fail "setup-host.sh as a user did not load the distro's arm handler"
grep -q "loading the distro's qemu binfmt handlers (/usr/sbin/update-binfmts --enable)" "$NEW_HOME/setup.log" \
    || fail "setup-host.sh did not say how it loaded the handlers"

stage "2. no handler for arm: the README's first command, scripts/setup-host.sh --demo"
echo -1 > "$BM/qemu-arm"
[ ! -e "$BM/qemu-arm" ] || fail "could not disable qemu-arm"
set +e
as_newcomer bash -c "cd '$CLONE' && scripts/setup-host.sh --demo" 2>&1 | tee "$NEW_HOME/demo.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || fail "scripts/setup-host.sh --demo exited $rc"
grep -q "podrepro will run:" "$NEW_HOME/demo.log" || fail "the demo did not show the registration before running it"
grep -q "register done (podrepro-arm)" "$NEW_HOME/demo.log" || fail "the demo did not register a handler for arm"
grep -q "reproduced: the example's tests fail on 32-bit ARM" "$NEW_HOME/demo.log" || fail "the demo did not reproduce the bug"
grep -q "2 failed: checksum, y2038" "$NEW_HOME/demo.log" || fail "podrepro test did not name the two failing tests"
grep -q "building first" "$NEW_HOME/demo.log" || fail "podrepro test did not build first"
# an empty store: the generic image in one bootstrap, no separate base image first
grep -q "built localhost/podrepro/generic:arm-" "$NEW_HOME/demo.log" || fail "the demo built no generic arm image"
if grep -q "built localhost/podrepro/base:arm-" "$NEW_HOME/demo.log"; then
    fail "the demo built a separate base image first (the first image of an arch is one bootstrap)"
fi
[ "$(grep -c 'not on your PATH\|not on this shell' "$NEW_HOME/demo.log")" -eq 1 ] \
    || fail "the demo must say once how to get podrepro on PATH"
[ -d "$CLONE/examples/wordsize/build-podrepro-arm" ] || fail "the demo left no build tree (nothing was built?)"

stage "2b. the README's second command, in a CMake project with no podrepro configuration"
# the command as the README's Quick start writes it (its second command line), run in a login
# shell as a newcomer would after the demo's PATH advice (~/.profile puts ~/.local/bin on PATH)
second=$(awk '/^## Quick start/{q=1} q && /^    /{n++; if (n == 2) {sub(/^ +/, ""); sub(/ +#.*$/, ""); print; exit}}' \
    "$CLONE/README.md")
case "$second" in "cd ~/src/yourproject && podrepro test arm") ;; *) fail "the Quick start's second command is now: $second";; esac
as_newcomer mkdir -p "$NEW_HOME/src"
as_newcomer cp -r "$CLONE/examples/wordsize" "$NEW_HOME/src/yourproject"
as_newcomer rm -rf "$NEW_HOME/src/yourproject/podrepro.toml" "$NEW_HOME/src/yourproject/build-podrepro-arm"
set +e
as_newcomer bash -lc "$second" > "$NEW_HOME/second.log" 2>&1
rc=$?
set -e
cat "$NEW_HOME/second.log"
# ctest's exit code for failed tests (podrepro passes it on): the bug the example carries
[ "$rc" -eq 8 ] || fail "'$second' exited $rc (expected ctest's 8: the example's tests fail on arm)"
grep -q "3 tests ran on arm, 2 failed: checksum, y2038" "$NEW_HOME/second.log" \
    || fail "'$second' did not reproduce the example's two failures"

stage "handlers back as they were"
restore_handlers
echo "$NEW_USER ALL=(ALL) NOPASSWD:ALL" > "$SUDOERS"
chmod 0440 "$SUDOERS"
[ -e "$BM/qemu-arm" ] || fail "qemu-arm not restored"
ls "$BM" | grep -q '^podrepro-' && fail "a podrepro entry survived the restore"

if [ "${PODREPRO_SKIP_SUITE:-0}" = "1" ]; then
    stage "suite skipped (PODREPRO_SKIP_SUITE=1)"
    exit 0
fi
stage "3. the README's test command (Development) in the same clone: sudo scripts/test-all.sh"
as_newcomer env CI="${CI:-}" PODREPRO_SKIP_VM="${PODREPRO_SKIP_VM:-}" PODREPRO_PYTEST_ARGS="${PODREPRO_PYTEST_ARGS:-}" \
    bash -c "cd '$CLONE' && sudo --preserve-env=CI,PODREPRO_SKIP_VM,PODREPRO_PYTEST_ARGS scripts/test-all.sh"
rm -f "$SUDOERS"

# the e2e tests that need core dumps, which test-all.sh under sudo cannot run (sudo sets the hard
# core-file limit to 0 and this root cannot raise it); here, as root without sudo, the limit is
# the session's own. test-all.sh left the checkout and the venv it tested in /var/tmp/podrepro-ci
CI_SRC=/var/tmp/podrepro-ci/src CI_VENV=/var/tmp/podrepro-ci/venv
if [ "$(ulimit -Hc)" != 0 ] && [ "$(ulimit -Hc)" != "" ]; then
    stage "4. e2e tests that need core dumps, without sudo (hard core-file limit $(ulimit -Hc)), as podrepro-ci"
    ci_uid=$(id -u podrepro-ci)
    runuser -u podrepro-ci -- env -i PATH="$CI_VENV/bin:/usr/local/bin:/usr/bin:/bin" HOME="/home/podrepro-ci" \
        USER=podrepro-ci LOGNAME=podrepro-ci XDG_RUNTIME_DIR="/run/user/$ci_uid" LANG=C.UTF-8 CI="${CI:-}" \
        sh -c "cd '$CI_SRC' && python -m pytest -p no:cacheprovider --e2e -m 'e2e and core' tests/e2e"
else
    stage "4. e2e tests that need core dumps: NOT RUN (this session's hard core-file limit is 0 too)"
fi
stage "passed"
