"""Issue 21 (first part) end to end: known qemu-user artefacts, confirmed, named, and worked around."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import example, no_leftover_containers, podrepro

pytestmark = pytest.mark.e2e


@pytest.fixture
def fidelity_project(tmp_path: Path) -> Path:
    p = example("fidelity", tmp_path)
    for arch in ("arm", "amd64"):
        r = podrepro("build", arch, cwd=p)
        assert r.returncode == 0, r.stderr
    return p


def test_readdir_cookies_fails_in_the_project_and_passes_on_a_tmpfs_copy(fidelity_project: Path) -> None:
    p = fidelity_project
    r = podrepro("run", "arm", "--", "build-podrepro-arm/lsdir", ".", cwd=p)
    assert r.returncode == 1 and "Value too large for defined data type" in r.stdout, r.stdout + r.stderr
    # its output is not a terminal: podrepro read it and names the artefact
    assert "qemu-user artefact" in r.stderr and "readdir-cookies" in r.stderr and "--tmpfs-tree" in r.stderr, r.stderr
    t = podrepro("run", "--tmpfs-tree", "arm", "--", "build-podrepro-arm/lsdir", ".", cwd=p)
    assert t.returncode == 0 and " entries in ." in t.stdout, t.stdout + t.stderr
    assert "--tmpfs-tree" in t.stderr
    # a second opinion from a real armhf kernel (the project on the guest's own filesystem)
    s = podrepro("run", "--system", "arm", "--profile", "base", "--", "build-podrepro-arm/lsdir", ".", cwd=p)
    assert s.returncode == 0 and " entries in ." in s.stdout, s.stdout + s.stderr
    # and triage says so only with that evidence
    tr = podrepro("triage", "arm", "--profile", "base", "--repeat", "1", "--cpu-models", "none", "--no-native",
                  "--system-check", "--", "build-podrepro-arm/lsdir", ".", cwd=p)
    assert tr.returncode == 0, tr.stdout + tr.stderr
    assert "arm (full-system VM)" in tr.stdout and "pass 0/1" in tr.stdout, tr.stdout
    assert "emulator artefact: fails on arm under qemu-user (evidence of readdir-cookies)" in tr.stdout, tr.stdout
    # natively (amd64) it lists the project itself
    n = podrepro("run", "amd64", "--", "build-podrepro-amd64/lsdir", ".", cwd=p)
    assert n.returncode == 0, n.stdout + n.stderr
    # a failed test names the artefact and the way around it
    ts = podrepro("test", "arm", cwd=p)
    assert ts.returncode != 0
    assert "qemu-user artefact" in ts.stderr and "readdir-cookies" in ts.stderr and "--tmpfs-tree" in ts.stderr
    assert no_leftover_containers() == []


@pytest.mark.parametrize("program, evidence", [
    ("tracer", "ptrace: Function not implemented"),
    ("cpuinfo", "cpuinfo: neon=0 x86=1"),
    ("robust", "no EOWNERDEAD"),
])
def test_each_artefact_fails_emulated_and_passes_natively(fidelity_project: Path, program: str, evidence: str) -> None:
    p = fidelity_project
    r = podrepro("run", "arm", "--", f"build-podrepro-arm/{program}", cwd=p)
    assert r.returncode == 1 and evidence in r.stdout, r.stdout + r.stderr
    if program != "cpuinfo":  # an x86 host's cpuinfo has no NEON natively either
        n = podrepro("run", "amd64", "--", f"build-podrepro-amd64/{program}", cwd=p)
        assert n.returncode == 0, n.stdout + n.stderr


def test_doctor_names_what_this_host_can_trigger(fidelity_project: Path) -> None:
    r = podrepro("doctor", "arm", "--no-probe", cwd=fidelity_project)
    lines = [ln for ln in r.stdout.splitlines() if "fidelity" in ln]
    assert any("readdir-cookies" in ln and "ext4" in ln for ln in lines), r.stdout
    assert any("'ptrace'" in ln for ln in lines), r.stdout
