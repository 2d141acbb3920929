"""Fuzzed command lines (issue 6, item 1).

hypothesis drives ``podrepro.cli.main.run_cli`` in-process with generated argument lists: known,
abbreviated, mis-cased and look-alike architecture names, odd unicode, huge strings, options with
missing values, conflicting flags, and paths that do not exist, are files, directories or devices.
Every run must end with a documented exit code and never print a traceback.

Nothing reaches podman: the subprocess chokepoint (``process.run``/``popen``/``exec_``) is replaced
by a stub that records the argv and raises an engine error (exit 125), so a command that gets as
far as wanting the engine ends there, the way a host without podman would.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podrepro.arches import ARCHES
from podrepro.cli.main import run_cli
from podrepro.errors import EXIT_ENGINE, PodreproError
from tests.unit.sandbox import isolate

# 0 ok, 1 podrepro error, 2 usage, 125 engine, 126/127 cannot invoke / not found, 130 interrupted.
# In-process nothing runs an inner command, so there is no passthrough code to allow for.
DOCUMENTED = {0, 1, 2, 125, 126, 127, 130}

COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.function_scoped_fixture])


class EngineStubbed(PodreproError):
    """What the stubbed chokepoint raises: the command got as far as the engine."""

    exit_code = EXIT_ENGINE


@dataclass
class Sandbox:
    root: Path
    calls: list[list[str]] = field(default_factory=list)
    escaped: list[str] = field(default_factory=list)   # processes started around the chokepoint

    def paths(self) -> list[str]:
        r = self.root
        return [str(r / "missing" / "nope.tar"), str(r / "afile.txt"), str(r / "adir"), "/dev/null",
                str(r / "garbage.tar"), str(r / "empty.tar"), "", ".", "..", "/", "~/nope", "-",
                str(r / "adir") + "/", str(r / "afile.txt") + "/x", "\udcff", "x" * 5000]


def _stub(sb: Sandbox) -> tuple[Any, Any, Any]:
    def run(argv: Sequence[str], **kw: Any) -> NoReturn:
        sb.calls.append(list(argv))
        raise EngineStubbed(f"(test) {argv[0]} not run")

    def popen(argv: Sequence[str], **kw: Any) -> NoReturn:
        sb.calls.append(list(argv))
        raise EngineStubbed(f"(test) {argv[0]} not started")

    def exec_(argv: Sequence[str], **kw: Any) -> NoReturn:
        sb.calls.append(list(argv))
        raise EngineStubbed(f"(test) {argv[0]} not exec'd")

    return run, popen, exec_


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "afile.txt").write_text("not a tarball\n")
    (root / "adir").mkdir()
    (root / "garbage.tar").write_bytes(os.urandom(4096))
    (root / "empty.tar").write_bytes(b"")
    work = root / "work"
    work.mkdir()
    sb = Sandbox(root)
    run, popen, exec_ = _stub(sb)
    mp = pytest.MonkeyPatch()
    isolate(mp, root, run, popen, exec_)

    def trap(name: str) -> Any:
        def spawned(*args: Any, **kw: Any) -> NoReturn:
            sb.escaped.append(f"{name}{args[:2]!r}")
            raise OSError(f"(test) {name} outside the chokepoint")
        return spawned

    mp.setattr(subprocess, "Popen", trap("subprocess.Popen"))
    for fn in ("execv", "execve", "execvp", "execvpe", "posix_spawn", "posix_spawnp", "system", "fork"):
        mp.setattr(os, fn, trap(f"os.{fn}"))
    mp.chdir(work)
    try:
        yield sb
    finally:
        mp.undo()


def invoke(sb: Sandbox, argv: list[str]) -> tuple[int, str, str]:
    """run_cli with stdout/stderr captured and the environment restored afterwards."""
    env = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.StringIO("")  # a closed-looking, non-TTY stdin: nothing may wait for input
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_cli(argv)
    finally:
        sys.stdin = stdin
        os.environ.clear()
        os.environ.update(env)
    return code, out.getvalue(), err.getvalue()


def check(sb: Sandbox, argv: list[str]) -> None:
    code, out, err = invoke(sb, argv)
    assert code in DOCUMENTED, (argv, code, err)
    assert "Traceback" not in err and "Traceback" not in out, (argv, err)
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) <= 1, (argv, err)
    if code == 2:
        assert errors, ("a usage error says what is wrong", argv, err)
    # every external command went to the (stubbed) chokepoint, and nothing around it started a
    # process: subprocess.Popen and the exec/spawn family are booby-trapped in the sandbox
    assert sb.escaped == [], ("a process was started outside the chokepoint", argv, sb.escaped)
    for call in sb.calls:
        assert call and all(isinstance(a, str) for a in call), call
    sb.calls.clear()


# ---- strategies ---------------------------------------------------------------------------------

_spellings = sorted({s for a in ARCHES for s in (a.alias, a.debian, *a.spellings)})
# no NUL: execve cannot pass one in an argument, so a real command line never holds it
weird_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40)
arch_names = st.one_of(
    st.sampled_from(_spellings),
    st.sampled_from(_spellings).map(lambda s: s[: max(1, len(s) // 2)]),          # abbreviations
    st.sampled_from(_spellings).map(str.upper),
    st.sampled_from(["ａｒｍ", "аrm", "arm\u200b", "arm ", " arm", "arm\n", "mips\t", "ARM64", "armv9", "x86_64",
                     "amd64", "", "-", "--", "-arm", "arm=1", "a" * 100_000, "💥", "arm/v7", "linux/arm/v7"]),
    weird_text,
)
ROOT_CMDS: list[list[str]] = [
    [], ["arches"], ["config"], ["config", "show"], ["doctor"], ["binfmt"], ["binfmt", "status"],
    ["binfmt", "register"], ["binfmt", "unregister"], ["image"], ["image", "build"], ["image", "ls"],
    ["image", "rm"], ["image", "prune"], ["image", "export"], ["image", "import"], ["image", "push"],
    ["image", "pull"], ["run"], ["shell"], ["build"], ["test"], ["nosuch"], ["imag"], ["--version"], ["-h"],
]
OPTIONS = ["--profile", "-p", "--suite", "--mirror", "--src", "--env", "-e", "--cpu", "--network", "--no-network",
           "--host-network", "--filter", "-f", "--timeout-multiplier", "--rebuild", "--from-rootfs", "--base",
           "--json", "--output", "-o", "--dry-run", "--all", "--yes", "-y", "--force", "--no-persist",
           "--no-probe", "-v", "--verbose", "--help", "--", "--bogus", "-Z", "--prof", "--json=yes"]
VALUES = st.one_of(
    st.sampled_from(["generic", "jsc", "base", "nope", "bookworm", "sid", "trixie", "auto", "FOO=bar", "FOO",
                     "1=2", "=", "0", "-1", "1e999", "nan", "inf", "1001", "2", "cortex-a7",
                     "http://127.0.0.1:9/debian", "ftp://x", "registry.invalid/x:y", "a" * 70_000]),
    weird_text,
)


@st.composite
def argv_lists(draw: st.DrawFn, paths: list[str]) -> list[str]:
    head = list(draw(st.sampled_from(ROOT_CMDS)))
    if draw(st.booleans()):
        head.insert(0, draw(st.sampled_from(["-v", "--verbose", "--version", "-h", "--bogus"])))
    tail: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            tail.append(draw(arch_names))
        elif kind == 1:
            tail.append(draw(st.sampled_from(OPTIONS)))           # maybe without its value
        elif kind == 2:
            tail += [draw(st.sampled_from(OPTIONS)), draw(VALUES)]
        elif kind == 3:
            tail += [draw(st.sampled_from(["--src", "--from-rootfs", "-o", "--output"])), draw(st.sampled_from(paths))]
        elif kind == 4:
            tail.append(draw(st.sampled_from(paths)))
        else:
            tail.append(draw(weird_text))
    return head + tail


# ---- tests --------------------------------------------------------------------------------------

@settings(max_examples=700, **COMMON)  # type: ignore[arg-type]
@given(data=st.data())
def test_fuzzed_argv(sandbox: Sandbox, data: st.DataObject) -> None:
    check(sandbox, data.draw(argv_lists(sandbox.paths())))


@settings(max_examples=200, **COMMON)  # type: ignore[arg-type]
@given(cmd=st.sampled_from(["run", "shell", "build", "test", "image build", "image export", "arches", "doctor",
                            "binfmt status", "binfmt register"]),
       arch=arch_names)
def test_fuzzed_architecture_names(sandbox: Sandbox, cmd: str, arch: str) -> None:
    argv = [*cmd.split(), arch]
    if cmd == "run":
        argv += ["--", "true"]
    if cmd == "image export":
        argv += ["-o", str(sandbox.root / "out.tar")]
    check(sandbox, argv)


@settings(max_examples=150, **COMMON)  # type: ignore[arg-type]
@given(cmd=st.sampled_from(["image import", "image build arm --from-rootfs", "run --src", "image export arm -o",
                            "image build arm --base"]),
       path=st.one_of(st.sampled_from(["/dev/null", "/dev/zero", "/proc/self/status", "/etc/shadow"]), weird_text))
def test_fuzzed_paths(sandbox: Sandbox, cmd: str, path: str) -> None:
    argv = [*cmd.split(), path]
    if cmd == "run --src":
        argv += ["arm", "--", "true"]
    check(sandbox, argv)


CONFLICTS: list[list[str]] = [
    ["image", "build", "arm", "--from-rootfs", "/dev/null", "--base", "x/y:z"],
    ["image", "build", "arm", "--rebuild", "--rebuild", "--json", "--json"],
    ["run", "--network", "--no-network", "--host-network", "arm", "--", "true"],
    ["run", "--profile", "a", "--profile", "b", "arm", "--", "true"],
    ["test", "--filter", "x", "--filter", "y", "arm"],
    ["run", "arm"], ["run", "arm", "--"], ["run", "--", "arm", "true"], ["shell"], ["test", "--filter"],
    ["image", "export", "arm"], ["image", "export", "arm", "-o"], ["image", "rm"], ["image", "push", "arm"],
    ["binfmt", "register"], ["binfmt", "register", "arm", "--yes"], ["binfmt", "unregister", "--yes"],
    ["run", "--timeout-multiplier", "2", "arm", "--", "true"], ["test", "--timeout-multiplier", "nan", "arm"],
    ["test", "--timeout-multiplier", "-5", "arm"], ["test", "--timeout-multiplier", "1e999", "arm"],
    ["run", "-e", "1BAD=x", "arm", "--", "true"], ["run", "-e", "", "arm", "--", "true"],
    ["run", "--suite", "trixie", "mips", "--", "true"], ["run", "--suite", "../../etc", "arm", "--", "true"],
    ["run", "--profile", "../x", "arm", "--", "true"], ["config", "show", "--json", "--json"],
]


@pytest.mark.parametrize("argv", CONFLICTS, ids=[" ".join(a) or "empty" for a in CONFLICTS])
def test_conflicting_and_missing(sandbox: Sandbox, argv: list[str]) -> None:
    check(sandbox, argv)


def test_usage_errors_are_one_line_exit_2(sandbox: Sandbox) -> None:
    for argv in (["run", "armv9", "--", "true"], ["image", "build", "arm", "--from-rootfs"], ["nosuch"],
                 ["image", "build", "arm", "--from-rootfs", "/dev/null", "--base", "x/y:z"]):
        code, _, err = invoke(sandbox, argv)
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith("error: "), (argv, err)
    sandbox.calls.clear()


def test_nothing_reached_the_engine_unstubbed(sandbox: Sandbox) -> None:
    """The stub really is in place: a command that needs podman ends at it with 125."""
    code, _, err = invoke(sandbox, ["run", "arm", "--", "true"])
    assert code == EXIT_ENGINE, err
    assert sandbox.calls and sandbox.calls[-1][0] == "podman", sandbox.calls
    sandbox.calls.clear()


def test_the_trap_catches_a_process_started_around_the_chokepoint(sandbox: Sandbox) -> None:
    """The booby trap works: code that calls subprocess directly is caught, not run."""
    with pytest.raises(OSError, match="outside the chokepoint"):
        subprocess.run(["true"])
    assert sandbox.escaped == ["subprocess.Popen(['true'],)"]
    sandbox.escaped.clear()
