"""The first e2e test: no mirror, no bootstrap. A hand-made static armhf ELF imported as a
linux/arm/v7 image runs in a rootless container through binfmt_misc + qemu."""

from __future__ import annotations

import io
import tarfile

import pytest

from podrepro import arches, elfprobe
from tests.e2e.conftest import podman

pytestmark = pytest.mark.e2e


def _image_tar(binary: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("probe")
        ti.size, ti.mode = len(binary), 0o755
        tf.addfile(ti, io.BytesIO(binary))
    return buf.getvalue()


@pytest.mark.parametrize("name", ["arm", "mips"])
def test_static_foreign_elf_runs_rootless(name: str, scratch_image: str) -> None:
    arch = arches.lookup(name)
    msg = f"hello from {arch.debian} via qemu\n".encode()
    tar = _image_tar(elfprobe.build(arch, msg, exit_code=0))
    argv = ["import", "--os", "linux", "--arch", arch.oci_arch]
    if arch.oci_variant:
        argv += ["--variant", arch.oci_variant]
    cp = podman(*argv, "-", scratch_image, input=tar)
    assert cp.returncode == 0, cp.stderr.decode()
    run = podman("run", "--rm", "--platform", arch.oci_platform, "--pull=never", "--network", "none",
                 scratch_image, "/probe")
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == msg


def test_exit_code_of_foreign_binary_passes_through(scratch_image: str) -> None:
    arch = arches.lookup("arm")
    cp = podman("import", "--os", "linux", "--arch", "arm", "--variant", "v7", "-", scratch_image,
                input=_image_tar(elfprobe.build(arch, b"x\n", exit_code=42)))
    assert cp.returncode == 0
    run = podman("run", "--rm", "--platform", "linux/arm/v7", "--pull=never", "--network", "none",
                 scratch_image, "/probe")
    assert run.returncode == 42


def test_platform_mismatch_fails_fast(scratch_image: str) -> None:
    arch = arches.lookup("arm")
    imp = podman("import", "--os", "linux", "--arch", "arm", "--variant", "v7", "-", scratch_image,
                 input=_image_tar(elfprobe.build(arch)))
    assert imp.returncode == 0, imp.stderr.decode()  # else the run below fails for the wrong reason
    run = podman("run", "--rm", "--platform", "linux/mipsle", "--pull=never", scratch_image, "/probe", timeout=60)
    assert run.returncode != 0
    assert b"podrepro-probe" not in run.stdout, "the arm probe must not have run"
