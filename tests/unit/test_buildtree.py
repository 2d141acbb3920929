"""Build trees: stale CMake caches (moved, copied, other arch/image) are reset; build dirs
that resolve outside the project are refused; results files are counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podrepro import buildtree, results
from podrepro.buildtree import TreeFor
from podrepro.errors import UsageError


def _cmake_tree(build: Path, src: Path) -> None:
    build.mkdir(parents=True)
    (build / "CMakeCache.txt").write_text(
        f"# This is the CMakeCache file.\nCMAKE_CACHEFILE_DIR:INTERNAL={build}\nCMAKE_HOME_DIRECTORY:INTERNAL={src}\n")
    (build / "CMakeFiles").mkdir()
    (build / "CMakeFiles" / "x.log").write_text("x")
    (build / "build.ninja").write_text("# ninja")
    (build / "test_checksum").write_text("an object that stays")


def test_fresh_tree_is_created_and_stamped(tmp_path: Path) -> None:
    notes = buildtree.prepare(tmp_path, "build-podrepro-arm", TreeFor("arm", "img:1"))
    assert notes == []
    stamp = json.loads((tmp_path / "build-podrepro-arm" / buildtree.STAMP).read_text())
    assert stamp == {"arch": "arm", "image": "img:1", "mode": "emulated"}


def test_tree_configured_here_is_kept(tmp_path: Path) -> None:
    _cmake_tree(tmp_path / "b", tmp_path)
    assert buildtree.prepare(tmp_path, "b", TreeFor("arm", "img:1")) == []
    assert (tmp_path / "b" / "CMakeCache.txt").exists()
    # the same again with the stamp in place: still nothing to do
    assert buildtree.prepare(tmp_path, "b", TreeFor("arm", "img:1")) == []
    assert (tmp_path / "b" / "build.ninja").exists()


def test_moved_tree_is_reset(tmp_path: Path) -> None:
    old = tmp_path / "old"
    _cmake_tree(old / "b", old)
    new = tmp_path / "new"
    old.rename(new)
    notes = buildtree.prepare(new, "b", TreeFor("arm", "img:1"))
    assert len(notes) == 1 and notes[0].startswith("reconfiguring b: it was configured in ")
    assert str(old / "b") in notes[0]
    for gone in ("CMakeCache.txt", "CMakeFiles", "build.ninja"):
        assert not (new / "b" / gone).exists(), gone
    assert (new / "b" / "test_checksum").exists()  # objects stay: the build system decides


def test_cache_for_another_source_dir_is_reset(tmp_path: Path) -> None:
    _cmake_tree(tmp_path / "proj" / "b", tmp_path / "elsewhere")
    (tmp_path / "proj" / "b" / "CMakeCache.txt").write_text(
        f"CMAKE_CACHEFILE_DIR:INTERNAL={tmp_path / 'proj' / 'b'}\nCMAKE_HOME_DIRECTORY:INTERNAL={tmp_path / 'elsewhere'}\n")
    notes = buildtree.prepare(tmp_path / "proj", "b", TreeFor("arm", "img:1"))
    assert notes == [f"reconfiguring b: it was configured for the source directory {tmp_path / 'elsewhere'}"]


@pytest.mark.parametrize("field,now", [("arch", TreeFor("mips", "img:1")), ("image", TreeFor("arm", "img:2")),
                                       ("mode", TreeFor("arm", "img:1", "cross"))])
def test_tree_for_another_arch_image_or_mode_is_reset(tmp_path: Path, field: str, now: TreeFor) -> None:
    _cmake_tree(tmp_path / "b", tmp_path)
    assert buildtree.prepare(tmp_path, "b", TreeFor("arm", "img:1")) == []
    notes = buildtree.prepare(tmp_path, "b", now)
    assert len(notes) == 1 and f"it was configured for {field} " in notes[0], notes
    assert not (tmp_path / "b" / "CMakeCache.txt").exists()


def test_nested_cmake_dir_is_checked(tmp_path: Path) -> None:
    # build-jsc configures WebKitBuild/podrepro-ARCH/Release
    _cmake_tree(tmp_path / "old" / "W" / "Release", tmp_path / "old")
    (tmp_path / "old").rename(tmp_path / "new")
    notes = buildtree.prepare(tmp_path / "new", "W", TreeFor("arm", "i"))
    assert notes and notes[0].startswith("reconfiguring W/Release:")


def test_build_dir_through_a_planted_symlink_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "CMakeCache.txt").write_text("CMAKE_CACHEFILE_DIR:INTERNAL=/nowhere\n")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "out").symlink_to(outside)
    with pytest.raises(UsageError, match="outside the project"):
        buildtree.prepare(proj, "out", TreeFor("arm", "i"))
    assert (outside / "CMakeCache.txt").exists()
    assert not (outside / buildtree.STAMP).exists()


CTEST_JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="(empty)" tests="3" failures="2" disabled="0" skipped="0" hostname="" time="0">
  <testcase name="checksum" classname="checksum" time="0.1" status="fail"><failure message="Failed"/></testcase>
  <testcase name="y2038" classname="y2038" time="0.1" status="fail"><failure message="Failed"/></testcase>
  <testcase name="wire" classname="wire" time="0.1" status="run"/>
  <testcase name="off" classname="off" time="0" status="disabled"/>
</testsuite>
"""


def test_junit_counts_what_ran_and_failed(tmp_path: Path) -> None:
    f = tmp_path / "j.xml"
    f.write_text(CTEST_JUNIT)
    c = results.count("junit", f)
    assert c.ran == 3 and c.failed == ("checksum", "y2038") and c.found
    f.write_text('<?xml version="1.0"?><testsuite name="(empty)" tests="0" failures="0"/>')
    assert results.count("junit", f).ran == 0
    f.write_text("<not xml")
    assert results.count("junit", f) == results.Counted(ran=0, found=False)
    f.unlink()
    assert results.count("junit", f) == results.Counted(ran=0, found=False)


def test_jsc_json(tmp_path: Path) -> None:
    f = tmp_path / "r.json"
    f.write_text('{"allDFGTestsPassed":true,"allMasmTestsPassed":false,"stressTestFailures":["stress/a.js"]}')
    c = results.count("jsc-json", f)
    assert c.ran is None and set(c.failed) == {"MasmTests", "stress/a.js"}
    f.write_text("{}")
    assert results.count("jsc-json", f).ran == 0


# automake 1.16's test-suite.log after `make check` of tests/e2e/test_init_templates.py's project on arm
AUTOMAKE_LOG = """\
=========================================
   ws 1.0: ./test-suite.log
=========================================

# TOTAL: 3
# PASS:  1
# SKIP:  1
# XFAIL: 0
# FAIL:  1
# XPASS: 0
# ERROR: 0

.. contents:: :depth: 2

SKIP: later
===========

FAIL: not a section, a line of the skipped test's output
SKIP later (exit status: 77)

FAIL: wordsize
==============

sizeof(long) = 4
FAIL: wordsize
FAIL wordsize (exit status: 1)

"""


def test_automake_test_suite_log(tmp_path: Path) -> None:
    f = tmp_path / "test-suite.log"
    f.write_text(AUTOMAKE_LOG)
    # the skipped test did not run; "FAIL: ..." lines of the tests' own output are not sections
    assert results.count("automake", f) == results.Counted(ran=2, failed=("wordsize",))
    # a failure counted in the header whose section is missing still counts
    f.write_text(AUTOMAKE_LOG.replace("FAIL: wordsize\n==============\n", ""))
    assert results.count("automake", f) == results.Counted(ran=2, failed=("?",))
    f.write_text("# PASS: 1\n")
    assert results.count("automake", f) == results.Counted(ran=0, found=False)


def test_results_spec() -> None:
    assert results.parse_spec("junit:{build_dir}/x.xml") == ("junit", "{build_dir}/x.xml")
    for bad in ("junit", "tap:x", "junit:"):
        with pytest.raises(UsageError):
            results.parse_spec(bad)
