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
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from podrepro import buildtree, cross, runner
from podrepro.arches import HOST
from podrepro.errors import PodreproError
from podrepro.profiles import MODE_CHOICES, Profile

if TYPE_CHECKING:
    from podrepro.arches import Arch
    from podrepro.engine.podman import Podman
    from podrepro.images.index import Index

FILES_DIR = ".podrepro-cross"
MODES = MODE_CHOICES["build_mode"]


def resolve_mode(setting: str, profile: Profile, tree: Path) -> tuple[str, str]:
    """(mode, why): the ``build_mode`` setting (a flag or a config file) when it names one, else
    the profile's, else what the build tree was last configured with, else emulated."""
    if setting in MODES:
        return setting, "build_mode"
    if profile.build_mode in MODES:
        return str(profile.build_mode), f"the {profile.name} profile's build_mode"
    recorded = buildtree.recorded(tree).get("mode")
    if recorded in MODES:
        return str(recorded), "the build tree's last configuration"
    return "emulated", "default"


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


def _cross_run(binary: str, spec: runner.RunSpec, profile: Profile, xtag: str, vals: Mapping[str, str],
               mult: float, env: Mapping[str, str], **changes: object) -> list[str]:
    """A run like ``spec`` (the target's), but natively in the cross image ``xtag``; what it
    runs for is still the target (``PODREPRO_ARCH``), and the user's own variables still win."""
    xspec = replace(spec, arch=HOST, image=xtag, cpu="", **changes)  # type: ignore[arg-type]
    full = runner.container_env(xspec, profile, vals, mult)
    full.update(env)
    full["PODREPRO_ARCH"] = spec.arch.alias
    full["PODREPRO_EMULATED"] = "1" if spec.arch.emulated else "0"  # its binaries run under qemu
    full.update(spec.env)
    return runner.run_argv(binary, xspec, full)


def build_argv(binary: str, spec: runner.RunSpec, profile: Profile, tc: cross.Toolchain, xtag: str,
               vals: Mapping[str, str], extra: Sequence[str], mult: float, ccache_dir: Path | None) -> list[str]:
    """The ``podman run`` argv of a hybrid build: the profile's (cross) build command with the
    cross files written into the build tree and named in the environment."""
    files = write_files(buildtree.build_path(spec.project_root, vals["build_dir"]), tc)
    xvals = {**vals, **placeholders(tc, files)}
    command = runner.substitute(profile.cross_build, xvals) + list(extra) if profile.cross_build \
        else runner.build_command(profile, xvals, extra)
    return _cross_run(binary, spec, profile, xtag, xvals, mult,
                      {**cross.build_env(tc, str(files)), "PODREPRO_BUILD_MODE": "cross"},
                      command=tuple(command), ccache_dir=ccache_dir)


def harness_argv(binary: str, spec: runner.RunSpec, profile: Profile, xtag: str, vals: Mapping[str, str],
                 mult: float) -> list[str]:
    """The tests with ``test_mode = "native-harness"``: the test driver (ctest, a Perl or Ruby
    harness, shell scripts) runs natively in the cross image; the target's binaries run through
    binfmt_misc under qemu (which reads ``QEMU_CPU``), against the target's multiarch libraries."""
    env = {"PODREPRO_TEST_MODE": "native-harness", **({"QEMU_CPU": spec.cpu} if spec.cpu else {})}
    return _cross_run(binary, spec, profile, xtag, vals, mult, env, ccache_dir=None)
