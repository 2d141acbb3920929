#!/usr/bin/env bash
# Prepare a Debian/Ubuntu or Fedora host for podrepro. Idempotent: run it again any time.
#
#   scripts/setup-host.sh [--user NAME] [--create-user] [--no-install] [--demo]
#
# System part (via sudo when not root): installs podman, buildah, qemu-user-static, mmdebstrap,
# uidmap and friends; mounts binfmt_misc and loads the distro's handlers where no init system did
# it (containers/VMs without systemd); makes /dev/net/tun usable for rootless networking the way
# udev does on a normal boot. It never touches the cgroup mounts.
# User part (as that user): writes ~/.config/containers/{storage,containers}.conf ONLY where this
# host needs it (overlay storage before the first podman use; runc + cgroupfs on hosts that are
# not pure cgroup v2). Every change is printed; nothing is changed twice.
set -euo pipefail

TARGET_USER="${SUDO_USER:-$(id -un)}"
CREATE_USER=0
INSTALL=1
DEMO=0
while [ $# -gt 0 ]; do
    case "$1" in
        --user) TARGET_USER="$2"; shift 2 ;;
        --create-user) CREATE_USER=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        --demo) DEMO=1; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf 'setup-host: %s\n' "$*"; }
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
root() { "${SUDO[@]}" "$@"; }

# ---- system packages -------------------------------------------------------------------------
if [ "$INSTALL" -eq 1 ]; then
    if command -v apt-get >/dev/null; then
        PKGS=(podman buildah skopeo runc crun conmon uidmap slirp4netns fuse-overlayfs
              catatonit qemu-user-static binfmt-support mmdebstrap debian-archive-keyring arch-test
              python3-venv python3-pip pipx sudo)
        missing=()
        for p in "${PKGS[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            say "installing: ${missing[*]}"
            root env DEBIAN_FRONTEND=noninteractive apt-get update -q
            root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
        else
            say "packages: all present"
        fi
    elif command -v dnf >/dev/null; then
        PKGS=(podman buildah skopeo crun conmon catatonit shadow-utils-subid passt qemu-user-static
              mmdebstrap debian-keyring python3-pip pipx)
        missing=()
        for p in "${PKGS[@]}"; do rpm -q "$p" >/dev/null 2>&1 || missing+=("$p"); done
        if [ ${#missing[@]} -gt 0 ]; then
            say "installing: ${missing[*]}"
            root dnf install -y "${missing[@]}"
        else
            say "packages: all present"
        fi
    else
        echo "error: neither apt-get nor dnf found; install podman, buildah, qemu-user-static and mmdebstrap by hand" >&2
        exit 1
    fi
fi

# ---- binfmt_misc (what systemd does at boot; no-op on a normal host) ----------------------------
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    say "mounting binfmt_misc on /proc/sys/fs/binfmt_misc"
    root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if command -v update-binfmts >/dev/null && [ -d /var/lib/binfmts ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-arm ]; then
    if [ -e /var/lib/binfmts/qemu-arm ]; then
        say "loading the distro's qemu binfmt handlers (update-binfmts --enable)"
        root update-binfmts --enable >/dev/null 2>&1 || true
    fi
elif [ -d /usr/lib/binfmt.d ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-arm ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    say "loading binfmt.d handlers (systemctl restart systemd-binfmt)"
    root systemctl restart systemd-binfmt || true
fi

# ---- rootless networking: /dev/net/tun must be usable by users (udev makes it 0666) -------------
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != "666" ]; then
    say "chmod 0666 /dev/net/tun (what udev does on a normal boot; slirp4netns needs it)"
    root chmod 0666 /dev/net/tun
fi

# ---- the user -------------------------------------------------------------------------------------
if [ "$CREATE_USER" -eq 1 ] && ! id "$TARGET_USER" >/dev/null 2>&1; then
    say "creating user $TARGET_USER"
    root useradd -m -s /bin/bash "$TARGET_USER"
fi
if ! id "$TARGET_USER" >/dev/null 2>&1; then
    echo "error: user $TARGET_USER does not exist (add --create-user)" >&2; exit 2
fi
TUID=$(id -u "$TARGET_USER")
if [ "$TUID" -ne 0 ]; then
    for f in /etc/subuid /etc/subgid; do
        if ! grep -q "^$TARGET_USER:" "$f" 2>/dev/null && ! grep -q "^$TUID:" "$f" 2>/dev/null; then
            # pick a range past every existing one
            start=$(awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}' "$f" 2>/dev/null || echo 100000)
            say "adding $TARGET_USER:$start:65536 to $f"
            echo "$TARGET_USER:$start:65536" | root tee -a "$f" >/dev/null
        fi
    done
    # no logind here → no /run/user/UID; podman wants a private runtime dir
    if [ ! -d "/run/user/$TUID" ]; then
        say "creating /run/user/$TUID (no logind on this host)"
        root install -d -m 0700 -o "$TUID" -g "$(id -g "$TARGET_USER")" "/run/user/$TUID"
    fi
fi

as_user() {
    if [ "$(id -u)" -eq "$TUID" ]; then "$@"
    elif [ "$(id -u)" -eq 0 ]; then runuser -u "$TARGET_USER" -- "$@"
    else sudo -u "$TARGET_USER" "$@"; fi
}
HOME_DIR=$(getent passwd "$TARGET_USER" | cut -d: -f6)
CONF_DIR="$HOME_DIR/.config/containers"
CGROUP2=0
[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = "cgroup2fs" ] && CGROUP2=1

if [ "$TUID" -ne 0 ]; then
    as_user mkdir -p "$CONF_DIR"
    if [ ! -e "$CONF_DIR/storage.conf" ]; then
        if [ -d "$HOME_DIR/.local/share/containers/storage/vfs" ]; then
            say "WARNING: $TARGET_USER already has a vfs store; switching needs 'podman system reset' (deletes images)"
        else
            say "writing $CONF_DIR/storage.conf (overlay: container starts in 0.2 s instead of 3-4 s with vfs)"
            as_user sh -c "printf '[storage]\ndriver = \"overlay\"\n' > '$CONF_DIR/storage.conf'"
        fi
    fi
    if [ "$CGROUP2" -eq 0 ] && ! grep -qs '^runtime *= *"runc"' "$CONF_DIR/containers.conf"; then
        say "writing $CONF_DIR/containers.conf (runc + cgroupfs: this host is not pure cgroup v2, crun would fail)"
        as_user sh -c "printf '[containers]\n\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n' > '$CONF_DIR/containers.conf'"
    fi
fi
say "done for user $TARGET_USER (uid $TUID, cgroup v$([ $CGROUP2 -eq 1 ] && echo 2 || echo 1/hybrid))"

if [ "$DEMO" -eq 1 ]; then
    here="$(cd "$(dirname "$0")/.." && pwd)"
    say "installing podrepro with pipx and reproducing the example's 32-bit bug on arm"
    as_user pipx install --force "$here" >/dev/null
    run_demo() { as_user env PATH="$HOME_DIR/.local/bin:$PATH" sh -c "cd '$here/examples/wordsize' && $1"; }
    run_demo "podrepro doctor arm"
    set +e
    run_demo "podrepro build arm >/dev/null && podrepro test arm"
    rc=$?
    set -e
    if [ "$rc" -eq 8 ]; then
        # ctest's exit code when tests fail: the bug, reproduced (they pass natively)
        say "reproduced: the example's tests fail on 32-bit ARM (sizeof(long) = 4, 32-bit time_t); they pass on x86_64"
        say "next: cd examples/wordsize && podrepro shell arm"
    else
        say "the demo did not reproduce the failure (podrepro test arm exited $rc)"
        exit 1
    fi
fi
