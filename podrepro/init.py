"""``podrepro init``: a commented podrepro.toml for the project in a directory, from its build system.

Detection looks at the top of the directory only: ``CMakeLists.txt`` (CMake: the built-in
generic profile as it is), ``meson.build`` (Meson), ``configure.ac``/``configure`` (autotools),
``Makefile``/``GNUmakefile`` (Make), in that order; anything else gets the CMake template with
a note. The text is data: the unit tests parse every template with podrepro's own config loader.
"""

from __future__ import annotations

from pathlib import Path

from podrepro.errors import UsageError

FILE = "podrepro.toml"

_HEAD = """\
# podrepro.toml: how podrepro builds and tests this project on foreign architectures.
# Every key is documented in podrepro's README ("Configuration"). Commands are argv lists, never
# shell strings; placeholders: {build_dir} (build-podrepro-ARCH by default), {arch}, {debian_arch},
# {src} (the project root inside the container), {jobs} (the host's CPU count).
#
# suite = "bookworm"             # Debian suite of the images; match the CI you are reproducing
#                                # (trixie armhf has a 64-bit time_t, bookworm's is 32-bit)
# build_mode = "cross"           # build natively with a cross toolchain, test emulated ("Hybrid builds")
"""

TEMPLATES: dict[str, str] = {
    "cmake": _HEAD + """\
default_profile = "generic"

# The built-in generic profile builds CMake projects as they are:
#   build: cmake -S . -B {build_dir} -G Ninja -DCMAKE_BUILD_TYPE=Debug, then cmake --build {build_dir}
#          (`podrepro build ARCH -- -DFOO=ON` passes options to that configure step)
#   test:  ctest --test-dir {build_dir} --output-on-failure --no-tests=error ... (results as JUnit)
# Uncomment to add what your project needs (packages need `podrepro trust` once):
# [profile.generic]
# packages = ["libssl-dev", "zlib1g-dev"]
# env = ["MALLOC_CHECK_=3"]
""",
    "meson": _HEAD + """\
default_profile = "meson"

[profile.meson]
extends = "generic"
packages = ["meson"]                 # packages need `podrepro trust` once (and after every edit)
build = ["sh", "-c", '[ -f "$1/build.ninja" ] || meson setup "$1"; meson compile -C "$1"', "build", "{build_dir}"]
# meson's per-test timeouts (30 s unless meson.build says) times podrepro's multiplier for emulation
test = ["meson", "test", "-C", "{build_dir}", "--print-errorlogs", "--timeout-multiplier", "{timeout_multiplier}"]
results = "junit:{build_dir}/meson-logs/testlog.junit.xml"
# --filter NAME is appended: meson test runs the tests of that name
# cross builds: meson setup --cross-file {meson_cross_file}
cross_build = ["sh", "-c", '[ -f "$1/build.ninja" ] || meson setup --cross-file "$2" "$1"; meson compile -C "$1"', "build", "{build_dir}", "{meson_cross_file}"]
""",
    "autotools": _HEAD + """\
default_profile = "autotools"

[profile.autotools]
extends = "generic"
packages = ["autoconf", "automake", "libtool", "pkg-config"]   # need `podrepro trust` once
# an in-tree build: one architecture at a time (`make distclean` between them)
build = ["sh", "-c", '[ -f Makefile ] || { [ -x ./configure ] || autoreconf -fi; ./configure; }; make -j"$1"', "build", "{jobs}"]
test = ["make", "check"]
filter_option = "TESTS="             # --filter PATTERN becomes TESTS=PATTERN (one argument)
results = "automake:test-suite.log"  # automake's parallel harness: how podrepro counts what ran
# cross builds: ./configure --host=$PODREPRO_HOST_TRIPLET
cross_build = ["sh", "-c", '[ -f Makefile ] || { [ -x ./configure ] || autoreconf -fi; ./configure --host="$2"; }; make -j"$1"', "build", "{jobs}", "{host_triplet}"]
""",
    "make": _HEAD + """\
default_profile = "make"

[profile.make]
extends = "generic"
# an in-tree build: one architecture at a time (`make clean` between them)
build = ["make", "-j{jobs}"]
test = ["make", "check"]             # or ["make", "test"]: what your Makefile has
filter_option = "TESTS="             # --filter PATTERN becomes TESTS=PATTERN (one argument)
# cross builds: CC, CXX, AR... come from the environment (make -e, or Makefiles that use $(CC))
""",
}

MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cmake", ("CMakeLists.txt",)),
    ("meson", ("meson.build",)),
    ("autotools", ("configure.ac", "configure.in", "configure")),
    ("make", ("Makefile", "GNUmakefile", "makefile")),
)


def detect(directory: Path) -> str | None:
    for kind, names in MARKERS:
        if any((directory / n).is_file() for n in names):
            return kind
    return None


def write(directory: Path, kind: str | None = None) -> tuple[Path, str, str]:
    """Write the template for ``kind`` (detected when None) to ``directory``/podrepro.toml; never
    overwrites. Returns the file, the kind used and how it was chosen ("given", "detected", or
    "fallback": nothing detected, the CMake template)."""
    target = directory / FILE
    if target.exists() or target.is_symlink():
        raise UsageError(f"{target} exists; podrepro init never overwrites it",
                         hint="edit it, or remove it and run 'podrepro init' again")
    if kind is not None and kind not in TEMPLATES:
        raise UsageError(f"unknown build system {kind!r}", hint=f"one of: {', '.join(TEMPLATES)}")
    found = None if kind else detect(directory)
    use = kind or found or "cmake"
    with open(target, "x", encoding="utf-8") as f:  # "x": a file that appeared meanwhile is not replaced
        f.write(TEMPLATES[use])
    return target, use, "given" if kind else ("detected" if found else "fallback")


def asks_for_packages(kind: str) -> bool:
    """Whether the template has packages (which count only after ``podrepro trust``)."""
    import tomllib

    data = tomllib.loads(TEMPLATES[kind])
    return any(isinstance(b, dict) and b.get("packages") for b in data.get("profile", {}).values())
