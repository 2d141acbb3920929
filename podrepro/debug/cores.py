"""Core files of emulated crashes (``--core``).

qemu-user writes a core in the target's format itself when an emulated program dies of a
core-dumping signal and the core limit allows: ``qemu_PROG_YYYYmmdd-HHMMSS_PID.core`` in the
program's working directory. Then the dying qemu process is dumped by the host kernel as well
(with ``core_pattern = core``, checked here: qemu 7.2 leaves its own limit up), an x86-64 core of
the emulator, as large as its address space and of no use. After the run podrepro moves the
target's cores into ``.podrepro/cores/ARCH/`` with a small JSON file beside each (the program,
the command, the image), deletes the emulator's own cores, and says where they are;
``podrepro debug ARCH --core FILE`` opens one.
"""

from __future__ import annotations

import json
import os
import re
import resource
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro.debug.outdir import folder
from podrepro.errors import HostNotReady

QEMU_CORE = re.compile(r"qemu_(?P<prog>.+)_(?P<stamp>\d{8}-\d{6})_(?P<pid>\d+)\.core")
HOST_CORE = re.compile(r"core(\.\d+)?")
SKIP_DIRS = frozenset({".git", ".podrepro"})
SIDECAR = ".json"
EM_X86_64 = 62
ET_CORE = 4


def ulimit_args(limits: tuple[int, int] | None = None) -> list[str]:
    """The podman option that lets a container's programs dump core: the core limit raised to
    this process's hard limit (rootless podman cannot go above it)."""
    _, hard = limits or resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        raise HostNotReady("--core: this session's hard core-file limit is 0, so no program may dump core",
                           hint="raise it (e.g. '* hard core unlimited' in /etc/security/limits.conf) and log in again")
    v = "-1" if hard == resource.RLIM_INFINITY else str(hard)
    return ["--ulimit", f"core={v}:{v}"]


@dataclass(frozen=True)
class Core:
    path: Path              # where podrepro keeps it
    name: str               # the crashed program's file name (from qemu's naming)
    program: str | None     # the program as 'podrepro debug --core' takes it, if known


def emulator_core(path: Path) -> bool:
    """An x86-64 ELF core of qemu itself (the host kernel's dump of the dying emulator)."""
    try:
        with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
            head = fh.read(65536)
    except OSError:
        return False
    return (head[:4] == b"\x7fELF" and head[4] == 2 and head[5] == 1
            and int.from_bytes(head[16:18], "little") == ET_CORE
            and int.from_bytes(head[18:20], "little") == EM_X86_64 and b"qemu" in head)


def _walk(dirs: Iterable[Path]) -> Iterable[tuple[Path, os.stat_result]]:
    seen: set[Path] = set()
    for top in dirs:
        for d, subdirs, files in os.walk(top):
            here = Path(d)
            if here in seen:
                subdirs[:] = []
                continue
            seen.add(here)
            subdirs[:] = [s for s in subdirs if s not in SKIP_DIRS]
            for f in files:
                p = here / f
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():
                    yield p, st


def _program(name: str, core_dir: Path, command: Sequence[str], workdir: Path,
             found: dict[str, list[Path]]) -> str | None:
    first = command[0] if command else ""
    if os.path.basename(first) == name and "/" in first:
        return os.path.normpath(workdir / first)
    near = [p for p in found.get(name, ()) if p.parent == core_dir] or found.get(name, [])
    return str(near[0]) if near else None


def collect(root: Path, dirs: Sequence[Path], arch: str, since: float, *, command: Sequence[str],
            workdir: Path, image: str) -> list[Core]:
    """Move the target cores written under ``dirs`` since ``since`` into
    ``ROOT/.podrepro/cores/ARCH/`` (each with its JSON note) and delete the emulator's own."""
    cores: list[tuple[Path, re.Match[str]]] = []
    execs: dict[str, list[Path]] = {}
    for p, st in _walk(d for d in dirs if d.is_dir()):
        m = QEMU_CORE.fullmatch(p.name)
        if m and st.st_mtime >= since:
            cores.append((p, m))
        elif HOST_CORE.fullmatch(p.name) and st.st_mtime >= since and emulator_core(p):
            p.unlink(missing_ok=True)
        elif st.st_mode & 0o111:
            execs.setdefault(p.name, []).append(p)
    if not cores:
        return []
    out = folder(root, "cores", arch)
    kept = []
    for p, m in sorted(cores, key=lambda c: c[0].name):
        program = _program(m["prog"], p.parent, command, workdir, execs)
        dest = out / p.name
        os.replace(p, dest)
        note: dict[str, Any] = {"version": 1, "arch": arch, "program": program, "command": list(command),
                                "workdir": str(workdir), "image": image,
                                "collected": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        fd = os.open(str(dest) + SIDECAR, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(note, f, indent=1)
        kept.append(Core(dest, m["prog"], program))
    return kept


def note_of(core: Path) -> dict[str, Any]:
    """The JSON note beside a collected core ({} when there is none or it is not an object)."""
    try:
        data = json.loads(Path(str(core) + SIDECAR).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
