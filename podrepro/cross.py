"""Hybrid cross builds: the cross toolchain of each architecture and the files that point builds at it.

The build runs natively in an amd64 Debian image of the target's suite (the *cross image*) with
``crossbuild-essential-<debarch>`` and the target's libraries installed through multiarch
(``libfoo-dev:<debarch>``); the tests then run in the emulated target container. This module is pure:
it returns facts, file texts and environments, and the image builder and runner write and pass them on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from podrepro.arches import Arch
from podrepro.errors import UsageError

# File names under the files_dir that build_env() points at; whoever writes the files uses these.
CMAKE_TOOLCHAIN_NAME = "toolchain.cmake"
MESON_CROSS_NAME = "meson-cross.ini"

EMULATOR_SCRIPT = (
    "#!/bin/sh\n"
    "# podrepro's cross emulator (CMAKE_CROSSCOMPILING_EMULATOR, Meson exe_wrapper): in the cross image\n"
    "# binfmt_misc runs the target binary through qemu; in the target container it runs natively.\n"
    'exec "$@"\n'
)

# Debian suites whose amd64 archive has crossbuild-essential-<debarch> *and* the target's own packages
# (libc6:<debarch>, libfoo-dev:<debarch>), which multiarch needs from the same archive.
# bookworm: checked on a bookworm amd64 host with `apt-cache search crossbuild-essential` (armhf, armel,
#   arm64, i386, mipsel, mips64el, ppc64el, s390x present; riscv64 absent: bookworm has no riscv64
#   crossbuild-essential, Debian bug #1022540, and riscv64 was not a bookworm release architecture).
# trixie: its amd64 archive has crossbuild-essential-riscv64 too, and still -mipsel/-mips64el, but
#   mipsel and mips64el are no longer release architectures, so there is no libc6:mipsel/mips64el to
#   install; armel (its last release) and i386 are still there.
# tests/e2e/test_cross_suites.py checks this table against each suite's Release file (Architectures)
# and amd64 Packages index on the machine's mirror.
CROSS_SUITES: dict[str, tuple[str, ...]] = {
    "arm": ("bookworm", "trixie"),
    "mips": ("bookworm",),
    "arm64": ("bookworm", "trixie"),
    "armel": ("bookworm", "trixie"),
    "mips64el": ("bookworm",),
    "i386": ("bookworm", "trixie"),
    "ppc64el": ("bookworm", "trixie"),
    "s390x": ("bookworm", "trixie"),
    "riscv64": ("trixie",),
}


@dataclass(frozen=True)
class _Facts:
    triplet: str          # DEB_HOST_GNU_TYPE: the prefix of the cross tools (arm-linux-gnueabihf-gcc)
    multiarch: str        # DEB_HOST_MULTIARCH: where multiarch puts the libraries (/usr/lib/<multiarch>)
    cmake_processor: str
    meson_cpu_family: str
    meson_cpu: str


# Per Debian architecture. cmake_processor is what Debian's own cross setups pass (debhelper's cmake
# build system and `meson env2mfile` in bookworm: DEB_HOST_GNU_CPU, except arm -> armv7l, mips64el ->
# mips64, powerpc64le -> ppc64le); except for mipsel it is also what native CMake reports in the
# emulated target container (uname -m), so hybrid and emulated builds take the same branches.
# meson_cpu_family uses the names of Meson's reference table (not debcrossgen's raw GNU CPU).
# i386 is the one architecture whose GNU type (i686-linux-gnu) differs from its multiarch tuple.
_FACTS: dict[str, _Facts] = {
    "armhf": _Facts("arm-linux-gnueabihf", "arm-linux-gnueabihf", "armv7l", "arm", "armv7"),
    "armel": _Facts("arm-linux-gnueabi", "arm-linux-gnueabi", "armv7l", "arm", "armv5te"),
    "mipsel": _Facts("mipsel-linux-gnu", "mipsel-linux-gnu", "mipsel", "mips", "mips32r2"),
    "arm64": _Facts("aarch64-linux-gnu", "aarch64-linux-gnu", "aarch64", "aarch64", "aarch64"),
    "mips64el": _Facts("mips64el-linux-gnuabi64", "mips64el-linux-gnuabi64", "mips64", "mips64", "mips64r2"),
    "i386": _Facts("i686-linux-gnu", "i386-linux-gnu", "i686", "x86", "i686"),
    "ppc64el": _Facts("powerpc64le-linux-gnu", "powerpc64le-linux-gnu", "ppc64le", "ppc64", "ppc64le"),
    "s390x": _Facts("s390x-linux-gnu", "s390x-linux-gnu", "s390x", "s390x", "s390x"),
    "riscv64": _Facts("riscv64-linux-gnu", "riscv64-linux-gnu", "riscv64", "riscv64", "riscv64"),
}


@dataclass(frozen=True)
class Toolchain:
    arch: Arch
    suite: str
    triplet: str            # GNU type of the Debian arch: the prefix of every cross tool
    cmake_processor: str    # CMAKE_SYSTEM_PROCESSOR
    meson_cpu_family: str   # [host_machine] cpu_family
    meson_cpu: str          # [host_machine] cpu
    endian: str             # "little" / "big"
    multiarch: str          # DEB_HOST_MULTIARCH; equals triplet except i386 (i386-linux-gnu)

    @property
    def packages(self) -> tuple[str, ...]:
        """What a cross image installs for this target: the cross compilers, and the target's C and C++
        runtime (so target binaries can run in the cross image through binfmt: try_run, test discovery)."""
        d = self.arch.debian
        return (f"crossbuild-essential-{d}", f"libc6:{d}", f"libstdc++6:{d}")

    @property
    def pkg_config_libdir(self) -> str:
        """The target's pkg-config search path: multiarch .pc files and architecture-independent ones."""
        return f"/usr/lib/{self.multiarch}/pkgconfig:/usr/share/pkgconfig"


def toolchain(arch: Arch, suite: str) -> Toolchain:
    """The cross toolchain for ``arch`` in Debian ``suite``; a UsageError when that suite has none."""
    if arch.alias == "amd64":
        raise UsageError("amd64 is this host's own architecture: it has no cross toolchain and needs none",
                         hint='build it as it is (drop --cross / build_mode = "emulated")')
    suites = CROSS_SUITES.get(arch.alias, ())
    facts = _FACTS.get(arch.debian)
    if suite not in suites or facts is None:
        hint = 'build emulated (drop --cross / build_mode = "emulated")'
        if suites:
            hint += ", or use " + " or ".join(f"--suite {s}" for s in suites)
        raise UsageError(f"no cross toolchain for {arch.alias} in Debian {suite}", hint=hint)
    return Toolchain(
        arch=arch, suite=suite, triplet=facts.triplet, cmake_processor=facts.cmake_processor,
        meson_cpu_family=facts.meson_cpu_family, meson_cpu=facts.meson_cpu,
        endian="big" if arch.big_endian else "little", multiarch=facts.multiarch,
    )


def _check_path(what: str, path: str, forbidden: str = "") -> None:
    """A path written into a generated file: absolute, one line, none of ``forbidden``."""
    bad = [c for c in "\n\r\0" + forbidden if c in path]
    if not path.startswith("/") or bad:
        why = "not an absolute path" if not path.startswith("/") else f"contains {bad[0]!r}"
        hint = "use an absolute path on one line" + (f" and without {' or '.join(map(repr, forbidden))}" if forbidden else "")
        raise UsageError(f"{what} {path!r} cannot go into a cross file: {why}", hint=hint)


def _cmake_bracket(value: str) -> str:
    """``value`` as a CMake bracket argument: taken literally (no escapes, no ${} expansion)."""
    n = 0
    while True:
        close = "]" + "=" * n + "]"
        # the argument ends at the first `close` after the opening: it must be the one we append
        if (value + close).find(close) == len(value):
            return "[" + "=" * n + "[" + value + close
        n += 1


def cmake_toolchain_file(tc: Toolchain, emulator: str) -> str:
    """CMake toolchain file text for ``tc``; try_run and ctest run target programs through ``emulator``."""
    # CMake splits CMAKE_CROSSCOMPILING_EMULATOR at ; (a list: program and arguments) and turns a backslash into /
    _check_path("emulator", emulator, forbidden=";\\")
    t = tc.triplet
    return "\n".join([
        f"# podrepro cross toolchain: {tc.arch.alias} ({tc.arch.debian}) in Debian {tc.suite}. Generated.",
        "set(CMAKE_SYSTEM_NAME Linux)",
        f"set(CMAKE_SYSTEM_PROCESSOR {tc.cmake_processor})",
        f"set(CMAKE_C_COMPILER {t}-gcc)",
        f"set(CMAKE_CXX_COMPILER {t}-g++)",
        f"set(CMAKE_ASM_COMPILER {t}-gcc)",
        "# binutils: cache entries, so CMake's own search (which runs after this file) keeps them",
        f'set(CMAKE_AR /usr/bin/{t}-ar CACHE FILEPATH "archiver of the cross toolchain")',
        f'set(CMAKE_RANLIB /usr/bin/{t}-ranlib CACHE FILEPATH "ranlib of the cross toolchain")',
        f'set(CMAKE_STRIP /usr/bin/{t}-strip CACHE FILEPATH "strip of the cross toolchain")',
        "",
        "# Where find_library/find_path/find_package look. Debian multiarch puts the target's libraries in",
        f"# /usr/lib/{tc.multiarch}, its headers in /usr/include and /usr/include/{tc.multiarch}, and the",
        f"# cross libc's own copy in /usr/{t}. CMake searches <prefix>/lib/<CMAKE_LIBRARY_ARCHITECTURE> and",
        "# <prefix>/include/<CMAKE_LIBRARY_ARCHITECTURE>, so with the target's multiarch tuple set it finds",
        "# the target's files in the ordinary prefixes and never the build machine's (x86_64-linux-gnu).",
        "# Mode ONLY would re-root those prefixes under the find root (/usr/<triplet>/usr/lib/...) and miss",
        "# every multiarch library; so, as Debian's own cross builds (debhelper) do, BOTH: the cross root",
        "# first, then the multiarch paths. Programs are the build machine's (NEVER re-rooted).",
        f"set(CMAKE_LIBRARY_ARCHITECTURE {tc.multiarch})",
        f"set(CMAKE_FIND_ROOT_PATH /usr/{t})",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)",
        "",
        "# pkg-config: the plain one (FindPkgConfig finds it), limited to the target's .pc files. This",
        "# works with every pkg-config/pkgconf of every suite, unlike <triplet>-pkg-config, which Debian",
        "# ships only with pkgconf:<debarch>.",
        f'set(ENV{{PKG_CONFIG_LIBDIR}} "{tc.pkg_config_libdir}")',
        "",
        "# try_run and ctest run target programs through this (binfmt_misc + qemu in the cross image)",
        f"set(CMAKE_CROSSCOMPILING_EMULATOR {_cmake_bracket(emulator)})",
        "",
    ])


# a quote or two and the character after it: what a Meson multiline string can hold (see _meson_str)
_MESON_QUOTED = re.compile(r"('{1,2}[^'\\])")


def _meson_str(value: str) -> str:
    """``value`` as a Meson machine-file string expression.

    Machine files take backslashes literally (Meson doubles them before parsing, for Windows paths),
    so a plain ``'...'`` string holds anything but a quote, and no escape can make one. A quote goes
    into a multiline ``'''...'''`` string (no escapes either) with the character after it, since such
    a string can neither end with a quote nor hold three in a row; the pieces are joined with ``+``.
    """
    pieces = [p for p in _MESON_QUOTED.split(value) if p]
    out: list[str] = []
    for p in pieces:
        if _MESON_QUOTED.fullmatch(p):
            out.append(f"'''{p}'''")
        elif "'" in p:
            raise UsageError(f"{value!r} cannot go into a Meson cross file",
                             hint="use a path without a quote at its end, before a backslash, or three in a row")
        else:
            out.append(f"'{p}'")
    return " + ".join(out) or "''"


def meson_cross_file(tc: Toolchain, exe_wrapper: str) -> str:
    """Meson cross file text for ``tc``; Meson runs target programs (tests, run checks) through ``exe_wrapper``."""
    _check_path("exe_wrapper", exe_wrapper)
    t = tc.triplet
    libdirs = ", ".join(_meson_str(d) for d in tc.pkg_config_libdir.split(":"))
    return "\n".join([
        f"# podrepro cross file: {tc.arch.alias} ({tc.arch.debian}) in Debian {tc.suite}. Generated.",
        "[binaries]",
        f"c = {_meson_str(t + '-gcc')}",
        f"cpp = {_meson_str(t + '-g++')}",
        f"ar = {_meson_str(t + '-ar')}",
        f"strip = {_meson_str(t + '-strip')}",
        f"objcopy = {_meson_str(t + '-objcopy')}",
        "# plain pkg-config limited by pkg_config_libdir below; Meson >= 1.3 reads 'pkg-config', older",
        "# Meson (bookworm has 1.0) only 'pkgconfig': both, with one value, are accepted by both",
        "pkg-config = 'pkg-config'",
        "pkgconfig = 'pkg-config'",
        f"exe_wrapper = [{_meson_str(exe_wrapper)}]",
        "",
        "[properties]",
        f"pkg_config_libdir = [{libdirs}]",
        "",
        "[host_machine]",
        "system = 'linux'",
        f"cpu_family = {_meson_str(tc.meson_cpu_family)}",
        f"cpu = {_meson_str(tc.meson_cpu)}",
        f"endian = {_meson_str(tc.endian)}",
        "",
    ])


def build_env(tc: Toolchain, files_dir: str) -> dict[str, str]:
    """Environment of a cross build: Make/autotools tools, pkg-config, and where the CMake/Meson files are.

    ``files_dir`` is where the cross image holds this toolchain's files (``CMAKE_TOOLCHAIN_NAME``,
    ``MESON_CROSS_NAME``); CMake >= 3.21 reads CMAKE_TOOLCHAIN_FILE from the environment, Meson needs
    ``--cross-file $PODREPRO_MESON_CROSS_FILE`` and ./configure ``--host=$PODREPRO_HOST_TRIPLET``.
    """
    _check_path("files directory", files_dir)
    base = files_dir.rstrip("/")
    t = tc.triplet
    return {
        "CC": f"{t}-gcc",
        "CXX": f"{t}-g++",
        "AR": f"{t}-ar",
        "RANLIB": f"{t}-ranlib",
        "STRIP": f"{t}-strip",
        "NM": f"{t}-nm",
        "OBJCOPY": f"{t}-objcopy",
        "LD": f"{t}-ld",
        "PKG_CONFIG": "pkg-config",
        "PKG_CONFIG_LIBDIR": tc.pkg_config_libdir,
        "CMAKE_TOOLCHAIN_FILE": f"{base}/{CMAKE_TOOLCHAIN_NAME}",
        "PODREPRO_MESON_CROSS_FILE": f"{base}/{MESON_CROSS_NAME}",
        "PODREPRO_HOST_TRIPLET": t,
        "DEB_HOST_MULTIARCH": tc.multiarch,
        "CROSS_COMPILE": f"{t}-",
    }


_PKG = re.compile(r"(?P<name>[a-z0-9][a-z0-9+.-]+)(?::(?P<arch>[a-z0-9-]+))?(?P<rest>[=/]\S+)?")
_DEBARCH = re.compile(r"[a-z0-9][a-z0-9-]*")
# lib* packages that are build tools, not libraries
_NATIVE_LIB_NAMES = frozenset({"libtool", "libtool-bin"})
# programs, interpreters' modules and Architecture: all data: run on, or belong to, the build machine
_NATIVE_SUFFIXES = ("-bin", "-utils", "-tools", "-progs", "-perl", "-java", "-doc", "-common", "-data")
# Architecture: all header-only -dev packages (checked with apt-cache show in bookworm): apt has no
# name:<debarch> for them, and the one native copy serves every architecture. linux-libc-dev is arch
# all from trixie on; in bookworm libc6-dev:<debarch> pulls in the target's own copy anyway.
_ARCH_ALL_DEV = frozenset({
    "libeigen3-dev", "nlohmann-json3-dev", "rapidjson-dev", "libglm-dev", "libasio-dev", "libmsgsl-dev",
    "libcxxopts-dev", "linux-libc-dev",
})


def _for_target(name: str) -> bool:
    if name in _NATIVE_LIB_NAMES or name in _ARCH_ALL_DEV or name.endswith(_NATIVE_SUFFIXES):
        return False
    return name.endswith("-dev") or name.startswith("lib")


def split_packages(packages: Iterable[str], debarch: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A profile's apt packages split into (for the build machine, for the target as ``name:debarch``).

    To the target, qualified ``name:<debarch>`` (a ``=version`` or ``/release`` suffix kept after the
    qualifier: ``libfoo-dev:armhf=1.2``): names already qualified ``:<debarch>``; names ending in
    ``-dev``; library packages (``lib*``). Except, and so native: lib* build tools (libtool,
    libtool-bin), names ending in -bin, -utils, -tools, -progs, -perl, -java, -doc, -common or -data,
    and a few Architecture: all header-only -dev packages (libeigen3-dev, nlohmann-json3-dev, ...).
    Native and unchanged: a name with any other qualifier (``:native``, ``:amd64``, the way to keep
    another Architecture: all -dev package native) and everything else (cmake, ninja-build, meson,
    perl, python3, git, bison, ...). Order is kept; duplicates (after qualifying) are dropped.
    """
    if not _DEBARCH.fullmatch(debarch):
        raise UsageError(f"not a Debian architecture: {debarch!r}", hint="run 'podrepro arches' to see them")
    native: list[str] = []
    target: list[str] = []
    for raw in packages:
        spec = raw.strip()
        if not spec:
            continue
        m = _PKG.fullmatch(spec)
        if m is None:
            raise UsageError(f"not a Debian package: {spec!r}",
                             hint="write name, name:arch, name=version or name:arch=version (lower case)")
        name, qual, rest = m["name"], m["arch"], m["rest"] or ""
        if qual == debarch or (qual is None and _for_target(name)):
            out, item = target, f"{name}:{debarch}{rest}"
        else:
            out, item = native, spec
        if item not in out:
            out.append(item)
    return tuple(native), tuple(target)
