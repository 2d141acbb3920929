"""What in this host's setup can trigger which artefact (``podrepro doctor``)."""

from __future__ import annotations

import os
from pathlib import Path

from podrepro.arches import Arch
from podrepro.fidelity.artefacts import ARTEFACTS, Artefact

# filesystems whose directory offsets are 64-bit hashes for a 64-bit caller (qemu-user's guest is
# one to the host kernel): ext4 (and ext3 with dir_index) checked on this machine
HASHED_OFFSETS = frozenset({"ext4", "ext3"})


def fs_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The filesystem type of the mount that holds ``path`` (from /proc/self/mountinfo)."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        parts, rest = left.split(), right.split()
        if len(parts) < 5 or not rest:
            continue
        mnt = parts[4].replace("\\040", " ")
        if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best, kind = mnt, rest[0]
    return kind


def triggers(arch: Arch, project_root: Path, mountinfo: str | None = None) -> list[tuple[Artefact, str]]:
    """(class, why it applies here) for ``arch`` with the project at ``project_root``."""
    out = []
    for a in ARTEFACTS:
        if not a.applies(arch):
            continue
        if a.id == "readdir-cookies":
            fs = fs_type(project_root, mountinfo)
            if fs not in HASHED_OFFSETS:
                continue
            why = f"{project_root} is on {fs}, and {arch.alias} is 32-bit"
        else:
            why = f"every {arch.alias} run under qemu-user"
        out.append((a, why))
    return out


def watch_for(arch: Arch, project_root: Path) -> list[tuple[str, str]]:
    """What a ``run`` whose output podrepro reads looks for (``runplan.run_watched``): the
    classes' (pattern, line) pairs when this host's setup can trigger one for ``arch``, else none."""
    from podrepro.fidelity.artefacts import watch_list

    return watch_list(arch) if triggers(arch, project_root) else []
