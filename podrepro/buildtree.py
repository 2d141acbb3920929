"""A project's per-architecture build tree: where it is, what it was configured for, and when
that no longer holds.

A build tree records what it was last configured for (``.podrepro-build.json``: arch, image,
mode). CMake writes absolute paths into its cache: a tree that was moved, copied, or mounted at
another path fails with "The current CMakeCache.txt directory ... is different than the
directory ... where CMakeCache.txt was created". Before a build podrepro compares both (CMake's
``CMAKE_HOME_DIRECTORY``/``CMAKE_CACHEFILE_DIR`` and the stamp) with the present and, on any
difference, removes CMake's cache so the build configures the tree afresh.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from podrepro.errors import UsageError

STAMP = ".podrepro-build.json"
# what a fresh configure regenerates; the object files stay (the build system decides what to
# rebuild, and a changed compiler command line rebuilds them)
CMAKE_GENERATED = ("CMakeCache.txt", "CMakeFiles", "build.ninja", "rules.ninja", "Makefile", "cmake_install.cmake",
                   "CTestTestfile.cmake")


@dataclass(frozen=True)
class TreeFor:
    """What a build tree is configured for."""

    arch: str
    image: str
    mode: str = "emulated"


def build_path(root: Path, build_dir: str) -> Path:
    """``build_dir`` under the project root; refused when it resolves outside it (a symlink
    planted in a repository, ``out -> ../../.ssh``, must not make podrepro create or clean there)."""
    p = root / build_dir
    real_root = root.resolve()
    real = p.resolve()
    if real != real_root and real_root not in real.parents:
        raise UsageError(f"build directory {build_dir!r} resolves to {real}, outside the project {real_root}",
                         hint="remove the symlink, or set build_dir to a directory inside the project")
    return p


def _cmake_cache_value(cache: Path, key: str) -> str | None:
    try:
        with open(cache, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split("=", 1)[1].strip() if "=" in line else None
    except OSError:
        return None
    return None


def _cmake_caches(tree: Path) -> list[Path]:
    # the tree itself (generic: cmake -B tree) and one level down (build-jsc: tree/Release)
    out = [tree / "CMakeCache.txt"] if (tree / "CMakeCache.txt").is_file() else []
    try:
        out += sorted(p for p in tree.glob("*/CMakeCache.txt") if p.is_file() and not p.parent.is_symlink())
    except OSError:
        pass
    return out


def _same(a: str, b: Path) -> bool:
    try:
        return Path(a).resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def recorded(tree: Path) -> dict[str, object]:
    """What the tree was last configured for (its stamp), {} when it has none or it is unreadable."""
    try:
        old = json.loads((tree / STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


def stale_reason(tree: Path, root: Path, now: TreeFor) -> list[tuple[Path, str]]:
    """The CMake build dirs inside ``tree`` that were configured for something else, each with
    why (one line); empty when the tree can be built as it is."""
    caches = _cmake_caches(tree)
    why_all = None
    old = recorded(tree)
    if old:
        for key, value in asdict(now).items():
            if old.get(key) not in (None, value):
                why_all = f"it was configured for {key} {old.get(key)}, this build is for {value}"
                break
    out = []
    for cache in caches:
        if why_all:
            out.append((cache.parent, why_all))
            continue
        home = _cmake_cache_value(cache, "CMAKE_HOME_DIRECTORY")
        made_in = _cmake_cache_value(cache, "CMAKE_CACHEFILE_DIR")
        if made_in is not None and not _same(made_in, cache.parent):
            out.append((cache.parent, f"it was configured in {made_in} (moved or copied since)"))
        elif home is not None and not _same(home, root) and not _under(Path(home), root):
            out.append((cache.parent, f"it was configured for the source directory {home}"))
    return out


def _under(p: Path, root: Path) -> bool:
    try:
        rp, rr = p.resolve(), root.resolve()
    except (OSError, RuntimeError):
        return False
    return rr in rp.parents


def reset_cmake(build: Path) -> None:
    """Remove what CMake generated in ``build`` so the next build configures it afresh."""
    for name in CMAKE_GENERATED:
        p = build / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def prepare(root: Path, build_dir: str, now: TreeFor) -> list[str]:
    """Make the build tree ready for a build for ``now``: create it, reset what was configured
    for something else, record what it is for. Returns one line per reset, for the user."""
    tree = build_path(root, build_dir)
    tree.mkdir(parents=True, exist_ok=True)
    notes = []
    for build, why in stale_reason(tree, root, now):
        reset_cmake(build)
        rel = os.path.relpath(build, root)
        notes.append(f"reconfiguring {rel}: {why}")
    tmp = tree / (STAMP + ".tmp")
    tmp.write_text(json.dumps(asdict(now), sort_keys=True) + "\n")
    os.replace(tmp, tree / STAMP)
    return notes
