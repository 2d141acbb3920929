"""Profiles: what to install and what to run for a kind of project.

A profile names a Containerfile layered on the base image (``containerfile``, plus extra
``packages``), a ``build`` and a ``test`` command, how a test filter is passed
(``filter_option``), a per-arch ``build_dir`` and environment. Built-ins live here and in
``containerfiles/``; a project's podrepro.toml ``[profile.NAME]`` adds new ones or overrides
fields of a built-in one (``extends``).

Commands are argv lists (never shell strings run by a shell). Placeholders, substituted per
element: ``{build_dir}``, ``{arch}``, ``{debian_arch}``, ``{jobs}``, ``{timeout_multiplier}``,
``{src}``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from podrepro.errors import UsageError


def containerfiles_dir() -> Path:
    """Installed: podrepro/containerfiles (mapped from the top-level folder); checkout: ../containerfiles."""
    here = Path(__file__).resolve().parent
    for cand in (here / "containerfiles", here.parent / "containerfiles"):
        if cand.is_dir():
            return cand
    raise UsageError("podrepro's built-in Containerfiles are missing", hint="reinstall podrepro")


# a Debian package name, optionally :ARCH and =VERSION (apt-get install's own forms); no paths,
# no options, nothing a shell would read
PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+:~-]+)?")


# a profile's own choice of how to build and test (hybrid builds; the settings of the same names
# add "auto")
MODE_CHOICES = {"build_mode": ("emulated", "cross"), "test_mode": ("emulated", "native-harness")}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    containerfile: str | None = None     # path; None = no layer: the (package) base is the image
    apt: tuple[str, ...] = ()            # a built-in profile's own packages (a project Containerfile drops them)
    packages: tuple[str, ...] = ()       # podrepro.toml's packages, added to ``apt``
    build: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    filter_option: str | None = None    # e.g. "-R" (ctest), "--filter" (jsc); None = append as args
    build_dir: str = "build-podrepro-{arch}"
    env: tuple[str, ...] = ()
    ccache: bool = False
    timeout_env: str | None = None      # env var the test harness reads as a timeout multiplier
    timeout_option: str | None = None   # option taking a timeout in seconds (ctest: --timeout)
    timeout_base: int = 60              # native per-test timeout in seconds, scaled by timeout_multiplier
    results: str | None = None          # "KIND:PATH" of the harness's results file (see podrepro.results)
    shell: str = "/bin/bash"
    # hybrid builds (--cross): what the cross image adds to the toolchain (build tools stay native,
    # libraries go to the target through multiarch: podrepro.cross.split_packages), and a build
    # command of its own when the emulated one cannot take the cross files from the environment
    cross_packages: tuple[str, ...] = ()
    cross_build: tuple[str, ...] | None = None
    build_mode: str | None = None        # "emulated" | "cross" | None (the build_mode setting decides)
    test_mode: str | None = None         # "emulated" | "native-harness" | None (the test_mode setting decides)
    origin: str = "built-in"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def all_packages(self) -> tuple[str, ...]:
        """What the profile's image installs with apt: the built-in list, then the project's."""
        return tuple(dict.fromkeys((*self.apt, *self.packages)))

    def containerfile_path(self) -> Path | None:
        if self.containerfile is None:
            return None
        p = Path(self.containerfile)
        return p if p.is_absolute() else containerfiles_dir() / p


_JSC_BUILD = (
    "Tools/Scripts/build-jsc", "--release", "--jsc-only",
    "--cmakeargs=-DENABLE_STATIC_JSC=ON -DENABLE_JIT=OFF -DENABLE_C_LOOP=ON -DENABLE_WEBASSEMBLY=OFF"
    " -DENABLE_SAMPLING_PROFILER=OFF -DUSE_SYSTEM_MALLOC=ON",
)
_JSC_TEST = (
    "Tools/Scripts/run-javascriptcore-tests", "--no-build", "--no-fail-fast", "--release",
    "--memory-limited", "--jsc-only", "--no-testmasm", "--no-testair", "--no-testb3", "--no-testdfg",
    "--no-testapi", "--no-jit-stress-tests", "--json-output={build_dir}/jsc-test-results{run}.json",
)

BUILTINS: dict[str, Profile] = {
    "base": Profile(name="base", description="the bare Debian base image (no extra layer)",
                    build=("true",), test=("true",)),
    "generic": Profile(
        name="generic",
        description="C/C++ with CMake: build-essential, cmake, ninja, git, ccache, gdb, libc6-dbg, python3 "
                    "(Meson or Make projects: a profile in podrepro.toml, see the README)",
        # no ca-certificates: runs have no network unless asked (--network), and configuring it
        # (update-ca-certificates' per-certificate loop, twice, every command emulated) took 49 s
        # of the 63 s this list's maintainer scripts took under qemu on a first run (bench/first.py)
        apt=("build-essential", "cmake", "ninja-build", "make", "git", "ccache", "gdbserver", "gdb-minimal", "python3",
             # libc's separate debug symbols: 'podrepro debug' backtraces through libc have names
             "libc6-dbg"),
        # configure only a new build tree: an emulated re-configure costs seconds, and ninja
        # re-runs CMake by itself when a CMakeLists.txt changes
        # extra arguments (`podrepro build ARCH -- -DFOO=ON`) go to CMake's configure step, which
        # then runs even for an existing tree, so they take effect
        build=("sh", "-c", 'd="$1"; shift; { [ -f "$d/build.ninja" ] && [ $# -eq 0 ] || '
               'cmake -S . -B "$d" -G Ninja -DCMAKE_BUILD_TYPE=Debug "$@"; } && cmake --build "$d"',
               "podrepro-build", "{build_dir}"),
        # --no-tests=error: a filter that matches nothing, or a tree with no tests, fails; the
        # JUnit file (written in the test dir) is how podrepro counts what ran
        test=("ctest", "--test-dir", "{build_dir}", "--output-on-failure", "--no-tests=error",
              "--output-junit", "podrepro-junit{run}.xml"),
        results="junit:{build_dir}/podrepro-junit{run}.xml",
        filter_option="-R",
        timeout_option="--timeout",
        ccache=True,
    ),
    "jsc": Profile(
        name="jsc",
        description="JavaScriptCore in a WebKit checkout (the reprojsc.sh workflow): build-jsc + run-javascriptcore-tests",
        # what JavaScriptCore's build-jsc and run-javascriptcore-tests need on a 32-bit ARM/MIPS
        # Debian (the package list of the original reprojsc.sh)
        apt=("g++", "cmake", "ninja-build", "make", "libicu-dev", "git", "ruby", "ruby-highline", "ruby-json", "python3",
             "perl", "ccache", "ca-certificates"),
        build=_JSC_BUILD,
        # build-jsc takes its CMake options as one --cmakeargs string
        cross_build=(*_JSC_BUILD[:-1], _JSC_BUILD[-1] + " -DCMAKE_TOOLCHAIN_FILE={cmake_toolchain}"),
        cross_packages=("g++", "ruby", "ruby-highline", "ruby-json", "perl", "libicu-dev"),
        test=_JSC_TEST,
        filter_option="--filter",
        build_dir="WebKitBuild/podrepro-{arch}",
        results="jsc-json:{build_dir}/jsc-test-results{run}.json",
        env=("WEBKIT_OUTPUTDIR={src}/WebKitBuild/podrepro-{arch}",),
        timeout_env="JSCTEST_timeout",
        # 300 s x the default multiplier 4 = 1200 s, what WebKit's own scripts use on real boards
        timeout_base=300,
        ccache=True,
    ),
}


def builtin_names() -> list[str]:
    return list(BUILTINS)


def _argv(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        try:
            return tuple(shlex.split(v))
        except ValueError as e:
            raise UsageError(f"cannot split command {v!r}: {e}", hint="write the command as a TOML list") from None
    return tuple(v)


def runs_program(argv: tuple[str, ...], parent: tuple[str, ...]) -> bool:
    """Whether ``argv`` runs ``parent``'s program: its name (``ctest``) is a word of one of the
    arguments (``ctest``, ``/usr/bin/ctest``, ``sh -c '... exec ctest "$@"'``)."""
    if not parent:
        return False
    prog = re.escape(parent[0].rsplit("/", 1)[-1])
    return any(re.search(rf"(?<![\w.-]){prog}(?![\w.-])", a) for a in argv)


def resolve_profile(name: str, configured: Mapping[str, Mapping[str, Any]]) -> Profile:
    """A built-in profile, a configured one, or a configured override of a built-in."""
    body = configured.get(name)
    if body is None:
        if name in BUILTINS:
            return BUILTINS[name]
        known = sorted(set(BUILTINS) | set(configured))
        raise UsageError(f"unknown profile {name!r}; known: {', '.join(known)}",
                         hint="define it as [profile.NAME] in podrepro.toml")
    parent_name = body.get("extends", name if name in BUILTINS else None)
    if parent_name is not None and parent_name not in BUILTINS:
        raise UsageError(f"profile {name!r} extends unknown built-in {parent_name!r}",
                         hint=f"built-ins: {', '.join(BUILTINS)}")
    p = BUILTINS[parent_name] if parent_name else Profile(name=name, build=(), test=())
    changes: dict[str, Any] = {"name": name, "origin": "podrepro.toml"}
    for k in ("description", "containerfile", "filter_option", "build_dir", "timeout_env", "timeout_option", "shell",
              "timeout_base", "results"):
        if k in body:
            changes[k] = body[k]
    for k in ("packages", "cross_packages"):
        if k in body:
            bad = [x for x in body[k] if not PACKAGE_RE.fullmatch(x)]
            if bad:
                # they reach apt-get through a RUN line's shell in podrepro's own Containerfiles
                raise UsageError(f"profile {name!r}: {bad[0]!r} is not a Debian package name",
                                 hint="write names such as libicu-dev, libfoo-dev:armhf or libfoo1=1.2-3")
            changes[k] = tuple(body[k])
    if "env" in body:
        changes["env"] = tuple(body["env"])
    if "ccache" in body:
        changes["ccache"] = bool(body["ccache"])
    for k in ("build", "test", "cross_build"):
        if k in body:
            changes[k] = _argv(body[k])
    for key, choices in MODE_CHOICES.items():
        if key in body:
            if body[key] not in choices:
                raise UsageError(f"profile {name!r}: {key} must be {' or '.join(map(repr, choices))}, "
                                 f"not {body[key]!r}")
            changes[key] = body[key]
    if "test" in body:
        # the inherited results file belongs to the inherited test command; so do its filter and
        # timeout options (generic's are ctest's: `make check -R x --timeout 240` fails), unless the
        # new command still runs the parent's harness (a shell wrapper around ctest keeps -R)
        keep = runs_program(changes["test"], p.test)
        for k in ("results",) if keep else ("results", "filter_option", "timeout_option"):
            if k not in body:
                changes[k] = None
    if changes.get("results") is not None:
        from podrepro import results

        results.parse_spec(changes["results"])
    if "containerfile" in body:
        # a project Containerfile replaces the built-in one, whose package list this was
        changes["apt"] = ()
    return replace(p, **changes)
