"""podrepro.fidelity: the artefact table, its evidence, the host's triggers, --tmpfs-tree's argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from podrepro.arches import lookup
from podrepro.fidelity import artefacts, host
from podrepro.runner import TREE_SOURCE, RunSpec, run_argv

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw
31 22 0:26 / /home/u/btrfs\\040dir rw shared:5 - btrfs /dev/vdb rw
"""


def test_readdir_cookies_needs_a_32bit_emulated_target_and_its_evidence() -> None:
    out = "readdir .: Value too large for defined data type (after 0 entries)\n"
    assert [a.id for a in artefacts.matching(lookup("arm"), out)] == ["readdir-cookies"]
    assert [a.id for a in artefacts.matching(lookup("mips"), out)] == ["readdir-cookies"]
    assert artefacts.matching(lookup("arm64"), out) == []   # 64-bit: its readdir returns 64-bit offsets
    assert artefacts.matching(lookup("i386"), out) == []    # native: the kernel's compat path gives 32-bit ones


def test_each_class_has_its_evidence() -> None:
    arm = lookup("arm")
    assert artefacts.matching(arm, "ptrace: Function not implemented")[0].id == "ptrace"
    assert [a.id for a in artefacts.matching(arm, "vendor_id : GenuineIntel")] == ["host-cpuinfo"]
    assert "robust-futex" in [a.id for a in artefacts.matching(arm, "lock came back without EOWNERDEAD")]
    assert [a.id for a in artefacts.matching(arm, "", ["syscall 437 (openat2)"])] == ["missing-syscall"]
    assert artefacts.matching(arm, "checksum: got 1234, want 5678") == []
    assert artefacts.matching(lookup("amd64"), "Value too large for defined data type") == []


def test_the_warning_names_the_class_and_the_mitigation() -> None:
    arm = lookup("arm")
    line = artefacts.warning(arm, artefacts.matching(arm, "Value too large for defined data type"))
    assert line is not None and "readdir-cookies" in line and "--tmpfs-tree" in line
    assert artefacts.warning(arm, []) is None


def test_every_class_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for a in artefacts.ARTEFACTS:
        assert f"`{a.id}`" in readme, a.id


def test_fs_type_takes_the_longest_mount_prefix() -> None:
    assert host.fs_type(Path("/work/x"), MOUNTINFO) == "ext4"
    assert host.fs_type(Path("/dev/shm/p"), MOUNTINFO) == "tmpfs"
    assert host.fs_type(Path("/home/u/btrfs dir/p"), MOUNTINFO) == "btrfs"
    assert host.fs_type(Path("/dev/shmx"), MOUNTINFO) == "ext4"


def test_doctor_triggers_depend_on_the_projects_filesystem() -> None:
    arm = lookup("arm")
    on_ext4 = [a.id for a, _ in host.triggers(arm, Path("/work/p"), MOUNTINFO)]
    on_tmpfs = [a.id for a, _ in host.triggers(arm, Path("/dev/shm/p"), MOUNTINFO)]
    assert "readdir-cookies" in on_ext4 and "readdir-cookies" not in on_tmpfs
    assert "ptrace" in on_tmpfs
    assert host.triggers(lookup("i386"), Path("/work/p"), MOUNTINFO) == []


def test_doctor_check_lines() -> None:
    from podrepro.doctor.checks import check_fidelity

    found = check_fidelity([lookup("arm")], Path("/work/p"), MOUNTINFO)
    assert all(f.check == "fidelity" and f.severity == "info" and f.arch == "arm" for f in found)
    assert any("readdir-cookies" in f.message and "ext4" in f.message for f in found)


def test_tmpfs_tree_copies_the_project_into_a_tmpfs_at_its_own_path(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    spec = RunSpec(arch=lookup("arm"), image="img", command=("./lsdir", "."), project_root=root,
                   workdir=root / "sub", tmpfs_tree=True)
    argv = run_argv("podman", spec, {})
    vols = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert vols == [f"{root}:{TREE_SOURCE}:ro"]   # never the project read-write
    tmpfs = [argv[i + 1] for i, a in enumerate(argv) if a == "--tmpfs"]
    assert f"{root}:rw,exec,mode=1777" in tmpfs
    assert argv[argv.index("--workdir") + 1] == "/"
    i = argv.index("img")
    assert argv[i + 1:i + 3] == ["sh", "-c"] and argv[i + 4:] == [TREE_SOURCE, str(root), str(root / "sub"), "./lsdir", "."]


def test_verdict_names_an_artefact_when_the_natives_pass() -> None:
    from podrepro.triage.verdict import Observed, decide

    def o(name: str, kind: str, failed: int) -> Observed:
        a = lookup(name)
        return Observed(name, kind, name, 8 * 4 * a.elf_class, a.big_endian, 1, failed)

    v = decide("lsdir", [o("arm", "target", 1), o("amd64", "native", 0), o("i386", "native", 0)], [],
               ["readdir-cookies"])
    assert v.kind == "suspected emulator issue" and "readdir-cookies" in v.text


@pytest.mark.parametrize("arch", ["arm", "mips", "arm64", "s390x"])
def test_ptrace_applies_to_every_emulated_arch(arch: str) -> None:
    assert artefacts.BY_ID["ptrace"].applies(lookup(arch))
