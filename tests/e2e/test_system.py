"""Issue 21, full-system second opinion: ``run --system`` boots the podrepro image as a qemu-system
VM of the target with Debian's own kernel of that architecture (no qemu-user), rootless."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import example, no_leftover_containers, podrepro

pytestmark = pytest.mark.e2e


def _qemu_system_left() -> str:
    return subprocess.run(["pgrep", "-u", str(os.getuid()), "-a", "qemu-system"],
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize("arch, machine, flavour", [("arm", "armv7l", "-armmp-lpae"), ("mips", "mips", "-4kc-malta")])
def test_run_system_boots_the_targets_own_kernel(tmp_path: Path, arch: str, machine: str, flavour: str) -> None:
    p = example("wordsize", tmp_path)
    r = podrepro("run", "--system", arch, "--profile", "base", "--", "sh", "-c",
                 'uname -m; uname -r; echo "emulated=$PODREPRO_EMULATED"; exit 7', cwd=p)
    assert r.returncode == 7, r.stdout + r.stderr  # the command's exit status, through the VM
    lines = r.stdout.split()
    assert lines[0] == machine and lines[1].endswith(flavour), r.stdout  # a real kernel of the target
    assert "emulated=0" in lines, r.stdout
    assert f"booting {arch} (qemu-system-" in r.stderr and "Debian kernel vmlinuz-" in r.stderr
    assert _qemu_system_left() == "" and no_leftover_containers() == []


def test_test_system_builds_and_tests_inside_the_vm(tmp_path: Path) -> None:
    p = example("wordsize", tmp_path)
    r = podrepro("test", "--system", "arm", cwd=p)
    assert r.returncode == 8, r.stdout + r.stderr
    assert "podrepro: 3 tests ran on arm, 2 failed: checksum, y2038" in r.stderr, r.stderr
    assert "\x1b[" not in r.stdout  # the harness's output through a pipe, as in a container
    assert (p / "build-podrepro-arm" / "podrepro-junit.xml").is_file()  # the results came back
    assert _qemu_system_left() == "" and no_leftover_containers() == []


def test_system_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    p = example("wordsize", tmp_path)
    r = podrepro("run", "--system", "arm", "--tmpfs-tree", "--", "true", cwd=p)
    assert r.returncode == 2 and "--tmpfs-tree with --system: not supported" in r.stderr, r.stderr
    r = podrepro("run", "--system", "i386", "--", "true", cwd=p)
    assert r.returncode == 2 and "--system has no VM for i386" in r.stderr, r.stderr
