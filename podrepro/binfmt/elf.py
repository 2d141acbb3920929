"""Interpreters: present (following symlinks inside a root)? static (no PT_INTERP)?"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PT_INTERP = 3


def elf_is_static(data: bytes) -> bool:
    """True when the ELF has no PT_INTERP program header (static or static-pie).

    ValueError when ``data`` (the file's first few KiB) is not an ELF we can read.
    """
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ValueError("not an ELF file")
    end = "<" if data[5] == 1 else ">"
    if data[4] == 1:
        phoff = struct.unpack_from(end + "I", data, 28)[0]
        phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
    else:
        if len(data) < 64:
            raise ValueError("truncated ELF header")
        phoff = struct.unpack_from(end + "Q", data, 32)[0]
        phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
    if phnum and (phentsize < 4 or phoff + phentsize * phnum > len(data)):
        raise ValueError("program headers beyond the part read")
    return all(struct.unpack_from(end + "I", data, phoff + i * phentsize)[0] != PT_INTERP
               for i in range(phnum))


@dataclass(frozen=True)
class Interpreter:
    path: str                    # as registered
    resolved: str | None         # after following symlinks (within ``root``)
    exists: bool
    static: bool | None          # None: missing or not an ELF
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "resolved": self.resolved, "exists": self.exists,
                "static": self.static, "error": self.error}


def _resolve(root: Path, path: str, hops: int = 40) -> PurePosixPath:
    """realpath(path) as seen with ``root`` as /, so sample trees' absolute symlinks stay inside."""
    todo = list(PurePosixPath(path).parts[1:])
    cur = PurePosixPath("/")
    while todo:
        head = todo.pop(0)
        if head in ("", "."):
            continue
        if head == "..":
            cur = cur.parent
            continue
        host = root / (cur / head).relative_to("/")
        if host.is_symlink():
            hops -= 1
            if hops < 0:
                raise OSError(f"too many levels of symbolic links: {path}")
            target = PurePosixPath(os.readlink(host))
            if target.is_absolute():
                cur = PurePosixPath("/")
                todo = list(target.parts[1:]) + todo
            else:
                todo = list(target.parts) + todo
        else:
            cur = cur / head
    return cur


def inspect_interpreter(path: str, root: str = "/") -> Interpreter:
    """Does the interpreter exist (following symlinks) and is it static (no PT_INTERP)?"""
    try:
        resolved = _resolve(Path(root), path)
        host = Path(root) / resolved.relative_to("/")
        with open(host, "rb") as f:
            data = f.read(64 * 1024)
    except FileNotFoundError:
        return Interpreter(path, None, False, None, "no such file")
    except OSError as e:
        return Interpreter(path, None, False, None, e.strerror or str(e))
    try:
        static = elf_is_static(data)
    except ValueError as e:
        return Interpreter(path, str(resolved), True, None, str(e))
    return Interpreter(path, str(resolved), True, static)
