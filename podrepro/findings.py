"""A line of a report (a Finding: what was checked, how bad, what was found, the fix) and the
distro that decides how its fix is spelled. Shared by binfmt analysis, doctor and privbinfmt."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Severity = Literal["ok", "info", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    """One line of a report: what was checked, how bad it is, what was found, how to fix it."""

    check: str                  # stable id, e.g. "binfmt.handler", "podman", "storage-driver"
    severity: Severity
    message: str
    fix: str | None = None      # the exact command (or config edit) that fixes it
    arch: str | None = None     # canonical alias when the finding is about one architecture

    def to_dict(self) -> dict[str, object]:
        return {"check": self.check, "arch": self.arch, "severity": self.severity,
                "message": self.message, "fix": self.fix}


# logical package -> {family: package name}
_PACKAGES: dict[str, dict[str, str]] = {
    "qemu-user-static": {"debian": "qemu-user-static", "fedora": "qemu-user-static"},
    "podman": {"debian": "podman", "fedora": "podman"},
    "mmdebstrap": {"debian": "mmdebstrap", "fedora": "mmdebstrap"},
    "debian-archive-keyring": {"debian": "debian-archive-keyring", "fedora": "debian-keyring"},
    "uidmap": {"debian": "uidmap", "fedora": "shadow-utils"},
    "runc": {"debian": "runc", "fedora": "runc"},
    "sudo": {"debian": "sudo", "fedora": "sudo"},
}


@dataclass(frozen=True)
class Distro:
    id: str                                            # os-release ID ("debian", "fedora", ...)
    family: Literal["debian", "fedora", "unknown"]
    root: bool = False                                 # fixes for root need no "sudo "

    @property
    def sudo(self) -> str:
        return "" if self.root else "sudo "

    def install(self, *packages: str) -> str:
        """The install command for logical package names, in this distro's spelling."""
        if self.family == "unknown":
            names = " ".join(packages)
            return f"install {names} with your distribution's package manager"
        names = " ".join(_PACKAGES.get(p, {}).get(self.family, p) for p in packages)
        tool = "apt-get install -y" if self.family == "debian" else "dnf install -y"
        return f"{self.sudo}{tool} {names}"


def detect_distro(os_release: str = "/etc/os-release", *, root: bool | None = None) -> Distro:
    """Read os-release (ID and ID_LIKE) into apt-family vs dnf-family; never raises."""
    fields: dict[str, str] = {}
    try:
        with open(os_release, encoding="utf-8", errors="replace") as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep:
                    fields[k] = v.strip().strip("\"'")
    except OSError:
        pass
    did = fields.get("ID", "unknown").lower()
    like = {did, *fields.get("ID_LIKE", "").lower().split()}
    family: Literal["debian", "fedora", "unknown"] = "unknown"
    if like & {"debian", "ubuntu"}:
        family = "debian"
    elif like & {"fedora", "rhel", "centos"}:
        family = "fedora"
    return Distro(did, family, os.geteuid() == 0 if root is None else root)
