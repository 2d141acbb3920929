"""Hybrid builds: which mode a build takes, the files written into the tree, the cross recipe,
and the compiler-version check (with a fake engine)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from podrepro import buildtree, cross, hybrid
from podrepro.arches import HOST, lookup
from podrepro.errors import UsageError
from podrepro.images.recipe import base_recipe, cross_recipe
from podrepro.profiles import BUILTINS, resolve_profile


def _stamp(tree: Path, mode: str) -> None:
    tree.mkdir(parents=True, exist_ok=True)
    (tree / buildtree.STAMP).write_text(json.dumps({"arch": "arm", "image": "x", "mode": mode}))


def test_mode_precedence(tmp_path: Path) -> None:
    gen = BUILTINS["generic"]
    assert hybrid.resolve_mode("auto", gen, tmp_path) == ("emulated", "default")
    _stamp(tmp_path, "cross")
    assert hybrid.resolve_mode("auto", gen, tmp_path)[0] == "cross"  # the tree keeps its mode
    assert hybrid.resolve_mode("emulated", gen, tmp_path) == ("emulated", "build_mode")  # a flag wins
    prof = resolve_profile("generic", {"generic": {"build_mode": "emulated"}})
    assert hybrid.resolve_mode("auto", prof, tmp_path)[0] == "emulated"  # the profile over the tree
    with pytest.raises(UsageError, match="build_mode"):
        resolve_profile("generic", {"generic": {"build_mode": "fast"}})


def test_files_written_into_the_tree_name_each_other(tmp_path: Path) -> None:
    tc = cross.toolchain(lookup("arm"), "bookworm")
    d = hybrid.write_files(tmp_path / "build", tc)
    runner = d / "run-target"
    assert runner.stat().st_mode & 0o111
    assert subprocess.run([str(runner), "sh", "-c", "exit 7"]).returncode == 7  # it only execs its arguments
    text = (d / "toolchain.cmake").read_text()
    assert "arm-linux-gnueabihf-gcc" in text and str(runner) in text
    assert str(runner) in (d / "meson-cross.ini").read_text()
    mtime = (d / "toolchain.cmake").stat().st_mtime_ns
    hybrid.write_files(tmp_path / "build", tc)  # unchanged text: not rewritten (no needless reconfigure)
    assert (d / "toolchain.cmake").stat().st_mtime_ns == mtime
    vals = hybrid.placeholders(tc, d)
    assert vals["cmake_toolchain"] == str(d / "toolchain.cmake") and vals["host_triplet"] == "arm-linux-gnueabihf"


def test_cross_recipe_is_named_for_the_target_and_changes_with_packages() -> None:
    host = base_recipe(HOST, "bookworm", "minbase")
    arm, mips = lookup("arm"), lookup("mips")
    gen = BUILTINS["generic"]
    a = cross_recipe(host, arm, gen, (), ("crossbuild-essential-armhf",))
    assert a.tag.startswith("localhost/podrepro/cross-generic:arm-")
    assert a.labels()["io.podrepro.arch"] == "arm" and a.arch is HOST
    b = cross_recipe(host, arm, gen, (), ("crossbuild-essential-armhf", "libicu-dev:armhf"))
    c = cross_recipe(host, mips, gen, (), ("crossbuild-essential-mipsel",))
    assert len({a.tag, b.tag, c.tag}) == 3


def test_jsc_cross_build_passes_the_toolchain_file_to_build_jsc() -> None:
    from podrepro import runner

    jsc = BUILTINS["jsc"]
    assert jsc.cross_build is not None
    argv = runner.substitute(jsc.cross_build, {"cmake_toolchain": "/p/WebKitBuild/x/.podrepro-cross/toolchain.cmake"})
    cmakeargs = [a for a in argv if a.startswith("--cmakeargs=")]
    assert len(cmakeargs) == 1 and cmakeargs[0].endswith(" -DCMAKE_TOOLCHAIN_FILE=/p/WebKitBuild/x/.podrepro-cross/toolchain.cmake")
    assert argv[:-1] == list(jsc.build[:-1])  # the rest of the emulated argv, unchanged


class _FakeEngine:
    def __init__(self, answers: dict[str, tuple[int, bytes]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def run(self, image: str, command: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        self.calls.append(image)
        rc, out = self.answers[image]
        return subprocess.CompletedProcess(command, rc, out, b"")


class _FakeIndex:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {"x": {}, "t": {}}

    def all(self) -> dict[str, dict[str, Any]]:
        return self.entries

    def update(self, tag: str, **fields: Any) -> None:
        self.entries[tag].update(fields)


@pytest.mark.parametrize("mine, theirs, says", [
    (b"12.2.0\n", b"12.2.0\n", False), (b"12.2.0\n", b"13.1.0\n", True), (b"12.2.0\n", b"", False)])
def test_compiler_versions_are_compared_once(mine: bytes, theirs: bytes, says: bool) -> None:
    eng, idx = _FakeEngine({"x": (0, mine), "t": (0 if theirs else 1, theirs)}), _FakeIndex()
    tc = cross.toolchain(lookup("arm"), "bookworm")
    line = hybrid.compiler_mismatch(eng, idx, "x", "t", lookup("arm"), tc)  # type: ignore[arg-type]
    assert (line is not None) == says
    if says:
        assert line is not None and "gcc 12.2.0" in line and "gcc 13.1.0" in line
    hybrid.compiler_mismatch(eng, idx, "x", "t", lookup("arm"), tc)  # type: ignore[arg-type]
    assert eng.calls == ["x", "t"]  # the second time from the index


def test_test_mode_is_checked() -> None:
    assert resolve_profile("generic", {"generic": {"test_mode": "native-harness"}}).test_mode == "native-harness"
    with pytest.raises(UsageError, match="test_mode"):
        resolve_profile("generic", {"generic": {"test_mode": "native"}})
