"""Hybrid cross builds: toolchain facts against dpkg-architecture, and the generated CMake/Meson files
read back the way CMake (for real, when installed) and Meson's machine-file rules read them."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from podrepro import arches, cross
from podrepro.errors import EXIT_USAGE, UsageError

ARM = arches.lookup("arm")
S390X = arches.lookup("s390x")
# a space, quotes, a shell variable and CMake bracket closers: all must reach the tools unchanged
HOSTILE = "/opt/pod repro/it's o''k $HOME [=[x]=] ]]/emu"


def _tc(alias: str, suite: str | None = None) -> cross.Toolchain:
    a = arches.lookup(alias)
    return cross.toolchain(a, suite or cross.CROSS_SUITES[alias][0])


TARGETS = [a for a in arches.ARCHES if a != arches.HOST]  # what a cross toolchain builds for


# --- the table ---------------------------------------------------------------------------------

def test_cross_suites_cover_exactly_the_arch_table() -> None:
    # every target but the host itself, which builds natively
    assert set(cross.CROSS_SUITES) == set(arches.aliases()) - {arches.HOST.alias}
    with pytest.raises(UsageError, match="no cross toolchain and needs none"):
        cross.toolchain(arches.HOST, "bookworm")
    for alias, suites in cross.CROSS_SUITES.items():
        assert suites, alias
        assert set(suites) <= {"bookworm", "trixie"}, alias


@pytest.mark.parametrize("arch", TARGETS, ids=lambda a: a.alias)
def test_every_arch_has_a_toolchain_in_its_default_suite(arch: arches.Arch) -> None:
    assert arch.suite in cross.CROSS_SUITES[arch.alias]
    for suite in cross.CROSS_SUITES[arch.alias]:
        tc = cross.toolchain(arch, suite)
        assert tc.arch is arch and tc.suite == suite
        assert tc.endian == ("big" if arch.big_endian else "little")
        assert tc.triplet and tc.multiarch and tc.cmake_processor and tc.meson_cpu_family and tc.meson_cpu


def test_debian_dropped_mips_in_trixie_and_added_riscv64_cross() -> None:
    assert cross.CROSS_SUITES["mips"] == ("bookworm",)
    assert cross.CROSS_SUITES["mips64el"] == ("bookworm",)
    assert cross.CROSS_SUITES["riscv64"] == ("trixie",)


def test_no_toolchain_is_a_one_line_usage_error_with_a_way_out() -> None:
    with pytest.raises(UsageError) as ei:
        cross.toolchain(arches.lookup("mips"), "trixie")
    e = ei.value
    assert "no cross toolchain" in e.message and "mips" in e.message and "trixie" in e.message
    assert e.exit_code == EXIT_USAGE
    assert e.hint is not None and "--suite bookworm" in e.hint and "emulated" in e.hint
    assert "\n" not in e.message + e.hint
    with pytest.raises(UsageError, match="no cross toolchain for riscv64 in Debian bookworm"):
        cross.toolchain(arches.lookup("riscv64"), "bookworm")
    with pytest.raises(UsageError, match="no cross toolchain"):
        cross.toolchain(arches.lookup("arm"), "sid")


def test_known_values() -> None:
    arm = _tc("arm")
    assert (arm.triplet, arm.cmake_processor, arm.meson_cpu_family, arm.meson_cpu, arm.endian) == (
        "arm-linux-gnueabihf", "armv7l", "arm", "armv7", "little")
    assert _tc("armel").triplet == "arm-linux-gnueabi" and _tc("armel").meson_cpu == "armv5te"
    mips = _tc("mips")
    assert (mips.triplet, mips.cmake_processor, mips.meson_cpu_family) == ("mipsel-linux-gnu", "mipsel", "mips")
    assert _tc("mips64el").triplet == "mips64el-linux-gnuabi64" and _tc("mips64el").meson_cpu_family == "mips64"
    assert _tc("ppc64el").triplet == "powerpc64le-linux-gnu" and _tc("ppc64el").meson_cpu_family == "ppc64"
    assert _tc("s390x").endian == "big"
    i386 = _tc("i386")
    # the one arch whose tool prefix and multiarch directory differ
    assert (i386.triplet, i386.multiarch, i386.meson_cpu_family) == ("i686-linux-gnu", "i386-linux-gnu", "x86")


@pytest.mark.parametrize("arch", TARGETS, ids=lambda a: a.alias)
def test_cmake_processor_is_what_the_target_container_reports(arch: arches.Arch) -> None:
    # Debian's cross setups and native CMake in the emulated container (uname -m) agree but for mipsel
    tc = _tc(arch.alias)
    assert tc.cmake_processor == ("mipsel" if arch.debian == "mipsel" else arch.uname_m)


def test_triplets_match_dpkg_architecture() -> None:
    if shutil.which("dpkg-architecture") is None:
        pytest.skip("dpkg-architecture is not installed")
    for arch in TARGETS:
        out = subprocess.run(["dpkg-architecture", f"-a{arch.debian}"], capture_output=True, text=True,
                             check=True).stdout
        v = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        tc = _tc(arch.alias)
        assert tc.triplet == v["DEB_HOST_GNU_TYPE"], arch.alias
        assert tc.multiarch == v["DEB_HOST_MULTIARCH"], arch.alias
        assert tc.endian == v["DEB_HOST_ARCH_ENDIAN"], arch.alias


def test_packages_of_a_cross_image() -> None:
    assert _tc("arm").packages == ("crossbuild-essential-armhf", "libc6:armhf", "libstdc++6:armhf")
    assert _tc("i386").packages[0] == "crossbuild-essential-i386"


# --- CMake -------------------------------------------------------------------------------------

def test_cmake_file_text() -> None:
    text = cross.cmake_toolchain_file(_tc("arm"), "/podrepro/cross/emulator")
    for line in (
        "set(CMAKE_SYSTEM_NAME Linux)",
        "set(CMAKE_SYSTEM_PROCESSOR armv7l)",
        "set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)",
        "set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)",
        "set(CMAKE_ASM_COMPILER arm-linux-gnueabihf-gcc)",
        "set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)",
        "set(CMAKE_CROSSCOMPILING_EMULATOR [[/podrepro/cross/emulator]])",
        'set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig")',
    ):
        assert line in text.splitlines(), line
    assert re.search(r"set\(CMAKE_AR /usr/bin/arm-linux-gnueabihf-ar CACHE FILEPATH ", text)
    i386 = cross.cmake_toolchain_file(_tc("i386"), "/e")
    assert "set(CMAKE_C_COMPILER i686-linux-gnu-gcc)" in i386
    assert "set(CMAKE_LIBRARY_ARCHITECTURE i386-linux-gnu)" in i386


def _cmake_script(tmp_path: Path, toolchain_text: str) -> dict[str, str]:
    """Run cmake -P on a script that include()s the toolchain file; return what it printed."""
    tc_file = tmp_path / "toolchain.cmake"
    tc_file.write_text(toolchain_text)
    script = tmp_path / "probe.cmake"
    script.write_text(
        f"include([=[{tc_file}]=])\n"
        'message("PROC=${CMAKE_SYSTEM_PROCESSOR}")\n'
        'message("CC=${CMAKE_C_COMPILER}")\n'
        'message("AR=${CMAKE_AR}")\n'
        'message("EMU=${CMAKE_CROSSCOMPILING_EMULATOR}")\n'
        "list(LENGTH CMAKE_CROSSCOMPILING_EMULATOR n)\n"
        'message("EMU_ITEMS=${n}")\n'
        'message("PKGLIBDIR=$ENV{PKG_CONFIG_LIBDIR}")\n'
    )
    r = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in (r.stdout + r.stderr).splitlines() if "=" in line)


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_reads_the_toolchain_file(tmp_path: Path) -> None:
    got = _cmake_script(tmp_path, cross.cmake_toolchain_file(_tc("arm"), HOSTILE))
    assert got["PROC"] == "armv7l"
    assert got["CC"] == "arm-linux-gnueabihf-gcc"
    assert got["AR"] == "/usr/bin/arm-linux-gnueabihf-ar"
    assert got["EMU"] == HOSTILE
    assert got["EMU_ITEMS"] == "1"
    assert got["PKGLIBDIR"] == "/usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig"


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
@pytest.mark.parametrize("value", ["/a]]b", "/a]=", "/a]=]b]==]", "/x]", "/]==]"])
def test_cmake_bracket_argument_ends_where_it_should(tmp_path: Path, value: str) -> None:
    script = tmp_path / "b.cmake"
    script.write_text(f"set(v {cross._cmake_bracket(value)})\nmessage(\"V=${{v}}\")\n")
    r = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (r.stdout + r.stderr).strip() == f"V={value}"


@pytest.mark.parametrize("bad", ["relative/emu", "/a;b", "/a\nb", "/a\\b"])
def test_cmake_refuses_what_it_would_mangle(bad: str) -> None:
    with pytest.raises(UsageError) as ei:
        cross.cmake_toolchain_file(_tc("arm"), bad)
    assert ei.value.hint and "\n" not in ei.value.message


# --- Meson -------------------------------------------------------------------------------------

_MESON_TOKEN = re.compile(r"\s*(?:(?P<ml>'''(?:.|\n)*?''')|(?P<s>'(?:[^'\\]|\\.)*')|(?P<op>[\[\],+])"
                          r"|(?P<id>true|false))")


def _meson_value(raw: str) -> object:
    """Evaluate a machine-file value as Meson does: backslashes doubled first (so they are literal),
    then '...' strings (escapes decoded), '''...''' strings (raw), [arrays], booleans and + joins."""
    text = raw.replace("\\", "\\\\")
    toks: list[tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        m = _MESON_TOKEN.match(text, pos)
        assert m is not None, f"cannot lex {raw!r} at {text[pos:]!r}"
        kind = m.lastgroup
        assert kind is not None
        toks.append((kind, m.group(kind)))
        pos = m.end()

    def expr(i: int) -> tuple[object, int]:
        v, i = term(i)
        while i < len(toks) and toks[i] == ("op", "+"):
            w, i = term(i + 1)
            assert type(v) is type(w), raw
            v = v + w  # type: ignore[operator]
        return v, i

    def term(i: int) -> tuple[object, int]:
        kind, tok = toks[i]
        if kind == "ml":
            return tok[3:-3], i + 1
        if kind == "s":
            body = tok[1:-1]
            assert "\\'" not in body.replace("\\\\", ""), "Meson has no quote escape in machine files"
            return body.replace("\\\\", "\\"), i + 1
        if kind == "id":
            return tok == "true", i + 1
        assert tok == "[", raw
        items: list[object] = []
        i += 1
        while toks[i] != ("op", "]"):
            v, i = expr(i)
            items.append(v)
            if toks[i] == ("op", ","):
                i += 1
        return items, i + 1

    value, end = expr(0)
    assert end == len(toks), f"trailing tokens in {raw!r}"
    return value


class _MesonReader(configparser.ConfigParser):
    """Meson's own reader of machine files: '=' only as delimiter, no interpolation, keys case-kept."""

    def __init__(self) -> None:
        super().__init__(delimiters=["="], interpolation=None)

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def _parse_meson(text: str) -> dict[str, dict[str, object]]:
    cp = _MesonReader()
    cp.read_string(text)
    return {s: {k: _meson_value(v) for k, v in cp.items(s)} for s in cp.sections()}


def test_meson_cross_file_for_arm() -> None:
    m = _parse_meson(cross.meson_cross_file(_tc("arm"), "/podrepro/cross/emulator"))
    assert m["host_machine"] == {"system": "linux", "cpu_family": "arm", "cpu": "armv7", "endian": "little"}
    b = m["binaries"]
    assert b["c"] == "arm-linux-gnueabihf-gcc" and b["cpp"] == "arm-linux-gnueabihf-g++"
    assert b["ar"] == "arm-linux-gnueabihf-ar" and b["strip"] == "arm-linux-gnueabihf-strip"
    assert b["pkg-config"] == b["pkgconfig"] == "pkg-config"
    assert b["exe_wrapper"] == ["/podrepro/cross/emulator"]
    assert m["properties"]["pkg_config_libdir"] == ["/usr/lib/arm-linux-gnueabihf/pkgconfig", "/usr/share/pkgconfig"]


def test_meson_cross_file_for_s390x_is_big_endian() -> None:
    m = _parse_meson(cross.meson_cross_file(cross.toolchain(S390X, "trixie"), "/e"))
    assert m["host_machine"]["endian"] == "big"
    assert m["host_machine"]["cpu_family"] == "s390x"


@pytest.mark.parametrize("path", [HOSTILE, "/a\\b/c'd", "/x''y/z", "/'lead", "/plain"])
def test_meson_exe_wrapper_survives(path: str) -> None:
    m = _parse_meson(cross.meson_cross_file(_tc("arm"), path))
    assert m["binaries"]["exe_wrapper"] == [path]


@pytest.mark.parametrize("bad", ["/end'", "/q'\\x", "/three'''x", "relative"])
def test_meson_refuses_what_it_cannot_write(bad: str) -> None:
    with pytest.raises(UsageError):
        cross.meson_cross_file(_tc("arm"), bad)


# --- environment and the emulator --------------------------------------------------------------

def test_build_env() -> None:
    env = cross.build_env(_tc("arm"), "/podrepro/cross files/")
    assert env["CC"] == "arm-linux-gnueabihf-gcc" and env["CXX"] == "arm-linux-gnueabihf-g++"
    for tool in ("AR", "RANLIB", "STRIP", "NM", "OBJCOPY", "LD"):
        assert env[tool] == f"arm-linux-gnueabihf-{tool.lower()}"
    assert env["PKG_CONFIG"] == "pkg-config"
    assert env["PKG_CONFIG_LIBDIR"] == "/usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig"
    assert env["CMAKE_TOOLCHAIN_FILE"] == "/podrepro/cross files/toolchain.cmake"
    assert env["PODREPRO_MESON_CROSS_FILE"] == "/podrepro/cross files/meson-cross.ini"
    assert env["PODREPRO_HOST_TRIPLET"] == "arm-linux-gnueabihf"
    assert env["DEB_HOST_MULTIARCH"] == "arm-linux-gnueabihf"
    assert env["CROSS_COMPILE"] == "arm-linux-gnueabihf-"
    i386 = cross.build_env(_tc("i386"), "/f")
    assert (i386["CC"], i386["DEB_HOST_MULTIARCH"]) == ("i686-linux-gnu-gcc", "i386-linux-gnu")
    assert i386["PKG_CONFIG_LIBDIR"].startswith("/usr/lib/i386-linux-gnu/pkgconfig:")
    with pytest.raises(UsageError):
        cross.build_env(_tc("arm"), "relative")


def test_emulator_script_execs_its_arguments(tmp_path: Path) -> None:
    assert cross.EMULATOR_SCRIPT.startswith("#!/bin/sh\n")
    script = tmp_path / "emu"
    script.write_text(cross.EMULATOR_SCRIPT)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    r = subprocess.run([str(script), "printf", "%s|", "a b", "it's"], capture_output=True, text=True,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert r.returncode == 0 and r.stdout == "a b|it's|"


# --- packages ----------------------------------------------------------------------------------

def test_split_packages_rules() -> None:
    native, target = cross.split_packages(
        ["cmake", "libicu-dev", "libtool", "libtool-bin", "libfoo-dev:native", "libfoo-dev=1.2", "ninja-build",
         "zlib1g-dev", "libssl3", "libbar-dev:amd64", "python3", "libglib2.0-dev-bin", "libxml2-utils",
         "libeigen3-dev", "libqux-dev:armhf", "libicu-dev:armhf", "cmake", "  ", "libz-dev:armhf=1:2.3-1"],
        "armhf",
    )
    assert native == ("cmake", "libtool", "libtool-bin", "libfoo-dev:native", "ninja-build", "libbar-dev:amd64",
                      "python3", "libglib2.0-dev-bin", "libxml2-utils", "libeigen3-dev")
    assert target == ("libicu-dev:armhf", "libfoo-dev:armhf=1.2", "zlib1g-dev:armhf", "libssl3:armhf",
                      "libqux-dev:armhf", "libz-dev:armhf=1:2.3-1")


def test_split_packages_drops_duplicates_and_keeps_order() -> None:
    native, target = cross.split_packages(["b-dev", "git", "a-dev", "b-dev:mipsel", "git"], "mipsel")
    assert native == ("git",)
    assert target == ("b-dev:mipsel", "a-dev:mipsel")


@pytest.mark.parametrize("bad", ["Foo", "foo bar", "-x", "foo:"])
def test_split_packages_refuses_what_apt_would(bad: str) -> None:
    with pytest.raises(UsageError):
        cross.split_packages([bad], "armhf")


def test_split_packages_refuses_a_bad_arch() -> None:
    with pytest.raises(UsageError):
        cross.split_packages(["cmake"], "arm hf")
