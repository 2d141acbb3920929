"""The doctor report: every check (``checks``), the binfmt analysis and the probes, in one report.

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
                  "binfmt.flag-c" | "binfmt.shadowing" | "binfmt.probe" | "fidelity" | "internal",
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from podrepro.arches import Arch
from podrepro.binfmt.analysis import ArchReport
from podrepro.doctor import checks
from podrepro.doctor.env import DoctorEnv, podman_info
from podrepro.doctor.probe import run_probe
from podrepro.engine.info import PodmanInfo
from podrepro.findings import Distro, Finding

SCHEMA_VERSION = 1


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
        from podrepro.binfmt.qemu import kernel_supported

        env = self.env
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
                "private_binfmt_possible": env is not None and kernel_supported(env.kernel_release),
            },
            "podman": self.podman.to_dict(),
            "arches": arches,
            "checks": [f.to_dict() for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _guard(name: str, fn: Callable[[], list[Finding]]) -> list[Finding]:
    try:
        return fn()
    except Exception as e:  # doctor must always finish and print a report
        return [Finding("internal", "fail", f"check {name} crashed: {type(e).__name__}: {e}",
                        "please report this as a podrepro bug")]


def _project_root() -> Path:
    from podrepro.config import find_project_root

    return find_project_root(Path.cwd())[0]


def run_doctor(arches: Sequence[Arch], env: DoctorEnv | None = None,
               distro: Distro | None = None) -> DoctorReport:
    from podrepro import elfprobe
    from podrepro.binfmt.analysis import analyze, global_findings
    from podrepro.binfmt.state import read_state
    from podrepro.findings import detect_distro

    env = env or DoctorEnv.from_host()
    distro = distro or detect_distro(env.path("/etc/os-release"), root=env.euid == 0)
    findings: list[Finding] = []
    findings += _guard("kernel", lambda: checks.check_kernel(env))
    info = podman_info(env)
    findings += _guard("podman", lambda: checks.check_podman(env, info, distro))
    findings += _guard("cgroup", lambda: checks.check_cgroup_runtime(env, info, distro))
    findings += _guard("storage", lambda: checks.check_storage(env, info))
    findings += _guard("subids", lambda: checks.check_subids(env, distro))
    findings += _guard("network", lambda: checks.check_network(env, distro))
    findings += _guard("selinux", lambda: checks.check_selinux(env))
    findings += _guard("tools", lambda: checks.check_bootstrap_tools(env, distro))

    state = read_state(env.binfmt_dir)
    findings += global_findings(state, distro)
    reports = [analyze(state, a, distro, root=env.root) for a in arches]
    findings += _guard("qemu", lambda: checks.check_qemu(env, reports, distro))
    findings += _guard("fidelity", lambda: checks.check_fidelity(arches, _project_root()))
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
