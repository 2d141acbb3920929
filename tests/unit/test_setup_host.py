"""scripts/setup-host.sh decides the distro from /etc/os-release (fixtures here), not from which
package tools happen to exist: Fedora's mmdebstrap pulls apt in, and a second run must not take
the Debian branch. --detect prints the family and its package list and changes nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "setup-host.sh"

OS_RELEASE = {
    "debian": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    "ubuntu": 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
    "fedora": 'NAME="Fedora Linux"\nVERSION="41 (Workstation Edition)"\nID=fedora\nVERSION_ID=41\n',
    "rocky": "NAME='Rocky Linux'\nID='rocky'\nID_LIKE=\"rhel centos fedora\"\n",
}


def detect(tmp_path: Path, text: str, path: str = "/usr/bin:/bin") -> tuple[str, list[str]]:
    f = tmp_path / "os-release"
    f.write_text(text)
    bash = shutil.which("bash") or "/bin/bash"
    cp = subprocess.run([bash, str(SCRIPT), "--detect"], capture_output=True, text=True, timeout=30,
                        env={"PATH": path, "PODREPRO_OS_RELEASE": str(f), "HOME": str(tmp_path)})
    assert cp.returncode == 0, cp.stderr
    family, _, pkgs = cp.stdout.strip().partition(": ")
    return family, pkgs.split()


@pytest.mark.parametrize("name, family", [("debian", "debian"), ("ubuntu", "debian"), ("fedora", "fedora"),
                                          ("rocky", "fedora")])
def test_family_comes_from_os_release(tmp_path: Path, name: str, family: str) -> None:
    # this host has apt-get on PATH: a Fedora os-release must still give the Fedora branch
    assert detect(tmp_path, OS_RELEASE[name])[0] == family


def test_fedora_packages(tmp_path: Path) -> None:
    _, pkgs = detect(tmp_path, OS_RELEASE["fedora"])
    # the per-architecture emulators podrepro's table needs, not the metapackage with all of them
    assert "qemu-user-static" not in pkgs
    assert {"qemu-user-static-arm", "qemu-user-static-mips", "qemu-user-static-aarch64", "qemu-user-static-s390x",
            "qemu-user-static-ppc", "qemu-user-static-riscv"} <= set(pkgs)
    assert {"dpkg", "mmdebstrap", "podman", "buildah", "passt"} <= set(pkgs)  # dpkg: the host-dpkg installer


def test_debian_packages(tmp_path: Path) -> None:
    _, pkgs = detect(tmp_path, OS_RELEASE["debian"])
    assert {"qemu-user-static", "binfmt-support", "mmdebstrap", "uidmap", "podman", "buildah"} <= set(pkgs)


def test_os_release_is_read_not_sourced(tmp_path: Path) -> None:
    marker = tmp_path / "sourced"
    family, _ = detect(tmp_path, f'ID=fedora\n$(touch {marker})\ntouch {marker}\n')
    assert family == "fedora" and not marker.exists()
