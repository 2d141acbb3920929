"""Issue 16 end to end: hybrid builds. The build runs natively in a cross image (Debian's cross
toolchain, the target's libraries through multiarch); the tests run in the emulated container
and reproduce exactly what the emulated build reproduces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import no_leftover_containers, podrepro

pytestmark = pytest.mark.e2e

TRIPLET = {"arm": "arm-linux-gnueabihf", "mips": "mipsel-linux-gnu"}
ELF_MACHINE = {"arm": 40, "mips": 8}


@pytest.mark.parametrize("arch", ["arm", "mips"])
def test_cross_build_then_emulated_tests_reproduce_the_same_failures(project: Path, arch: str) -> None:
    b = podrepro("build", arch, "--cross", cwd=project, timeout=3600)
    assert b.returncode == 0, b.stdout + b.stderr
    tree = project / f"build-podrepro-{arch}"
    # the target's code, made by the cross compiler (the CMake cache names it), from the
    # toolchain file podrepro generated into the tree
    head = (tree / "test_checksum").read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and head[4] == 1, head  # ELF32
    assert int.from_bytes(head[18:20], "little") == ELF_MACHINE[arch]
    cache = (tree / "CMakeCache.txt").read_text()
    assert f"{TRIPLET[arch]}-gcc" in cache
    assert f"CMAKE_TOOLCHAIN_FILE:FILEPATH={tree}/.podrepro-cross/toolchain.cmake" in cache, cache[:2000]
    assert json.loads((tree / ".podrepro-build.json").read_text())["mode"] == "cross"
    # `podrepro test ARCH` keeps the tree's cross build (its build step runs in the cross image)
    # and runs the tests emulated: the same two failures as an emulated build
    r = podrepro("test", arch, cwd=project, timeout=1800)
    assert r.returncode == 8, r.stdout + r.stderr
    assert "building with the cross toolchain (the build tree's last configuration" in r.stderr, r.stderr
    assert f"podrepro: 3 tests ran on {arch}, 2 failed: checksum, y2038" in r.stderr, r.stderr
    assert "sizeof(long) = 4" in r.stdout + r.stderr
    # the same tree built emulated (reconfigured: it was made for the cross image) fails the same way
    e = podrepro("test", arch, "--emulated", cwd=project, timeout=1800)
    assert e.returncode == 8, e.stdout + e.stderr
    assert "reconfiguring build-podrepro-" in e.stderr and "cross-generic" in e.stderr, e.stderr
    assert f"podrepro: 3 tests ran on {arch}, 2 failed: checksum, y2038" in e.stderr, e.stderr
    assert json.loads((tree / ".podrepro-build.json").read_text())["mode"] == "emulated"
    assert f"{TRIPLET[arch]}-gcc" not in (tree / "CMakeCache.txt").read_text()


def test_native_harness_runs_the_driver_natively_and_reproduces_the_same_failures(project: Path) -> None:
    """test_mode native-harness: ctest (here behind a shell that says where it runs) runs natively
    in the cross image; the test programs, armhf binaries, run under qemu through binfmt_misc
    against the target's multiarch libc, and fail exactly as in the emulated container."""
    (project / "podrepro.toml").write_text(
        '[profile.generic]\n'
        'test = ["sh", "-c", "echo harness-on-$(uname -m); exec ctest \\"$@\\"", "harness", "--test-dir", "{build_dir}",'
        ' "--output-on-failure", "--no-tests=error", "--output-junit", "podrepro-junit.xml"]\n'
        'results = "junit:{build_dir}/podrepro-junit.xml"\n')
    b = podrepro("build", "arm", "--cross", cwd=project, timeout=3600)
    assert b.returncode == 0, b.stdout + b.stderr
    n = podrepro("test", "arm", "--native-harness", cwd=project, timeout=1800)
    assert n.returncode == 8, n.stdout + n.stderr
    assert "harness-on-x86_64" in n.stdout, n.stdout
    assert "the test harness runs natively in the cross image" in n.stderr, n.stderr
    assert "podrepro: 3 tests ran on arm, 2 failed: checksum, y2038" in n.stderr, n.stderr
    assert "sizeof(long) = 4" in n.stdout  # the test program itself ran as armhf
    e = podrepro("test", "arm", "--emulated-harness", "--no-build", cwd=project, timeout=1800)
    assert e.returncode == 8, e.stdout + e.stderr
    assert "harness-on-armv7l" in e.stdout, e.stdout
    assert "podrepro: 3 tests ran on arm, 2 failed: checksum, y2038" in e.stderr, e.stderr
    # a filter reaches ctest through the native harness too
    f = podrepro("test", "arm", "--native-harness", "--no-build", "--filter", "wire", cwd=project, timeout=1800)
    assert f.returncode == 0 and "podrepro: 1 test ran on arm, all passed" in f.stderr, f.stdout + f.stderr


def test_cross_try_run_and_the_emulator_work_in_the_cross_image(project: Path) -> None:
    """CMake's try_run executes a target binary while configuring: through the toolchain file's
    CMAKE_CROSSCOMPILING_EMULATOR (run-target, binfmt_misc underneath) in the cross image."""
    (project / "CMakeLists.txt").write_text(
        (project / "CMakeLists.txt").read_text() + "\n"
        'file(WRITE "${CMAKE_BINARY_DIR}/probe.c" "int main(void){return sizeof(long)==4 ? 0 : 1;}")\n'
        'try_run(PROBE_RUN PROBE_COMPILE "${CMAKE_BINARY_DIR}/probe" "${CMAKE_BINARY_DIR}/probe.c")\n'
        'message(STATUS "podrepro-probe: compiled=${PROBE_COMPILE} exit=${PROBE_RUN}")\n')
    b = podrepro("build", "arm", "--cross", cwd=project, timeout=3600)
    out = b.stdout + b.stderr
    assert b.returncode == 0, out
    # sizeof(long) == 4 on armhf: the probe ran as the target (natively it would be 8 and exit 1)
    assert "podrepro-probe: compiled=TRUE exit=0" in out, out


def test_no_cross_toolchain_is_one_clear_line(project: Path) -> None:
    # Debian 12 has no crossbuild-essential-riscv64 (Debian 13 has)
    r = podrepro("build", "riscv64", "--cross", "--suite", "bookworm", cwd=project, timeout=600)
    assert r.returncode == 2, r.stdout + r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no cross toolchain for riscv64 in Debian bookworm"), r.stderr
    assert "hint:" in last and "trixie" in last, r.stderr


def test_no_containers_left_behind() -> None:
    assert no_leftover_containers() == []
