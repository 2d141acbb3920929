"""A ``--system`` VM's root filesystem: one gzipped initramfs (cpio, "newc") holding the image's
files (``podman export`` of a container that never starts), the project at its own path (the
guest's filesystem, not a share: directory offsets, inode numbers and the like are the guest
kernel's), and podrepro's ``/podrepro-init``. The kernel unpacks it into a tmpfs: no disk, no
driver module."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

TRAILER = "TRAILER!!!"
# left out of the VM: documentation and message catalogs (what Debian's slim images drop with
# dpkg's path-exclude); nothing a program runs, and a 32-bit VM's memory is small
LEFT_OUT = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/lintian/")


class CpioWriter:
    """newc entries to a binary stream."""

    def __init__(self, out: IO[bytes] | gzip.GzipFile) -> None:
        self.out, self.ino, self.size = out, 1, 0

    def _entry(self, name: str, mode: int, data: bytes = b"", *, uid: int = 0, gid: int = 0, mtime: int = 0,
               rdev: int = 0, **_: int) -> None:
        raw = name.encode("utf-8", "surrogateescape") + b"\0"
        fields = (self.ino, mode, uid, gid, 1, mtime, len(data), 0, 0, os.major(rdev), os.minor(rdev), len(raw), 0)
        self.ino += 1
        head = b"070701" + b"".join(b"%08X" % (f & 0xFFFFFFFF) for f in fields)
        first = head + raw + b"\0" * (-(len(head) + len(raw)) % 4)
        body = data + b"\0" * (-len(data) % 4)
        self.out.write(first)
        self.out.write(body)
        self.size += len(first) + len(body)

    def directory(self, name: str, perm: int = 0o755, **kw: int) -> None:
        self._entry(name, stat.S_IFDIR | perm, b"", **kw)

    def file(self, name: str, data: bytes, perm: int = 0o644, **kw: int) -> None:
        self._entry(name, stat.S_IFREG | perm, data, **kw)

    def symlink(self, name: str, target: str, **kw: int) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode("utf-8", "surrogateescape"), **kw)

    def node(self, name: str, kind: int, perm: int, rdev: int, **kw: int) -> None:
        self._entry(name, kind | perm, b"", rdev=rdev, **kw)

    def close(self) -> None:
        self._entry(TRAILER, 0)


def add_tar(w: CpioWriter, tar: Path) -> None:
    """Every member of a root filesystem tar (hard links become copies: the kernel's unpacker
    needs nothing else)."""
    with tarfile.open(tar, "r:") as tf:
        for m in tf:
            name = m.name.lstrip("/").removeprefix("./").rstrip("/")
            if not name or name == "." or (name + "/").startswith(LEFT_OUT):
                continue
            kw = {"uid": m.uid, "gid": m.gid, "mtime": int(m.mtime)}
            perm = m.mode & 0o7777
            if m.isdir():
                w.directory(name, perm, **kw)
            elif m.issym():
                w.symlink(name, m.linkname, **kw)
            elif m.isfile() or m.islnk():
                f = tf.extractfile(m)
                w.file(name, f.read() if f else b"", perm, **kw)
            elif m.ischr() or m.isblk() or m.isfifo():
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
                w.node(name, kind, perm, os.makedev(m.devmajor, m.devminor), **kw)


def add_tree(w: CpioWriter, root: Path, files: Iterable[str]) -> None:
    """The project at its own absolute path (its parents made as directories first), owned by root."""
    base = root.as_posix().lstrip("/")
    parts = base.split("/")
    for i in range(1, len(parts) + 1):
        w.directory("/".join(parts[:i]), 0o755)
    made: set[str] = set()
    for rel in files:
        p = root / rel
        for parent in reversed(Path(rel).parents[:-1]):
            if str(parent) not in made:
                made.add(str(parent))
                w.directory(f"{base}/{parent.as_posix()}", 0o755)
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            w.symlink(f"{base}/{rel}", os.readlink(p))
        elif stat.S_ISREG(st.st_mode):
            w.file(f"{base}/{rel}", p.read_bytes(), st.st_mode & 0o777)


def project_files(root: Path, skip: Iterable[str]) -> list[str]:
    """The project's files for the VM: all of them but ``skip`` (relative directories: other
    architectures' build trees, .podrepro)."""
    out: list[str] = []
    skipped = {os.path.normpath(s) for s in skip}
    for d, dirs, names in os.walk(root):
        rel_d = os.path.relpath(d, root)
        dirs[:] = sorted(x for x in dirs if os.path.normpath(os.path.join(rel_d, x)) not in skipped)
        out += [os.path.normpath(os.path.join(rel_d, n)) for n in sorted(names)]
    return out


def write(out: Path, rootfs_tar: Path, root: Path, files: Iterable[str], init: str) -> int:
    """The gzipped initramfs in one piece: image, project, then /podrepro-init (later entries
    win); its size unpacked (about what the VM's memory holds of it)."""
    with open(out, "wb") as raw:
        return write_image(raw, rootfs_tar) + write_run(raw, root, files, init)


def write_image(raw: IO[bytes], rootfs_tar: Path) -> int:
    """The image's files as one gzip member (a cpio archive of its own: the kernel unpacks
    concatenated archives in order), cached per image; its size unpacked."""
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
        w = CpioWriter(gz)
        add_tar(w, rootfs_tar)
        w.close()
    return w.size


def write_run(raw: IO[bytes], root: Path, files: Iterable[str], init: str) -> int:
    """This run's part, after the image's: the project and /podrepro-init."""
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
        w = CpioWriter(gz)
        add_tree(w, root, files)
        w.file("podrepro-init", init.encode(), 0o755)
        w.close()
    return w.size
