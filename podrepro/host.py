"""``podrepro doctor``: is this host ready to run foreign-architecture containers?

Each check is a small function returning Findings (ok / info / warn / fail, what was found, the
exact command that fixes it). Everything a check reads — paths, the user, PATH lookups, the
subprocess runner — comes from a ``DoctorEnv`` so unit tests run every check against fakes.
External commands (``podman info``, the probe binaries) go through ``podrepro.engine.process``.

JSON output (``podrepro doctor --json``), schema version 1. Stable: fields are only ever added;
a removal or change of meaning bumps ``version``::

    {
      "version": 1,                       # this schema's version
      "podrepro": "0.1.0",                # podrepro's version
      "ok": false,                        # true iff no check has severity "fail"
      "exit_code": 1,                     # 0 when ok, else 1 (same as the process exit code)
      "host": {
        "kernel": "6.18.44", "distro": "debian", "distro_family": "debian" | "fedora" | "unknown",
        "user": "alice", "euid": 1000,
        "private_binfmt_possible": true   # kernel >= 6.7: a user namespace may mount its own binfmt_misc
      },
      "podman": {"present": true, "version": "4.3.1", "rootless": true, "cgroup_version": "v1",
                 "oci_runtime": "runc", "storage_driver": "overlay"} | {"present": false},
      "arches": {
        "<alias>": {
          "arch": "mips64el", "qemu": "mips64el" | null,
          "usable": false,                                   # handler fit for containers and probe not failed
          "entry": {name, enabled, interpreter, flags, offset, magic (hex), mask (hex|null),
                    extension, podrepro (bool)} | null,      # the entry the kernel would use
          "matching": ["qemu-mips64el", ...],                # every matching entry, newest first
          "interpreter": {path, resolved, exists, static, error} | null,
          "probe": "ok" | "failed" | "skipped" | "unsupported"
        }, ...
      },
      "checks": [
        {"check": "podman" | "podman.rootless" | "cgroup" | "oci-runtime" | "storage-driver" |
                  "subuid" | "subgid" | "network" | "selinux" | "mmdebstrap" |
                  "debian-archive-keyring" | "qemu-user-static" | "kernel" | "binfmt.mounted" |
                  "binfmt.enabled" | "binfmt.handler" | "binfmt.interpreter" | "binfmt.flag-f" |
                  "binfmt.flag-c" | "binfmt.shadowing" | "binfmt.probe" | "internal",
         "arch": "<alias>" | null, "severity": "ok" | "info" | "warn" | "fail",
         "message": "what was found", "fix": "exact command" | null}, ...
      ]
    }

Exit codes: 0 = everything the requested architectures need is usable (warnings allowed);
1 = at least one "fail" line. ``doctor`` never raises: a check that crashes becomes an
``internal`` fail line.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from podrepro.arches import Arch
from podrepro.binfmt.analysis import ArchReport
from podrepro.engine.info import PodmanInfo
from podrepro.findings import Distro, Finding, Severity

SCHEMA_VERSION = 1
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PROBE_TIMEOUT = 30.0
Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


def _default_run(argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    from podrepro.engine import process

    return process.run(argv, **kw)


def _default_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


@dataclass(frozen=True)
class DoctorEnv:
    """Everything the checks look at. ``root`` prefixes host files (tests point it at a tree)."""

    binfmt_dir: str
    euid: int
    user: str
    home: str
    kernel_release: str
    root: str = "/"
    config_home: str | None = None            # XDG_CONFIG_HOME; default ~/.config
    mountinfo: str = "/proc/self/mountinfo"
    which: Callable[[str], str | None] = _default_which
    run: Runner = _default_run
    probe: bool = True                         # exec the tiny probe binaries
    probe_dir: str | None = None               # where to write them (default: a temp dir)

    def path(self, p: str) -> str:
        return os.path.join(self.root, p.lstrip("/"))

    @property
    def containers_dir(self) -> str:
        return os.path.join(self.config_home or os.path.join(self.home, ".config"), "containers")

    @classmethod
    def from_host(cls) -> DoctorEnv:
        import getpass

        from podrepro.binfmt.state import binfmt_dir

        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.geteuid())
        return cls(
            binfmt_dir=binfmt_dir(), euid=os.geteuid(), user=user,
            home=os.path.expanduser("~"), kernel_release=os.uname().release,
            config_home=os.environ.get("XDG_CONFIG_HOME") or None,
        )


@dataclass(frozen=True)
class DoctorReport:
    findings: tuple[Finding, ...]
    arches: tuple[ArchReport, ...]
    probes: dict[str, str] = field(default_factory=dict)
    podman: PodmanInfo = field(default_factory=lambda: PodmanInfo(False))
    distro: Distro | None = None
    env: DoctorEnv | None = None

    @property
    def ok(self) -> bool:
        return not any(f.severity == "fail" for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, object]:
        from podrepro import __version__
        from podrepro.binfmt.qemu import parse_kernel_version

        env = self.env
        kv = parse_kernel_version(env.kernel_release) if env else None
        arches: dict[str, object] = {}
        for r in self.arches:
            d = r.to_dict()
            d["probe"] = self.probes.get(r.arch.alias, "skipped")
            d["usable"] = r.usable and d["probe"] != "failed"  # the probe is the ground truth
            arches[r.arch.alias] = d
        return {
            "version": SCHEMA_VERSION,
            "podrepro": __version__,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "host": {
                "kernel": env.kernel_release if env else None,
                "distro": self.distro.id if self.distro else None,
                "distro_family": self.distro.family if self.distro else None,
                "user": env.user if env else None,
                "euid": env.euid if env else None,
                "private_binfmt_possible": kv is not None and kv >= (6, 7),
            },
            "podman": self.podman.to_dict(),
            "arches": arches,
            "checks": [f.to_dict() for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# ---------------------------------------------------------------------------------------------
# small readers


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _toml(path: str) -> dict[str, Any]:
    import tomllib

    text = _read(path)
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def cgroup_version(mountinfo_text: str | None) -> str | None:
    """"v2" (pure cgroup2), "hybrid" (v1 + cgroup2 at unified), "v1", or None when unknown."""
    if not mountinfo_text:
        return None
    types: dict[str, str] = {}
    for line in mountinfo_text.splitlines():
        pre, sep, post = line.partition(" - ")
        fields = pre.split()
        if not sep or len(fields) < 5:
            continue
        types[fields[4]] = post.split()[0] if post.split() else ""
    top = types.get("/sys/fs/cgroup")
    if top == "cgroup2":
        return "v2"
    if top is None:
        return None
    return "hybrid" if types.get("/sys/fs/cgroup/unified") == "cgroup2" else "v1"


def subid_count(text: str | None, user: str, uid: int) -> int:
    """Total size of the ranges /etc/subuid (or subgid) gives ``user`` (by name or number)."""
    total = 0
    for line in (text or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (user, str(uid)):
            try:
                total += int(parts[2])
            except ValueError:
                continue
    return total


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


# ---------------------------------------------------------------------------------------------
# checks


def check_kernel(env: DoctorEnv) -> list[Finding]:
    from podrepro.binfmt.qemu import parse_kernel_version

    kv = parse_kernel_version(env.kernel_release)
    if kv is not None and kv >= (6, 7):
        msg = (f"kernel {env.kernel_release}: a user namespace can mount its own binfmt_misc "
               "(zero-sudo emulation possible)")
    else:
        msg = (f"kernel {env.kernel_release}: no private binfmt_misc in user namespaces (needs >= 6.7); "
               "handlers must be registered on the host")
    return [Finding("kernel", "info", msg)]


def podman_info(env: DoctorEnv) -> PodmanInfo:
    from podrepro.engine import info

    return info.podman_info(env.which, env.run)


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
    cg = cgroup_version(_read(env.mountinfo))
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
        n = subid_count(_read(env.path(f"/etc/{kind}")), env.user, env.euid)
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
    netns = (_toml(conf).get("containers") or {}).get("netns")
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
    text = _read(env.path("/sys/fs/selinux/enforce"))
    mode = "disabled" if text is None else ("enforcing" if text.strip() == "1" else "permissive")
    note = ": bind mounts get :Z relabelling" if mode == "enforcing" else ""
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


def run_probe(env: DoctorEnv, arch: Arch) -> tuple[str, Finding]:
    """Exec a tiny static binary of ``arch`` on the host: the end-to-end proof a handler works."""
    import tempfile

    from podrepro import elfprobe

    a = arch.alias
    expected = f"podrepro-probe {a}\n".encode()
    try:
        with tempfile.TemporaryDirectory(prefix="podrepro-probe-", dir=env.probe_dir) as d:
            path = os.path.join(d, f"probe-{a}")
            with open(path, "wb") as f:
                f.write(elfprobe.build(arch, exit_code=7))
            os.chmod(path, 0o755)
            cp = env.run([path], timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "failed", Finding("binfmt.probe", "fail", f"{a}: probe binary hung for {PROBE_TIMEOUT:.0f} s",
                                 arch=a)
    except Exception as e:  # ENOEXEC (no handler after all), EACCES (noexec /tmp): report, never crash
        return "failed", Finding("binfmt.probe", "fail", f"{a}: probe binary did not run: {e}",
                                 f"podrepro binfmt register {a} --force", a)
    if cp.returncode == 7 and cp.stdout == expected:
        return "ok", Finding("binfmt.probe", "ok", f"{a}: probe binary ran under emulation", arch=a)
    return "failed", Finding(
        "binfmt.probe", "fail",
        f"{a}: probe binary gave exit {cp.returncode} and {cp.stdout[:60]!r} (expected 7 and {expected!r})",
        f"podrepro binfmt register {a} --force", a)


def _guard(name: str, fn: Callable[[], list[Finding]]) -> list[Finding]:
    try:
        return fn()
    except Exception as e:  # doctor must always finish and print a report
        return [Finding("internal", "fail", f"check {name} crashed: {type(e).__name__}: {e}",
                        "please report this as a podrepro bug")]


def run_doctor(arches: Sequence[Arch], env: DoctorEnv | None = None,
               distro: Distro | None = None) -> DoctorReport:
    from podrepro import elfprobe
    from podrepro.binfmt.analysis import analyze, global_findings
    from podrepro.binfmt.state import read_state
    from podrepro.findings import detect_distro

    env = env or DoctorEnv.from_host()
    distro = distro or detect_distro(env.path("/etc/os-release"), root=env.euid == 0)
    findings: list[Finding] = []
    findings += _guard("kernel", lambda: check_kernel(env))
    info = podman_info(env)
    findings += _guard("podman", lambda: check_podman(env, info, distro))
    findings += _guard("cgroup", lambda: check_cgroup_runtime(env, info, distro))
    findings += _guard("storage", lambda: check_storage(env, info))
    findings += _guard("subids", lambda: check_subids(env, distro))
    findings += _guard("network", lambda: check_network(env, distro))
    findings += _guard("selinux", lambda: check_selinux(env))
    findings += _guard("tools", lambda: check_bootstrap_tools(env, distro))

    state = read_state(env.binfmt_dir)
    findings += global_findings(state, distro)
    reports = [analyze(state, a, distro, root=env.root) for a in arches]
    findings += _guard("qemu", lambda: check_qemu(env, reports, distro))
    probes: dict[str, str] = {}
    for r in reports:
        if not r.arch.emulated:
            findings += r.findings
            probes[r.arch.alias] = "unsupported"
            continue
        if state.mounted and state.enabled:
            findings += r.findings
        else:  # the global line already says it; one line per arch says what it means here
            findings += [f for f in r.findings if f.check == "binfmt.handler"]
        if not elfprobe.supported(r.arch):
            probes[r.arch.alias] = "unsupported"
        elif env.probe and r.usable:
            status, f = run_probe(env, r.arch)
            probes[r.arch.alias] = status
            findings.append(f)
        else:
            probes[r.arch.alias] = "skipped"
    return DoctorReport(tuple(findings), tuple(reports), probes, info, distro, env)


def worst(findings: Sequence[Finding]) -> Severity:
    from podrepro.findings import SEVERITIES

    return max((f.severity for f in findings), key=SEVERITIES.index, default="ok")
