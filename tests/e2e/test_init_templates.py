"""`podrepro init` templates run end to end: a fresh Meson project and a fresh autotools project,
each with one test that passes and one that fails only where `long` is 32 bits, get a
podrepro.toml from `init` with which `podrepro test arm` builds them and names the failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import approve, podrepro

pytestmark = pytest.mark.e2e

OK_C = "int main(void) { return 0; }\n"
# fails on 32-bit ARM: the bug the example carries, in its smallest form
WORDSIZE_C = '#include <stdio.h>\nint main(void) { printf("sizeof(long) = %zu\\n", sizeof(long)); return sizeof(long) == 8 ? 0 : 1; }\n'


EM_ARM = 40


def _machine(elf: Path) -> int:
    """An ELF file's e_machine (little-endian files)."""
    head = elf.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", elf
    return int.from_bytes(head[18:20], "little")


def _sources(p: Path) -> None:
    p.mkdir()
    (p / "ok.c").write_text(OK_C)
    (p / "wordsize.c").write_text(WORDSIZE_C)


def _init(p: Path, kind: str) -> None:
    i = podrepro("init", cwd=p)
    assert i.returncode == 0, i.stderr
    assert f"for {kind} (detected)" in i.stdout, i.stdout
    approve(p)  # the template asks for packages (meson; autoconf, automake...)


def test_meson_template_builds_and_tests_on_arm(tmp_path: Path) -> None:
    p = tmp_path / "mesonproj"
    _sources(p)
    (p / "meson.build").write_text(
        "project('ws', 'c')\n"
        "test('ok', executable('ok', 'ok.c'))\n"
        "test('wordsize', executable('wordsize', 'wordsize.c'))\n")
    _init(p, "meson")
    r = podrepro("test", "arm", cwd=p, timeout=3600)
    assert r.returncode == 1, r.stdout + r.stderr  # meson test's exit status when a test fails
    assert "podrepro: 2 tests ran on arm, 1 failed: wordsize" in r.stderr, r.stderr
    assert _machine(p / "build-podrepro-arm" / "wordsize") == EM_ARM
    # the filter reaches meson test (appended: a test name)
    f = podrepro("test", "arm", "--no-build", "--filter", "ok", cwd=p, timeout=600)
    assert f.returncode == 0, f.stdout + f.stderr
    assert "podrepro: 1 test ran on arm, all passed" in f.stderr, f.stderr


def test_autotools_template_builds_and_tests_on_arm(tmp_path: Path) -> None:
    p = tmp_path / "amproj"
    _sources(p)
    (p / "configure.ac").write_text(
        "AC_INIT([ws], [1.0])\nAM_INIT_AUTOMAKE([foreign])\nAC_PROG_CC\nAC_CONFIG_FILES([Makefile])\nAC_OUTPUT\n")
    (p / "Makefile.am").write_text("check_PROGRAMS = ok wordsize\nTESTS = ok wordsize\n")
    _init(p, "autotools")
    r = podrepro("test", "arm", cwd=p, timeout=3600)
    assert r.returncode == 2, r.stdout + r.stderr  # make's exit status when `make check` fails
    assert "podrepro: 2 tests ran on arm, 1 failed: wordsize" in r.stderr, r.stderr
    # configured and built for arm, in the tree (autoreconf and ./configure ran in the container)
    assert (p / "configure").is_file() and (p / "config.log").is_file()
    assert _machine(p / "wordsize") == EM_ARM
    # TESTS=PATTERN from --filter
    f = podrepro("test", "arm", "--no-build", "--filter", "ok", cwd=p, timeout=600)
    assert f.returncode == 0, f.stdout + f.stderr
    assert "podrepro: 1 test ran on arm, all passed" in f.stderr, f.stderr
