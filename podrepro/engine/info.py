"""What podman says about itself and the host (``podman info``): for doctor, and for the OCI
runtime an OCI-runtime wrapper must exec."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from podrepro.engine import process
from podrepro.engine.commands import PODMAN
from podrepro.errors import HostNotReady

Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


@dataclass(frozen=True)
class PodmanInfo:
    present: bool
    version: str | None = None
    rootless: bool | None = None
    cgroup_version: str | None = None
    oci_runtime: str | None = None
    storage_driver: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        if not self.present:
            return {"present": False}
        return {"present": True, "version": self.version, "rootless": self.rootless,
                "cgroup_version": self.cgroup_version, "oci_runtime": self.oci_runtime,
                "storage_driver": self.storage_driver, "error": self.error}


def podman_info(which: Callable[[str], str | None], run: Runner) -> PodmanInfo:
    """The podman on PATH, as ``podman info`` describes it; never raises (doctor reports)."""
    if which("podman") is None:
        return PodmanInfo(False)
    try:
        cp = run(["podman", "info", "--format", "json"], timeout=60)
    except subprocess.TimeoutExpired:
        return PodmanInfo(True, error="'podman info' did not answer within 60 s")
    except Exception as e:  # the chokepoint's command-not-found, an OSError: say it, never crash
        return PodmanInfo(True, error=str(e))
    if cp.returncode != 0:
        return PodmanInfo(True, error=process.last_line(cp.stderr or b"", f"exit {cp.returncode}"))
    try:
        d = json.loads(cp.stdout or b"{}")
        host = d.get("host", {})
        return PodmanInfo(
            True,
            version=str(d.get("version", {}).get("Version") or "") or None,
            rootless=bool(host.get("security", {}).get("rootless")),
            cgroup_version=host.get("cgroupVersion"),
            oci_runtime=(host.get("ociRuntime") or {}).get("name"),
            storage_driver=(d.get("store") or {}).get("graphDriverName"),
        )
    except (ValueError, AttributeError, TypeError) as e:
        return PodmanInfo(True, error=f"unreadable 'podman info' output: {e}")


def oci_runtime_path(*, run: Runner | None = None) -> str:
    """The runtime podman itself uses (the wrapper must exec exactly that one)."""
    cp = (run or process.run)([PODMAN, "info", "--format", "{{.Host.OCIRuntime.Path}}"], timeout=60)
    path = (cp.stdout or b"").decode().strip()
    if cp.returncode != 0 or not path.startswith("/"):
        raise HostNotReady("cannot tell which OCI runtime podman uses ('podman info' failed)",
                           hint="run 'podrepro doctor'")
    return path
