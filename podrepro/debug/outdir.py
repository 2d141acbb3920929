"""``.podrepro/`` in the project: where cores and traces are kept, made without following links.

The project is untrusted, and its containers can write to it: a ``.podrepro`` (or one of its
sub-folders) that is a symbolic link could send what podrepro writes anywhere the user can
write. Each component is therefore created (or found) as a real directory, never through a
link, and refused with a one-line error otherwise.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from podrepro.errors import PodreproError

NAME = ".podrepro"
GITIGNORE = "# podrepro's cores and traces (created by podrepro)\n*\n"


def real_dir(path: Path) -> Path:
    """``path`` as a directory that is no symbolic link (made if missing)."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass
    except OSError as e:
        raise PodreproError(f"cannot create {path}: {e.strerror}", hint="check the project folder's permissions") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PodreproError(f"{path} is not a directory of yours (a symbolic link?): podrepro will not write through it",
                            hint=f"remove it (rm {path}) and run again")
    return path


def folder(root: Path, *parts: str) -> Path:
    """``ROOT/.podrepro/PARTS...``, each level a real directory of the user's; the top one gets a
    .gitignore so ``git status`` stays clean."""
    path = real_dir(root / NAME)
    ignore = path / ".gitignore"
    if not os.path.lexists(ignore):
        fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(GITIGNORE)
    for p in parts:
        path = real_dir(path / p)
    return path


def new_folder(root: Path, *parts: str) -> Path:
    """A fresh ``ROOT/.podrepro/PARTS.../TIME-PID-RANDOM`` that no other run shares (two runs in
    the same second of the same process each get their own)."""
    import secrets
    import time

    parent = folder(root, *parts)
    while True:
        path = parent / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}"
        try:
            os.mkdir(path, 0o755)
            return path
        except FileExistsError:
            continue


def shown(path: Path, root: Path) -> str:
    """``path`` relative to the project root when it is inside (as the user sees it), else absolute."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
