"""A project's tree as a bundle carries it, and the tree rebuilt from a bundle.

A snapshot is the commit (HEAD), the working tree's changes against it as one binary diff
(staged, unstaged, and untracked files that are not ignored: ``git add -A`` into a *temporary*
index, so the user's index is never written), and the list of the tree's files for the
tarball a bundle carries unless asked not to. podrepro's own outputs are left out: ``.podrepro/``,
every architecture's build directory, and bundles. Outside a git repository, the tree is every
file under the project root but those.

Rebuilt, it is a clone of the commit from a repository plus the diff (``git apply``), or the
bundled files (extracted with tarfile's ``data`` filter: nothing outside the directory, no
device files, no absolute links).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro.errors import PodreproError
from podrepro.gitrepo import git, git_bytes, has_commit, toplevel

BUNDLE_GLOB = "podrepro-bundle-*.tar"


@dataclass(frozen=True)
class Snapshot:
    top: Path               # the tree's root: the git top level, else the project root
    subdir: str             # where the command ran, relative to top ("" for top itself)
    commit: str | None      # HEAD; None outside git (or before the first commit)
    diff: bytes             # the working tree against ``commit`` (b"" when clean)
    files: tuple[str, ...]  # what the tree tarball holds, relative to top


def take(root: Path, cwd: Path, excluded: Iterable[str]) -> Snapshot:
    """The tree that holds the project ``root``, the command run in ``cwd``; ``excluded``: paths
    relative to ``root`` left out (build directories)."""
    top = toplevel(root) or root
    rel_root = os.path.relpath(root, top)
    skip = sorted({".podrepro", *(os.path.normpath(os.path.join(rel_root, e)) for e in excluded)})
    skip = [s for s in skip if not s.startswith("..")]
    subdir = os.path.relpath(cwd, top) if cwd.is_relative_to(top) else ""
    subdir = "" if subdir == "." else subdir
    if top == root and toplevel(root) is None:
        return Snapshot(top, subdir, None, b"", tuple(_walk(top, skip)))
    head = git(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).stdout.strip() or None
    specs = [".", *(f":(exclude,top,literal){s}" for s in skip), f":(exclude,top,glob)**/{BUNDLE_GLOB}"]
    with tempfile.TemporaryDirectory(prefix="podrepro-snap-") as tmp:
        index = Path(tmp, "index")
        theirs = Path(git(top, "rev-parse", "--path-format=absolute", "--git-path", "index").stdout.strip())
        if theirs.is_file():
            shutil.copyfile(theirs, index)
        env = {"GIT_INDEX_FILE": str(index)}
        git(top, "add", "-A", "--", *specs, env=env)
        diff = git_bytes(top, "diff", "--cached", "--binary", "--no-color", "--no-ext-diff", *(["HEAD"] if head else []),
                         "--", *specs, env=env).stdout if head else b""
        listed = git_bytes(top, "ls-files", "-z", "--", *specs, env=env).stdout.split(b"\0")
    files = [f.decode("utf-8", "surrogateescape") for f in listed if f]
    files = [f for f in files if (top / f).is_symlink() or (top / f).is_file()]  # not submodules
    return Snapshot(top, subdir, head, diff, tuple(files))


def _walk(top: Path, skip: list[str]) -> Iterable[str]:
    for d, dirs, names in os.walk(top):
        rel_d = os.path.relpath(d, top)
        dirs[:] = sorted(x for x in dirs if x != ".git" and os.path.normpath(os.path.join(rel_d, x)) not in skip)
        for n in sorted(names):
            rel = os.path.normpath(os.path.join(rel_d, n))
            if rel not in skip and not Path(n).match(BUNDLE_GLOB):
                yield rel


def write_tarball(snap: Snapshot, out: Path) -> None:
    """The snapshot's files as a tar.gz (links stored as links, never followed)."""
    with tarfile.open(out, "w:gz", compresslevel=6) as tf:
        for rel in snap.files:
            with contextlib.suppress(FileNotFoundError):  # gone since the listing: not part of it
                tf.add(snap.top / rel, arcname=rel, recursive=False)


def from_repository(repo: Path, commit: str, diff: bytes, dest: Path) -> None:
    """``dest`` (new): a clone of ``repo`` at ``commit`` with ``diff`` applied."""
    if not has_commit(repo, commit):
        raise PodreproError(f"{repo} does not have commit {commit[:12]}",
                            hint="fetch it there, or replay the bundled tree (--bundled-tree)")
    git(dest.parent, "clone", "--quiet", "--no-checkout", str(repo), str(dest))
    git(dest, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit)
    if diff:
        git_bytes(dest, "apply", "--binary", "--whitespace=nowarn", "-", input=diff)


def from_tarball(tarball: Path, dest: Path) -> None:
    """``dest`` (new): the bundled files, of which only regular files, directories and relative
    links that stay inside ``dest`` are accepted (no ``..``, no absolute names, no devices, no
    hard links); modes keep their permission bits only. The bundle is someone else's file."""
    dest.mkdir(parents=True)
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            members = tf.getmembers()
            for m in members:
                check_member(m)
            # and tarfile's own "data" filter where this Python has it (3.11.4+)
            kw: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            for m in members:
                m.mode &= 0o777
                m.uid = m.gid = 0
                m.uname = m.gname = ""
                tf.extract(m, dest, set_attrs=not m.issym(), numeric_owner=True, **kw)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise PodreproError(f"the bundled tree cannot be unpacked: {e}", hint="ask for the bundle again") from None


def check_member(m: tarfile.TarInfo) -> None:
    parts = Path(m.name).parts
    if not parts or m.name.startswith("/") or ".." in parts:
        raise PodreproError(f"the bundled tree names {m.name!r}, outside its directory: refused")
    if m.issym():
        target = os.path.normpath(os.path.join(os.path.dirname(m.name), m.linkname))
        if m.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise PodreproError(f"the bundled tree's link {m.name!r} points outside it ({m.linkname!r}): refused")
    elif not (m.isfile() or m.isdir()):
        raise PodreproError(f"the bundled tree holds {m.name!r}, which is not a file, directory or link: refused")


def describe(path: Path) -> tuple[str | None, bool]:
    """(HEAD of the repository at ``path`` or None, whether its tree has changes)."""
    top = toplevel(path)
    if top is None:
        return None, False
    head = git(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).stdout.strip() or None
    dirty = bool(git(top, "status", "--porcelain", "--untracked-files=normal", check=False).stdout.strip())
    return head, dirty
