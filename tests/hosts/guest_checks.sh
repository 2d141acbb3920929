#!/usr/bin/env bash
# In-guest part of the VM stage (tests/hosts/vm_stage.sh), run by testvm.py as the unprivileged
# user `tester` in the Debian trixie VM: rootless podman 5, pure cgroup v2, crun, pasta, systemd
# user session, qemu-user 10 binfmt handlers registered by systemd-binfmt.
#
# Shares: /mnt/src (the checkout, read-only), /mnt/assets (wheelhouse with podrepro's wheel, busybox rootfs tarballs,
# mirror URL; read-only), /mnt/out (artefacts: doctor.json, per-check logs; read-write).
# Each check prints PASS/FAIL/SKIP with its duration; the last line is
# `guest-checks: N passed, M failed[, K skipped]`, the exit code 1 if anything failed.
set -u
SRC=/mnt/src ASSETS=/mnt/assets OUT=/mnt/out
LOGS=$OUT/logs
mkdir -p "$LOGS"
PASS=0 FAIL=0 SKIP=0
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# check NAME CMD... : runs CMD with its output in $LOGS/NAME.log; 0 pass, 77 skip, else fail
check() {
    local name=$1 t0 t1 rc
    shift
    t0=$(date +%s.%N)
    "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    local dur
    dur=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1fs", b - a }')
    if [ "$rc" -eq 0 ]; then
        PASS=$((PASS + 1)); printf 'PASS %-28s %7s\n' "$name" "$dur"
    elif [ "$rc" -eq 77 ]; then
        SKIP=$((SKIP + 1)); printf 'SKIP %-28s %7s  %s\n' "$name" "$dur" "$(tail -n1 "$LOGS/$name.log")"
    else
        FAIL=$((FAIL + 1)); printf 'FAIL %-28s %7s  (exit %s), last lines:\n' "$name" "$dur" "$rc"
        tail -n 15 "$LOGS/$name.log" | sed 's/^/     | /'
    fi
}
expect_eq() {  # expect_eq WHAT EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok: $1 = $3"; else echo "MISMATCH: $1: expected '$2', got '$3'"; return 1; fi
}

# ---- platform facts ------------------------------------------------------------------------------
platform() {
    local cg runtime driver rootless mgr net
    IFS='|' read -r cg mgr runtime driver rootless net < <(podman info --format \
        '{{.Host.CgroupsVersion}}|{{.Host.CgroupManager}}|{{.Host.OCIRuntime.Name}}|{{.Store.GraphDriverName}}|{{.Host.Security.Rootless}}|{{.Host.RootlessNetworkCmd}}')
    echo "podman $(podman version --format '{{.Client.Version}}'): cgroups $cg, manager $mgr, runtime $runtime, storage $driver, rootless $rootless, network $net"
    expect_eq cgroups v2 "$cg" && expect_eq cgroupManager systemd "$mgr" && expect_eq runtime crun "$runtime" \
        && expect_eq storage overlay "$driver" && expect_eq rootless true "$rootless" && expect_eq rootlessNetworkCmd pasta "$net"
}
binfmt() {
    local a f rc=0
    for a in arm mipsel; do
        f=/proc/sys/fs/binfmt_misc/qemu-$a
        echo "== $f"; cat "$f" || { rc=1; continue; }
        grep -qx enabled "$f" || { echo "not enabled"; rc=1; }
        grep -q '^flags: .*F' "$f" || { echo "no F flag: the interpreter would not work inside containers"; rc=1; }
        local interp; interp=$(awk '/^interpreter/ {print $2}' "$f")
        [ -x "$interp" ] || { echo "interpreter $interp missing"; rc=1; }
    done
    return $rc
}

# ---- podrepro from the checkout -----------------------------------------------------------------------
install_podrepro() {
    # The wheel the host built from the checkout (see vm_stage.sh), plus its dependencies, from the
    # shared wheelhouse: no index, and --no-compile (byte-compiling rich/pygments costs minutes
    # under TCG; modules compile lazily on import instead).
    # The venv gets no pip of its own (ensurepip installs and byte-compiles pip: a minute under
    # TCG); the distribution's pip installs into it with --python.
    rm -rf ~/venv
    python3 -m venv --without-pip ~/venv
    python3 -m pip --python ~/venv/bin/python install -q --no-index --no-compile \
        --find-links "$ASSETS/wheels" podrepro && ~/venv/bin/podrepro --version
}
doctor() {
    ~/venv/bin/podrepro doctor --help >/dev/null 2>&1 || { echo "podrepro doctor --help failed: the install is broken"; return 1; }
    local rc
    ~/venv/bin/podrepro doctor --json > "$OUT/doctor.json"; rc=$?
    cat "$OUT/doctor.json"
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$OUT/doctor.json" || { echo "not valid JSON"; return 1; }
    # issue 7: on this platform doctor must see cgroup v2, crun, overlay and a working rootless network
    python3 - "$OUT/doctor.json" <<'PYEOF' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
p = d["podman"]
problems = []
if str(p.get("cgroup_version")) not in ("v2", "2"):
    problems.append(f"cgroup_version={p.get('cgroup_version')}")
if p.get("oci_runtime") != "crun":
    problems.append(f"oci_runtime={p.get('oci_runtime')}")
if p.get("storage_driver") != "overlay":
    problems.append(f"storage_driver={p.get('storage_driver')}")
if p.get("rootless") is not True:
    problems.append("not rootless")
net = [c for c in d["checks"] if c["check"] == "network"]
if not net or net[0]["severity"] != "ok":
    problems.append(f"rootless network: {net}")
for c in d["checks"]:
    if c["severity"] == "fail":
        problems.append(f"fail: {c['check']}: {c['message']}")
print("doctor: cgroup", p.get("cgroup_version"), "runtime", p.get("oci_runtime"), "storage", p.get("storage_driver"),
      "network", net[0]["severity"] if net else "?")
if problems:
    print("doctor problems:", "; ".join(problems))
    sys.exit(1)
PYEOF
    return $rc
}

# ---- containers ===========================================================================================
# The checks below go through these two functions only: by default (VM_STAGE_USE_PODREPRO=1) they
# call `podrepro image build ARCH --from-rootfs TARBALL` and `podrepro run ARCH -- CMD`; with
# VM_STAGE_USE_PODREPRO=0 they call podman directly (the baseline podrepro's commands must match),
# and the podrepro-only checks then report SKIP.
USE_PODREPRO=${VM_STAGE_USE_PODREPRO:-1}
declare -A PTAG=()
declare -A PLATFORM=([arm]=linux/arm/v7 [mips]=linux/mipsle)
declare -A IMPORT_ARGS=([arm]="--arch arm --variant v7 --os linux" [mips]="--arch mipsle --os linux")
declare -A TARBALL=([arm]=$ASSETS/busybox-armhf.tar [mips]=$ASSETS/busybox-mipsel.tar)
img() {
    if [ "$USE_PODREPRO" = 1 ]; then cat "$OUT/tag-$1" 2>/dev/null; else echo "localhost/podrepro-vmstage/busybox:$1"; fi
}

image_from_rootfs() {  # ARCH
    if [ "$USE_PODREPRO" = 1 ]; then
        local tag
        tag=$(~/venv/bin/podrepro image build "$1" --profile base --from-rootfs "${TARBALL[$1]}" --json \
              | python3 -c 'import json,sys; print(json.load(sys.stdin)["tag"])') || return 1
        echo "$tag" > "$OUT/tag-$1"
        echo "podrepro built $tag"
    else
        # shellcheck disable=SC2086  # IMPORT_ARGS holds several words on purpose
        podman import ${IMPORT_ARGS[$1]} --change 'CMD ["/bin/sh"]' "${TARBALL[$1]}" "$(img "$1")"
    fi
}
run_in() {  # ARCH [podman run options...] -- CMD...
    local arch=$1; shift
    local opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    if [ "$USE_PODREPRO" = 1 ]; then
        ~/venv/bin/podrepro run --image "$(img "$arch")" "${opts[@]}" "$arch" -- "$@"
    else
        podman run --rm --pull=never --platform "${PLATFORM[$arch]}" "${opts[@]}" "$(img "$arch")" "$@"
    fi
}
# ==========================================================================================================

uname_in() {  # ARCH EXPECTED
    local m; m=$(run_in "$1" -- uname -m) || return 1
    expect_eq "uname -m in $1" "$2" "$m"
}
exit_code() {
    local rc a
    for a in arm mips; do
        run_in "$a" -- sh -c 'exit 7'; rc=$?
        expect_eq "exit code in $a" 7 "$rc" || return 1
    done
}
ownership() {
    local d=~/owned-by-tester
    rm -rf "$d"; mkdir -p "$d"
    if [ "$USE_PODREPRO" = 1 ]; then
        # podrepro mounts the project (here: the working directory) at the same path, keep-id
        (cd "$d" && run_in arm -- sh -c 'touch made-in-arm && id -u') || return 1
    else
        run_in arm --userns=keep-id -v "$d:/work" -- sh -c 'touch /work/made-in-arm && id -u' || return 1
    fi
    ls -ln "$d"
    expect_eq "owner of a file created in the container" "tester" "$(stat -c %U "$d/made-in-arm")"
}
network() {
    # rootless pasta networking from inside an emulated container, to the mirror the VM uses
    local url; url="$(cat "$ASSETS/mirror")/dists/bookworm/Release"
    local netopt=()
    [ "$USE_PODREPRO" = 1 ] && netopt=(--network)   # podrepro runs without a network unless asked
    run_in arm "${netopt[@]}" -- wget -q -O /dev/null "$url" && echo "ok: fetched the mirror's Release file from armhf via pasta"
}
podman_py() {
    # podrepro's engine path: podman-py against podman 5's REST service on a private socket
    local sock=$XDG_RUNTIME_DIR/podrepro-vmstage-$$.sock pid rc
    podman system service --time=0 "unix://$sock" & pid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    ~/venv/bin/python - "$sock" "$(img arm)" <<'EOF'
import sys
from podman import PodmanClient
sock, image = sys.argv[1], sys.argv[2]
with PodmanClient(base_url=f"unix://{sock}") as c:
    assert c.ping(), "ping failed"
    v = c.version()
    print("service:", v["Version"], "API", v.get("ApiVersion"))
    assert c.images.exists(image), image
    ctr = c.containers.create(image, ["uname", "-m"], platform="linux/arm/v7")
    try:
        ctr.start()
        code = ctr.wait(interval="10ms")
        out = b"".join(ctr.logs(stdout=True, stderr=False)).decode().strip()
        print("container exit", code, "output", out)
        assert code == 0 and out == "armv7l", (code, out)
    finally:
        ctr.remove(force=True)
EOF
    rc=$?
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    rm -f "$sock"
    return $rc
}

podrepro_api() {
    # podrepro's own engine path (podman-py over its private podman system service) on podman 5
    [ "$USE_PODREPRO" = 1 ] || { echo "raw podman mode"; return 77; }
    ~/venv/bin/podrepro image ls --json > "$OUT/image-ls.json" || return 1
    python3 - "$OUT/image-ls.json" "$(img arm)" "$(img mips)" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))
tags = {r["tag"]: r for r in rows}
for want in sys.argv[2:]:
    assert want in tags, (want, sorted(tags))
    assert tags[want]["status"] == "custom", tags[want]
print("podrepro image ls via podman-py:", ", ".join(f"{t} ({tags[t]['arch']})" for t in sys.argv[2:]))
PYEOF
}

echo "guest-checks: $(uname -r), $(python3 --version), podman $(podman --version | awk '{print $3}'), user $(id -un)"
check platform          platform
check binfmt-qemu10     binfmt
check install-podrepro  install_podrepro
check doctor-json       doctor
check import-arm        image_from_rootfs arm
check import-mips       image_from_rootfs mips
check run-arm-uname     uname_in arm armv7l
check run-mips-uname    uname_in mips mips
check exit-code         exit_code
check keep-id-ownership ownership
check pasta-network     network
check podman-py-api     podman_py
check podrepro-api      podrepro_api
echo
cat "$LOGS/platform.log" | head -n1
[ -f "$OUT/doctor.json" ] && echo "doctor.json: $(wc -c < "$OUT/doctor.json") bytes in the out dir"
SUMMARY="$PASS passed, $FAIL failed"
[ "$SKIP" -gt 0 ] && SUMMARY="$SUMMARY, $SKIP skipped"
echo "guest-checks: $SUMMARY"
[ "$FAIL" -eq 0 ]
