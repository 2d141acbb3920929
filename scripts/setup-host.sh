#!/usr/bin/env bash
# Prepare a Debian/Ubuntu or Fedora host for podrepro. Idempotent: run it again any time.
#
#   scripts/setup-host.sh [--user NAME] [--create-user] [--no-install] [--demo] [--detect]
#
# System part (via sudo when not root): installs podman, buildah, qemu-user-static, mmdebstrap,
# uidmap and friends; mounts binfmt_misc and loads the distro's handlers where no init system did
# it (containers/VMs without systemd); makes /dev/net/tun usable for rootless networking the way
# udev does on a normal boot. It never touches the cgroup mounts.
# User part (as that user): writes ~/.config/containers/{storage,containers}.conf ONLY where this
# host needs it (overlay storage before the first podman use; runc + cgroupfs on hosts that are
# not pure cgroup v2). Every change is printed; nothing is changed twice. --detect prints the
# distro family (from /etc/os-release) and the packages it would install, and changes nothing.
set -euo pipefail

TARGET_USER="${SUDO_USER:-$(id -un)}"
CREATE_USER=0
INSTALL=1
DEMO=0
DETECT=0
while [ $# -gt 0 ]; do
    case "$1" in
        --detect) DETECT=1; shift ;;
        --user) TARGET_USER="$2"; shift 2 ;;
        --create-user) CREATE_USER=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        --demo) DEMO=1; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf 'setup-host: %s\n' "$*"; }
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
root() { "${SUDO[@]}" "$@"; }

# ---- which distro ----------------------------------------------------------------------------
# From /etc/os-release (ID, then ID_LIKE), not from which package tools exist: Fedora's mmdebstrap
# package pulls apt in, so "apt-get exists" would send a second run down the Debian branch.
# PODREPRO_OS_RELEASE points at another file (the unit tests' fixtures).
distro_family() {
    local f="${PODREPRO_OS_RELEASE:-/etc/os-release}" id="" like="" w
    if [ -r "$f" ]; then  # read, never sourced: KEY=value, the value maybe quoted
        id=$(sed -n 's/^ID=["'"'"']\{0,1\}\([^"'"'"']*\).*/\1/p' "$f" | head -n 1)
        like=$(sed -n 's/^ID_LIKE=["'"'"']\{0,1\}\([^"'"'"']*\).*/\1/p' "$f" | head -n 1)
    fi
    for w in $id $like; do
        case "$w" in
            debian|ubuntu) echo debian; return ;;
            fedora|rhel|centos) echo fedora; return ;;
        esac
    done
    if command -v dnf >/dev/null; then echo fedora
    elif command -v apt-get >/dev/null; then echo debian
    else echo unknown
    fi
}
FAMILY=$(distro_family)
DEBIAN_PKGS=(podman buildah skopeo runc crun conmon uidmap slirp4netns fuse-overlayfs
             catatonit qemu-user-static binfmt-support mmdebstrap debian-archive-keyring arch-test
             python3-venv python3-pip pipx sudo)
# Fedora: only the qemu-user-static subpackages podrepro's architectures need (arm/armel, mips*,
# aarch64, ppc64el, s390x, riscv64), not the metapackage with every emulator; dpkg for the
# host-dpkg installer (the host's dpkg unpacks base images); gcc + glibc-static for the zero-sudo
# helper that is compiled on first use
FEDORA_PKGS=(podman buildah skopeo crun conmon catatonit shadow-utils-subid passt
             qemu-user-static-arm qemu-user-static-mips qemu-user-static-aarch64 qemu-user-static-ppc
             qemu-user-static-s390x qemu-user-static-riscv mmdebstrap dpkg debian-keyring
             gcc glibc-static python3-pip pipx)
if [ "$DETECT" -eq 1 ]; then
    case "$FAMILY" in
        debian) echo "debian: ${DEBIAN_PKGS[*]}" ;;
        fedora) echo "fedora: ${FEDORA_PKGS[*]}" ;;
        *) echo "unknown" ;;
    esac
    exit 0
fi

# ---- system packages -------------------------------------------------------------------------
if [ "$INSTALL" -eq 1 ]; then
    if [ "$FAMILY" = debian ]; then
        PKGS=("${DEBIAN_PKGS[@]}")
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
    elif [ "$FAMILY" = fedora ]; then
        PKGS=("${FEDORA_PKGS[@]}")
        missing=()
        for p in "${PKGS[@]}"; do rpm -q "$p" >/dev/null 2>&1 || missing+=("$p"); done
        if [ ${#missing[@]} -gt 0 ]; then
            say "installing: ${missing[*]}"
            root dnf install -y "${missing[@]}"
        else
            say "packages: all present"
        fi
    else
        echo "error: not a Debian/Ubuntu or Fedora host (/etc/os-release); install podman, buildah, qemu-user-static and mmdebstrap by hand" >&2
        exit 1
    fi
fi

# ---- binfmt_misc (what systemd does at boot; no-op on a normal host) ----------------------------
# root's tools live in /usr/sbin, which a user's PATH lacks: look there by path, not with `command -v`
sbin_tool() {
    local d
    for d in /usr/sbin /sbin /usr/bin /bin; do
        if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
    done
    return 1
}
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    say "mounting binfmt_misc on /proc/sys/fs/binfmt_misc"
    root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
# Load the distro's handlers only when nothing loaded any (a host without an init system, or a
# freshly mounted binfmt_misc): a handler an admin disabled on purpose stays disabled, and the
# demo below asks for podrepro's own registration only for what is still missing.
if ! ls /proc/sys/fs/binfmt_misc 2>/dev/null | grep -q '^qemu-'; then
    if UPDATE_BINFMTS=$(sbin_tool update-binfmts) && [ -e /var/lib/binfmts/qemu-arm ]; then
        say "loading the distro's qemu binfmt handlers ($UPDATE_BINFMTS --enable)"
        if ! out=$(root "$UPDATE_BINFMTS" --enable 2>&1); then
            say "WARNING: $UPDATE_BINFMTS --enable failed: $(printf '%s\n' "$out" | tail -n 1)"
        fi
    elif [ -d /usr/lib/binfmt.d ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        say "loading binfmt.d handlers (systemctl restart systemd-binfmt)"
        if ! root systemctl restart systemd-binfmt; then
            say "WARNING: systemctl restart systemd-binfmt failed (see: journalctl -u systemd-binfmt)"
        fi
    fi
    if ls /proc/sys/fs/binfmt_misc 2>/dev/null | grep -q '^qemu-'; then
        say "binfmt handlers loaded: $(ls /proc/sys/fs/binfmt_misc | grep '^qemu-' | tr '\n' ' ')"
    else
        say "no qemu binfmt handler is loaded (podrepro doctor says what to do)"
    fi
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
    BIN="$HOME_DIR/.local/bin"
    say "installing podrepro with pipx (into $BIN)"
    if ! out=$(as_user pipx install --force "$here" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "error: pipx install failed (see above)" >&2
        exit 1
    fi
    # the one PATH hint (pipx's own warning is not shown): how to get `podrepro` on PATH
    if [ "$(id -u)" -eq "$TUID" ]; then USER_PATH="$PATH"; else USER_PATH=""; fi
    case ":$USER_PATH:" in
        *":$BIN:"*) ;;
        *)
            if grep -qs '\.local/bin' "$HOME_DIR/.profile"; then
                say "podrepro is in $BIN, not on this shell's PATH yet: log in again (your ~/.profile adds it) or run: export PATH=\"$BIN:\$PATH\""
            else
                say "podrepro is in $BIN, which is not on your PATH: run 'pipx ensurepath' and open a new shell"
            fi ;;
    esac
    demo_dir="$here/examples/wordsize"
    run_demo() { as_user env PATH="$BIN:$PATH" sh -c "cd '$demo_dir' && $1"; }
    say "reproducing the example's 32-bit bug on arm (in $demo_dir)"
    if ! run_demo "podrepro doctor arm"; then
        # the one-time privileged step, only now that a handler is missing: podrepro shows the
        # exact commands, then runs them (through sudo when not root)
        say "registering a binfmt handler for arm (the one privileged step; podrepro binfmt register arm --yes)"
        if [ "$(id -u)" -eq 0 ]; then
            "$BIN/podrepro" binfmt register arm --yes
        else
            run_demo "podrepro binfmt register arm --yes"
        fi
        run_demo "podrepro doctor arm"
    fi
    set +e
    run_demo "podrepro test arm"
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
