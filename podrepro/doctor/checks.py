"""The checks: each a small function from what ``env`` read to Findings (ok / info / warn /
fail, what was found, the exact command that fixes it)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from podrepro.arches import Arch
from podrepro.binfmt.analysis import ArchReport
from podrepro.doctor.env import DoctorEnv, cgroup_version, read_text, read_toml, subid_count
from podrepro.engine.commands import SELINUX_OPT
from podrepro.engine.info import PodmanInfo
from podrepro.findings import Distro, Finding

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def _printf_to(path: str, lines: Sequence[str]) -> str:
    d = os.path.dirname(path)
    args = " ".join(shlex.quote(x) for x in lines)
    return f"mkdir -p {shlex.quote(d)} && printf '%s\\n' {args} > {shlex.quote(path)}"


def _conf_fix(path: str, table: str, settings: Sequence[tuple[str, str]]) -> str:
    """A command that writes the config when the file is new, else the exact edit to make."""
    kv = [f'{k} = "{v}"' for k, v in settings]
    if not os.path.exists(path):
        return _printf_to(path, [f"[{table}]", *kv])
    return f"edit {path}: in its [{table}] table set " + ", ".join(kv)


def check_kernel(env: DoctorEnv) -> list[Finding]:
    from podrepro.binfmt.qemu import MIN_KERNEL, kernel_supported

    if kernel_supported(env.kernel_release):
        msg = (f"kernel {env.kernel_release}: a user namespace can mount its own binfmt_misc "
               "(zero-sudo emulation possible)")
    else:
        msg = (f"kernel {env.kernel_release}: no private binfmt_misc in user namespaces "
               f"(needs >= {MIN_KERNEL[0]}.{MIN_KERNEL[1]}); handlers must be registered on the host")
    return [Finding("kernel", "info", msg)]


def check_podman(env: DoctorEnv, info: PodmanInfo, distro: Distro) -> list[Finding]:
    if not info.present:
        return [Finding("podman", "fail", "podman is not installed (or not on PATH)",
                        distro.install("podman"))]
    if info.error:
        fix = distro.install("uidmap") if "uidmap" in info.error else "podman info  # shows the full error"
        return [Finding("podman", "fail", f"podman is installed but 'podman info' fails: {info.error}", fix)]
    out = [Finding("podman", "ok", f"podman {info.version}")]
    if env.euid == 0 or info.rootless is False:
        out.append(Finding("podman.rootless", "warn",
                           "running as root: podrepro is meant for rootless podman as your normal user",
                           "run podrepro as your normal (non-root) user"))
    else:
        out.append(Finding("podman.rootless", "ok", "rootless"))
    return out


def check_cgroup_runtime(env: DoctorEnv, info: PodmanInfo, distro: Distro) -> list[Finding]:
    cg = cgroup_version(read_text(env.mountinfo))
    if cg is None and info.cgroup_version:
        cg = info.cgroup_version
    out = [Finding("cgroup", "ok" if cg else "info", f"cgroups {cg or 'unknown'}")]
    rt = info.oci_runtime
    if not info.present or info.error or rt is None:
        return out
    if rt == "crun" and cg != "v2":
        conf = os.path.join(env.containers_dir, "containers.conf")
        fix = _conf_fix(conf, "engine", [("runtime", "runc"), ("cgroup_manager", "cgroupfs"),
                                          ("events_logger", "file")])
        if env.which("runc") is None:
            fix = f"{distro.install('runc')} && {fix}"
        out.append(Finding(
            "oci-runtime", "fail",
            f"OCI runtime crun on a cgroups {cg} host: every container fails "
            "('cgroups in hybrid mode not supported'); use runc", fix))
    else:
        out.append(Finding("oci-runtime", "ok", f"OCI runtime {rt}"))
    return out


def check_storage(env: DoctorEnv, info: PodmanInfo) -> list[Finding]:
    drv = info.storage_driver
    if not info.present or info.error or drv is None:
        return []
    if drv == "vfs":
        conf = os.path.join(env.containers_dir, "storage.conf")
        fix = _conf_fix(conf, "storage", [("driver", "overlay")]) + " && podman system reset"
        return [Finding(
            "storage-driver", "warn",
            "storage driver vfs: every container start copies the image (seconds each); switching to "
            "overlay needs 'podman system reset', which deletes this user's images and containers", fix)]
    return [Finding("storage-driver", "ok", f"storage driver {drv}")]


def check_subids(env: DoctorEnv, distro: Distro) -> list[Finding]:
    if env.euid == 0:
        return [Finding("subuid", "info", "running as root: subordinate ids not needed")]
    out: list[Finding] = []
    fix = (f"{distro.sudo}usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "
           f"{shlex.quote(env.user)}")
    for kind in ("subuid", "subgid"):
        n = subid_count(read_text(env.path(f"/etc/{kind}")), env.user, env.euid)
        if n == 0:
            out.append(Finding(kind, "fail", f"no /etc/{kind} range for {env.user}: rootless podman "
                                             "cannot map the container's users", fix))
        elif n < 65536:
            out.append(Finding(kind, "warn", f"/etc/{kind} gives {env.user} only {n} ids (< 65536): "
                                             "images with high uids fail to unpack", fix))
        else:
            out.append(Finding(kind, "ok", f"/etc/{kind}: {n} ids for {env.user}"))
    if env.which("newuidmap") is None:
        out.append(Finding("subuid", "fail", "newuidmap/newgidmap missing", distro.install("uidmap")))
    return out


def check_network(env: DoctorEnv, distro: Distro) -> list[Finding]:
    if env.euid == 0:
        return [Finding("network", "info", "running as root: rootless networking not checked")]
    conf = os.path.join(env.containers_dir, "containers.conf")
    netns = (read_toml(conf).get("containers") or {}).get("netns")
    if netns == "host":
        return [Finding("network", "ok", f"netns = \"host\" in {conf}: no /dev/net/tun needed")]
    tun = env.path("/dev/net/tun")
    if os.path.exists(tun) and os.access(tun, os.R_OK | os.W_OK):
        return [Finding("network", "ok", "/dev/net/tun usable (rootless networking)")]
    why = "missing" if not os.path.exists(tun) else "not readable/writable by you"
    return [Finding(
        "network", "fail",
        f"/dev/net/tun {why}: rootless containers cannot get a network (slirp4netns/pasta)",
        f"{distro.sudo}chmod 0666 /dev/net/tun  # what udev does; or set netns = \"host\" in [containers] of {conf}")]


def check_selinux(env: DoctorEnv) -> list[Finding]:
    text = read_text(env.path("/sys/fs/selinux/enforce"))
    mode = "disabled" if text is None else ("enforcing" if text.strip() == "1" else "permissive")
    note = (f": podrepro's containers run with --security-opt {SELINUX_OPT} (unconfined by SELinux, as toolbox and "
            "distrobox run theirs) instead of relabelling your source tree") if mode == "enforcing" else ""
    return [Finding("selinux", "ok", f"SELinux {mode}{note}")]


def check_bootstrap_tools(env: DoctorEnv, distro: Distro) -> list[Finding]:
    out: list[Finding] = []
    mm = env.which("mmdebstrap")
    out.append(Finding("mmdebstrap", "ok", f"mmdebstrap at {mm}") if mm else
               Finding("mmdebstrap", "fail", "mmdebstrap missing: images cannot be bootstrapped",
                       distro.install("mmdebstrap")))
    kr = env.path(KEYRING)
    out.append(Finding("debian-archive-keyring", "ok", f"{KEYRING} present") if os.path.exists(kr) else
               Finding("debian-archive-keyring", "fail",
                       f"{KEYRING} missing: mmdebstrap cannot verify the Debian archive",
                       distro.install("debian-archive-keyring")))
    return out


def check_qemu(env: DoctorEnv, reports: Sequence[ArchReport], distro: Distro) -> list[Finding]:
    from podrepro.binfmt.qemu import find_static_qemu

    found: dict[str, str] = {}
    missing_needed: list[str] = []
    missing: list[str] = []
    for r in reports:
        q = r.arch.qemu
        if q is None or q in found or q in missing:
            continue
        path = find_static_qemu(q, which=env.which, root=env.root)
        if path:
            found[q] = path
        else:
            missing.append(q)
            if not r.usable:
                missing_needed.append(q)
    if not found and not missing:
        return []
    fix = distro.install("qemu-user-static")
    if missing_needed:
        return [Finding("qemu-user-static", "fail",
                        f"no static qemu for {', '.join(missing_needed)}: nothing to register a handler with", fix)]
    if missing:
        return [Finding("qemu-user-static", "warn",
                        f"no static qemu for {', '.join(missing)} (its current handler works, but cannot be "
                        "re-registered)", fix)]
    return [Finding("qemu-user-static", "ok", "static qemu: " + ", ".join(sorted(set(found.values()))))]


def check_fidelity(arches: Sequence[Arch], project_root: Path, mountinfo: str | None = None) -> list[Finding]:
    """The qemu-user artefact classes this host's setup can trigger for each architecture (the
    project's filesystem, the architecture's word size): info lines with the mitigation."""
    from podrepro.fidelity.host import triggers

    out = []
    for arch in arches:
        for a, why in triggers(arch, project_root, mountinfo):
            out.append(Finding("fidelity", "info", f"{arch.alias}: qemu-user artefact '{a.id}' possible "
                               f"({why}): {a.title}", a.mitigation, arch=arch.alias))
    return out
