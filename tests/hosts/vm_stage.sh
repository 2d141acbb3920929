#!/usr/bin/env bash
# CI stage of issue 7: podrepro on the users' real platform (rootless podman 5, pure cgroup v2,
# crun, pasta, systemd, qemu-user 10) inside a nested Debian trixie VM built from the mirror.
#
#   bash tests/hosts/vm_stage.sh            as root; exit code 0 = every check passed
#
# Host side (this file): build/reuse the VM image, prepare what the guest cannot fetch cheaply
# (a wheelhouse of podrepro's dependencies, busybox-static armhf/mipsel root file systems taken from
# the mirror's .debs and extracted natively: no emulated bootstrap), boot the VM once and run
# tests/hosts/guest_checks.sh in it as the unprivileged user. Nothing on the host changes except
# the image cache ($PODREPRO_TESTVM_CACHE, default /var/cache/podrepro-testvm) and, on a fresh
# machine, the qemu-system-x86 / qemu-utils / mmdebstrap / e2fsprogs packages.
#
# Environment: VM_STAGE_OUT=DIR keeps the guest's artefacts (doctor.json, logs) there;
# VM_STAGE_ASSETS=DIR keeps (and reuses) the wheelhouse and rootfs tarballs, VM_STAGE_ASSETS_ONLY=1
# stops after preparing them (for debugging with `testvm.py run --share DIR:assets`);
# VM_STAGE_TIMEOUT=SECS hard limit of the boot+checks (default 900); VM_STAGE_USE_PODREPRO=0 runs
# the container checks with raw podman instead of podrepro (the baseline; see guest_checks.sh).
# The last line is `vm-stage: N passed, M failed[, K skipped]`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TESTVM=(python3 "$HERE/testvm.py")
T_START=$(date +%s)
now() { date +%s; }
say() { printf 'vm-stage: %s\n' "$*" >&2; }
final() { printf '\nvm-stage: %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "vm-stage: must run as root" >&2; exit 2; }
WORK=$(mktemp -d /var/tmp/podrepro-vmstage.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
ASSETS=${VM_STAGE_ASSETS:-$WORK/assets}   # set to keep (and reuse) the assets between runs
OUT=${VM_STAGE_OUT:-$WORK/out}
mkdir -p "$ASSETS/wheels" "$OUT"
chmod 0777 "$OUT"   # written by the guest's uid 1000 through 9p (security_model=none)

# ---- 1. image ---------------------------------------------------------------------------------
t=$(now)
if ! "${TESTVM[@]}" build; then final "0 passed, 1 failed (image build)"; exit 1; fi
T_BUILD=$(( $(now) - t ))

# ---- 2. assets for the guest --------------------------------------------------------------------
t=$(now)
# 2a. wheelhouse: podrepro's runtime and build dependencies as wheels for the guest's CPython, so
# the in-guest install needs no index (deterministic, and no TLS set-up in the guest).
PY=$(command -v python3)
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    # never install into the host's Python: a throwaway venv only to run `pip download`
    "$PY" -m venv "$WORK/pipvenv" 2>/dev/null || { apt-get install -y -q python3-venv >/dev/null; "$PY" -m venv "$WORK/pipvenv"; }
    PY=$WORK/pipvenv/bin/python
fi
mapfile -t REQS < <("$PY" - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
d = tomllib.load(open(sys.argv[1], "rb"))
for r in d["project"].get("dependencies", []) + d["build-system"].get("requires", []):
    print(r)
EOF
)
# the guest's CPython version, from the image's package list (e.g. "python3 3.13.5-1" -> 3.13)
GUEST_PYVER=$("${TESTVM[@]}" info | "$PY" -c 'import json,sys; v=json.load(sys.stdin)["packages"]["python3"]; print(".".join(v.split(".")[:2]))')
rm -f "$ASSETS"/wheels/podrepro-*.whl
"$PY" -m pip download -q --dest "$ASSETS/wheels" --only-binary=:all: \
    --python-version "$GUEST_PYVER" --implementation cp --platform manylinux_2_39_x86_64 "${REQS[@]}" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# podrepro itself: the wheel built from this checkout (pure Python). Building it here rather than in
# the guest saves minutes of emulated setuptools, and the guest then tests what users install: the
# wheel, with its package data.
"$PY" -m pip wheel -q --no-deps --no-index --find-links "$ASSETS/wheels" --wheel-dir "$ASSETS/wheels" "$REPO" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
say "wheelhouse: $(ls "$ASSETS/wheels" | wc -l) wheels for CPython $GUEST_PYVER, $(cd "$ASSETS/wheels" && ls podrepro-*.whl)"

# 2b. busybox-static armhf + mipsel from bookworm (trixie dropped mipsel), through a private apt
# configuration: the host's dpkg architectures, lists and status stay untouched.
MIRROR=$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import testvm; print(testvm.host_mirror())' "$HERE")
A=$WORK/apt
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/parts" "$A/prefs" "$WORK/debs"
: > "$A/status"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm main" > "$A/sources.list"
APT=(apt-get -q -o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts="$A/parts"
     -o Dir::Etc::Preferences="$A/prefs/none" -o Dir::Etc::PreferencesParts="$A/prefs"
     -o Dir::State::Lists="$A/lists" -o Dir::State::Status="$A/status" -o Dir::Cache="$A/cache"
     -o APT::Architecture=armhf -o APT::Architectures::=armhf -o APT::Architectures::=mipsel
     -o APT::Sandbox::User=root -o Debug::NoLocking=1 -o Acquire::Languages=none)
"${APT[@]}" update >"$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log" >&2; final "0 passed, 1 failed (apt update)"; exit 1; }
(cd "$WORK/debs" && "${APT[@]}" download busybox-static:armhf busybox-static:mipsel >/dev/null 2>&1)
APPLETS="sh ash uname id touch ls cat echo true false env stat mkdir rm sleep wget head grep test printf whoami date tr sed awk"
for arch in armhf mipsel; do
    deb=$(ls "$WORK"/debs/busybox-static_*_"$arch".deb)
    x=$WORK/x-$arch r=$WORK/root-$arch
    rm -rf "$x" "$r"
    dpkg-deb -x "$deb" "$x"   # plain extraction: no maintainer scripts, nothing executed
    mkdir -p "$r"/{bin,etc,tmp,proc,sys,dev,root,home,usr}
    bb=$x/bin/busybox; [ -f "$bb" ] || bb=$x/usr/bin/busybox   # (a conf.d file is named busybox too)
    install -m 0755 "$bb" "$r/bin/busybox"
    for a in $APPLETS; do ln -s busybox "$r/bin/$a"; done
    ln -s bin "$r/sbin"; ln -s ../bin "$r/usr/bin"
    chmod 1777 "$r/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$ASSETS/busybox-$arch.tar" .
    say "rootfs $arch: $(basename "$deb") -> busybox-$arch.tar ($(du -h "$ASSETS/busybox-$arch.tar" | cut -f1))"
done
printf '%s\n' "$MIRROR" > "$ASSETS/mirror"   # for the in-container network check (not a repo file)
T_ASSETS=$(( $(now) - t ))
if [ "${VM_STAGE_ASSETS_ONLY:-0}" = 1 ]; then say "assets ready in $ASSETS"; exit 0; fi

# ---- 3. boot the VM once and run the checks as the unprivileged user ----------------------------
t=$(now)
set +e
"${TESTVM[@]}" run --timeout "${VM_STAGE_TIMEOUT:-900}" --report "$WORK/report.json" \
    --share "$REPO:src" --share "$ASSETS:assets" --share "$OUT:out:rw" \
    --env "VM_STAGE_USE_PODREPRO=${VM_STAGE_USE_PODREPRO:-1}" \
    -- bash /mnt/src/tests/hosts/guest_checks.sh | tee "$WORK/guest.out"
RC=${PIPESTATUS[0]}
set -e
T_VM=$(( $(now) - t ))

# ---- 4. summary ---------------------------------------------------------------------------------
BOOT=? JOB=?
if [ -s "$WORK/report.json" ]; then
    read -r BOOT JOB < <("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["boot_s"], r["job_s"])' "$WORK/report.json")
fi
say "durations: image ${T_BUILD}s, assets ${T_ASSETS}s, vm ${T_VM}s (boot ${BOOT}s, checks ${JOB}s), total $(( $(now) - T_START ))s"
SUMMARY=$(grep -E '^guest-checks: [0-9]+ passed, [0-9]+ failed' "$WORK/guest.out" | tail -n1 | sed 's/^guest-checks: //')
if [ "$RC" -eq 0 ] && [ -n "$SUMMARY" ]; then
    final "$SUMMARY"
    exit 0
fi
case "$RC" in
    124) why="VM timed out" ;;
    125) why="VM failed before the checks finished" ;;
    *) why="guest checks exit code $RC" ;;
esac
if [ -n "$SUMMARY" ]; then final "$SUMMARY ($why)"; else final "0 passed, 1 failed ($why)"; fi
exit 1
