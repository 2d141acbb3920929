"""``--system``'s pieces without a VM: the initramfs writer, the kernel out of a .deb, the init
script, reading the console (with a stand-in qemu), the results that come back.
tests/e2e/test_system.py boots real arm and mips kernels."""

from __future__ import annotations

import base64
import gzip
import io
import lzma
import os
import shlex
import stat
import tarfile
import time
from pathlib import Path

import pytest

from podrepro.arches import lookup
from podrepro.errors import PodreproError, UsageError
from podrepro.system import command, initramfs, kernel, machines, vm


def _read_cpio(data: bytes) -> list[tuple[str, int, bytes]]:
    """(name, mode, data) of each newc entry of concatenated archives (as the kernel reads them),
    checking magic and 4-byte alignment."""
    out: list[tuple[str, int, bytes]] = []
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701", pos
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name_at = pos + 110
        name = data[name_at:name_at + namesize - 1].decode()
        body_at = name_at + namesize + (-(110 + namesize) % 4)
        body = data[body_at:body_at + size]
        pos = body_at + size + (-size % 4)
        if name == initramfs.TRAILER and pos == len(data):
            return out
        if name == initramfs.TRAILER:
            continue
        out.append((name, mode, body))


def _rootfs_tar(path: Path) -> None:
    with tarfile.open(path, "w") as tf:
        def add(name: str, kind: bytes, data: bytes = b"", **kw: object) -> None:
            m = tarfile.TarInfo(name)
            m.type, m.size = kind, len(data)
            for k, v in kw.items():
                setattr(m, k, v)
            tf.addfile(m, io.BytesIO(data) if data else None)

        add("./", tarfile.DIRTYPE, mode=0o755)
        add("bin", tarfile.DIRTYPE, mode=0o755)
        add("bin/sh", tarfile.REGTYPE, b"#!ELF", mode=0o755)
        add("bin/dash", tarfile.LNKTYPE, linkname="bin/sh", mode=0o755)
        add("bin/ash", tarfile.SYMTYPE, linkname="sh")
        add("dev", tarfile.DIRTYPE, mode=0o755)
        add("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        add("usr/share/doc/x/copyright", tarfile.REGTYPE, b"legal", mode=0o644)


def test_the_initramfs_holds_image_project_and_init(tmp_path: Path) -> None:
    _rootfs_tar(tmp_path / "rootfs.tar")
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "a.c").write_text("int a;\n")
    (proj / "run.sh").write_text("#!/bin/sh\n")
    (proj / "run.sh").chmod(0o755)
    (proj / "build-podrepro-mips").mkdir()
    (proj / "build-podrepro-mips" / "x").write_text("other arch\n")
    files = initramfs.project_files(proj, ["build-podrepro-mips", ".podrepro"])
    assert files == ["run.sh", "src/a.c"]
    size = initramfs.write(tmp_path / "i.gz", tmp_path / "rootfs.tar", proj, files, "#!/bin/sh\necho hi\n")
    raw = gzip.decompress((tmp_path / "i.gz").read_bytes())  # two members: the image's, the run's
    assert raw.count(initramfs.TRAILER.encode()) == 2
    entries = {n: (m, d) for n, m, d in _read_cpio(raw)}
    assert size == len(raw)
    assert entries["bin/sh"] == (stat.S_IFREG | 0o755, b"#!ELF")
    assert entries["bin/dash"] == (stat.S_IFREG | 0o755, b"#!ELF")    # a hard link: a copy
    assert entries["bin/ash"] == (stat.S_IFLNK | 0o777, b"sh")
    assert stat.S_ISCHR(entries["dev/null"][0])
    assert not any(n.startswith("usr/share/doc") for n in entries)     # documentation left out
    base = proj.as_posix().lstrip("/")
    assert entries[f"{base}/src/a.c"][1] == b"int a;\n" and entries[f"{base}/run.sh"][0] & 0o777 == 0o755
    assert f"{base}/build-podrepro-mips/x" not in entries
    assert entries["podrepro-init"] == (stat.S_IFREG | 0o755, b"#!/bin/sh\necho hi\n")
    names = [n for n, _, _ in _read_cpio(raw)]
    assert names.index(base) < names.index(f"{base}/src") < names.index(f"{base}/src/a.c")  # parents first


def _deb(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            m = tarfile.TarInfo(name)
            m.size = len(data)
            tf.addfile(m, io.BytesIO(data))
    data_tar = lzma.compress(buf.getvalue())

    def entry(name: str, body: bytes) -> bytes:
        head = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode()
        return head + body + (b"\n" if len(body) % 2 else b"")

    return b"!<arch>\n" + entry("debian-binary", b"2.0\n") + entry("control.tar.xz", b"x") + \
        entry("data.tar.xz", data_tar)


def test_the_kernel_comes_out_of_the_package() -> None:
    name, data = kernel.vmlinuz_from_deb(_deb({"./boot/config-6.1": b"CONFIG", "./boot/vmlinuz-6.1.0-50-armmp-lpae": b"KERNEL"}))
    assert (name, data) == ("vmlinuz-6.1.0-50-armmp-lpae", b"KERNEL")
    with pytest.raises(PodreproError, match="no boot/vmlinuz"):
        kernel.vmlinuz_from_deb(_deb({"./boot/config-6.1": b"x"}))
    with pytest.raises(PodreproError, match="not a Debian package"):
        kernel.vmlinuz_from_deb(b"<html>")


def test_the_init_runs_the_command_as_given() -> None:
    cmd = ["sh", "-c", "echo 'it''s' \"$HOME\"; exit 3", "a b"]
    s = vm.init_script(cmd, "/src/my proj", {"PODREPRO_ARCH": "arm", "X": "a'b $c"}, ["build/r.xml"], "/src/my proj")
    lines = s.splitlines()
    assert shlex.join(cmd) in lines[lines.index(f"echo {vm.BEGIN}") + 1]
    assert "export X='a'\"'\"'b $c'" in s and "cd '/src/my proj' ||" in s
    assert "tar -cf - build/r.xml" in s and s.index(vm.BEGIN) < s.index("rc=$(cat") < s.index(vm.RES_BEGIN)
    assert "mount -t tmpfs tmp /tmp" not in s  # the project may live under /tmp: never hidden


def _fake_qemu(tmp_path: Path, body: str) -> list[str]:
    q = tmp_path / "qemu"
    q.write_text("#!/bin/sh\n" + body)
    q.chmod(0o755)
    return [str(q)]


def test_the_console_gives_output_status_and_results(tmp_path: Path) -> None:
    res = base64.b64encode(b"TARBYTES" * 20).decode()
    argv = _fake_qemu(tmp_path, f"""printf '[ 0.1] booting\\r\\n[ 0.2] more\\r\\n'
echo '{vm.BEGIN}'; echo 'hello'; printf 'no newline'; echo '{vm.EXIT}5@@'
echo '{vm.RES_BEGIN}'; echo '{res[:40]}'; echo '{res[40:]}'; echo '{vm.RES_END}'; echo '[ 1.0] Power down'
""")
    shown: list[str] = []
    out = vm.boot(argv, show=shown.append, timeout=30)
    assert (out.exit_status, shown, out.results) == (5, ["hello", "no newline"], b"TARBYTES" * 20)
    assert out.tail == ["[ 0.1] booting", "[ 0.2] more"]
    died = vm.boot(_fake_qemu(tmp_path, "echo 'Kernel panic - not syncing'\n"), show=shown.append, timeout=30)
    assert died.exit_status is None and died.tail[-1] == "Kernel panic - not syncing"


def test_a_silent_vm_is_stopped_at_the_time_limit(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    argv = _fake_qemu(tmp_path, f"echo $$ > {marker}; exec sleep 60\n")
    t0 = time.monotonic()
    with pytest.raises(PodreproError, match="did not finish within 1 s"):
        vm.boot(argv, show=lambda line: None, timeout=1)
    assert time.monotonic() - t0 < 20
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed, and reaped


def test_only_the_results_file_comes_back(tmp_path: Path) -> None:
    def tar(*names: str) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for n in names:
                m = tarfile.TarInfo(n)
                data = b'<testsuite><testcase name="a"/><testcase name="b"><failure/></testcase></testsuite>'
                m.size = len(data)
                tf.addfile(m, io.BytesIO(data))
        return buf.getvalue()

    said: list[str] = []
    counted = command._count(8, tar("build/r.xml"), tmp_path, ["build/r.xml"], "junit", "arm", None, said.append)
    assert counted.failed == ("b",) and said == ["2 tests ran on arm, 1 failed: b"]
    for bad in (tar("build/r.xml", "../../etc/x"), tar("build/other.txt")):
        with pytest.raises(PodreproError, match="refused"):
            command._count(8, bad, tmp_path, ["build/r.xml"], "junit", "arm", None, said.append)
    assert not (tmp_path / "build" / "other.txt").exists()


def test_every_machine_names_its_package_and_unknown_arches_are_refused() -> None:
    for alias, m in machines.MACHINES.items():
        lookup(alias)
        assert m.kernel_package.startswith("linux-image-") and m.qemu.startswith("qemu-system-") and m.package
    with pytest.raises(UsageError, match="no VM for i386"):
        machines.machine_for(lookup("i386"))


def test_the_images_part_is_made_once_per_image_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from podrepro.engine import process

    monkeypatch.setenv("PODREPRO_CACHE_DIR", str(tmp_path / "cache"))
    exports: list[str] = []

    def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
        assert argv[1] == "export"
        exports.append(argv[-1])
        _rootfs_tar(Path(argv[argv.index("-o") + 1]))
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    class Eng:
        binary = "podman"

        def __init__(self) -> None:
            self.image_id = "a" * 64
            self.removed: list[str] = []

        def inspect_id_cli(self, ref: str) -> str:
            return self.image_id

        def create_container(self, image: str, name: str) -> subprocess.CompletedProcess[bytes]:
            return subprocess.CompletedProcess([], 0, b"", b"")

        def remove_container(self, name: str) -> bool:
            self.removed.append(name)
            return True

    monkeypatch.setattr(process, "run", run)
    eng = Eng()
    (tmp_path / "t").mkdir()
    one, size = command._image_part(eng, "arm", "localhost/podrepro/base:arm-0123456789ab", "0123456789ab",
                                    tmp_path / "t", lambda line: None)
    again, size2 = command._image_part(eng, "arm", "localhost/podrepro/base:arm-0123456789ab", "0123456789ab",
                                       tmp_path / "t", lambda line: None)
    assert (one, size) == (again, size2) and len(exports) == 1 and size > 0
    eng.image_id = "b" * 64  # rebuilt under the same tag: made again, the old part gone
    new, _ = command._image_part(eng, "arm", "localhost/podrepro/base:arm-0123456789ab", "0123456789ab",
                                 tmp_path / "t", lambda line: None)
    assert new != one and not one.exists() and len(exports) == 2
    assert len(eng.removed) == 2 and list((tmp_path / "t").iterdir()) == []  # containers and exports gone
