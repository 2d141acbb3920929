"""Hybrid builds: the build natively in a cross image, the tests emulated in the target's.

``podrepro build ARCH --cross`` runs the profile's build command in the profile's cross image
for ARCH (an amd64 Debian of the target's suite with Debian's cross toolchain and the target's
libraries through multiarch; ``images.target.cross_target``), with what a build system needs to
cross-compile in the environment (``cross.build_env``: ``CMAKE_TOOLCHAIN_FILE``, ``CC``...). The
files it names live in the build tree (``.podrepro-cross/``), which both containers see at the
same path, so the tests that ``podrepro test ARCH`` then runs in the emulated container find
what CMake recorded: ctest runs each test through ``run-target``, a script that execs its
arguments (binfmt_misc runs a target binary through qemu in the cross image; in the target's
own container it simply runs).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from podrepro import buildtree, cross
from podrepro.errors import PodreproError
from podrepro.profiles import Profile

if TYPE_CHECKING:
    from podrepro.arches import Arch
    from podrepro.engine.podman import Podman
    from podrepro.images.index import Index

FILES_DIR = ".podrepro-cross"
MODES = ("emulated", "cross")


def resolve_mode(setting: str, profile: Profile, tree: Path) -> tuple[str, str]:
    """(mode, why): the ``build_mode`` setting (a flag or a config file) when it names one, else
    the profile's, else what the build tree was last configured with, else emulated."""
    if setting in MODES:
        return setting, "build_mode"
    if profile.build_mode in MODES:
        return str(profile.build_mode), f"the {profile.name} profile's build_mode"
    recorded = recorded_mode(tree)
    if recorded in MODES:
        return str(recorded), "the build tree's last configuration"
    return "emulated", "default"


def recorded_mode(tree: Path) -> str | None:
    try:
        old = json.loads((tree / buildtree.STAMP).read_text())
    except (OSError, ValueError):
        return None
    mode = old.get("mode") if isinstance(old, dict) else None
    return mode if isinstance(mode, str) else None


def write_files(tree: Path, tc: cross.Toolchain) -> Path:
    """The toolchain file, the Meson cross file and ``run-target`` in ``tree``/.podrepro-cross
    (rewritten only when their text changed, so a build system's dependency on them holds)."""
    d = tree / FILES_DIR
    d.mkdir(parents=True, exist_ok=True)
    runner = d / "run-target"
    files = {
        runner: cross.EMULATOR_SCRIPT,
        d / "toolchain.cmake": cross.cmake_toolchain_file(tc, str(runner)),
        d / "meson-cross.ini": cross.meson_cross_file(tc, str(runner)),
    }
    for path, text in files.items():
        try:
            if path.read_text() == text:
                continue
        except OSError:
            pass
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    runner.chmod(0o755)
    return d


def placeholders(tc: cross.Toolchain, files: Path) -> dict[str, str]:
    """What a profile's ``cross_build`` command may name."""
    return {"cmake_toolchain": str(files / "toolchain.cmake"), "meson_cross_file": str(files / "meson-cross.ini"),
            "host_triplet": tc.triplet}


def compiler_mismatch(engine: Podman, index: Index, cross_tag: str, target_tag: str, target: Arch,
                      tc: cross.Toolchain) -> str | None:
    """One line when the cross image's gcc for the target and the target image's own gcc report
    different versions (the tree would not be what an emulated build makes); None when they
    agree or either cannot say. Each image is asked once: the answer is kept in the image index."""
    from podrepro.arches import HOST

    def version(tag: str, argv: list[str], platform: str) -> str:
        entries = index.all()
        known = entries.get(tag, {}).get("gcc_version")
        if isinstance(known, str):
            return known
        cp = engine.run(tag, argv, platform=platform, timeout=300)
        v = cp.stdout.decode(errors="replace").strip() if cp.returncode == 0 else ""
        if tag in entries:
            with contextlib.suppress(OSError, PodreproError):
                index.update(tag, gcc_version=v)
        return v

    mine = version(cross_tag, [f"{tc.triplet}-gcc", "-dumpfullversion"], HOST.oci_platform)
    theirs = version(target_tag, ["gcc", "-dumpfullversion"], target.oci_platform)
    if mine and theirs and mine != theirs:
        return (f"the cross compiler is gcc {mine}, the {target.alias} image's own is gcc {theirs}: "
                "the build may differ from an emulated one (--emulated builds with the image's)")
    return None
