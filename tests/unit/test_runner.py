"""The podman argv of shell/run/build/test, element by element (commands as data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podrepro import runner
from podrepro.arches import lookup
from podrepro.errors import UsageError
from podrepro.profiles import BUILTINS, resolve_profile


def _spec(**kw: object) -> runner.RunSpec:
    base: dict[str, object] = dict(arch=lookup("arm"), image="localhost/podrepro/generic:arm-abc", command=("uname", "-m"),
                                   project_root=Path("/home/u/proj"), workdir=Path("/home/u/proj/src"))
    base.update(kw)
    return runner.RunSpec(**base)  # type: ignore[arg-type]


def test_run_argv_defaults() -> None:
    argv = runner.run_argv("podman", _spec(), {"A": "1"})
    assert argv[:6] == ["podman", "run", "--rm", "--pull=never", "--platform", "linux/arm/v7"]
    assert argv[-3:] == ["localhost/podrepro/generic:arm-abc", "uname", "-m"]
    i = argv.index("--network")
    assert argv[i + 1] == "none"
    assert "--userns=keep-id" in argv
    assert argv[argv.index("--volume"):argv.index("--volume") + 2] == ["--volume", "/home/u/proj:/home/u/proj"]
    assert argv[argv.index("--workdir") + 1] == "/home/u/proj/src"
    assert "--env" in argv and "A=1" in argv
    for bad in ("--privileged", "--cap-add", "-t", "-i"):
        assert bad not in argv


def test_run_argv_network_modes_and_tty() -> None:
    assert "--network" not in runner.run_argv("podman", _spec(network="private"), {})
    host = runner.run_argv("podman", _spec(network="host"), {})
    assert host[host.index("--network") + 1] == "host"
    tty = runner.run_argv("podman", _spec(tty=True, interactive=True), {})
    assert "-i" in tty and "-t" in tty


def test_selinux_uses_label_disable_not_relabel() -> None:
    argv = runner.run_argv("podman", _spec(selinux=True), {})
    assert argv[argv.index("--security-opt") + 1] == "label=disable"
    assert not any(a.endswith(":z") or a.endswith(":Z") for a in argv)


def test_ccache_mount_and_env(tmp_path: Path) -> None:
    spec = _spec(ccache_dir=tmp_path)
    env = runner.container_env(spec, BUILTINS["generic"], {}, 4.0)
    assert str(env["PATH"]).startswith("/usr/lib/ccache:")
    assert env["CCACHE_DIR"] == runner.CCACHE_MOUNT and env["CMAKE_C_COMPILER_LAUNCHER"] == "ccache"
    argv = runner.run_argv("podman", spec, env)
    assert f"{tmp_path}:{runner.CCACHE_MOUNT}" in argv


def test_cpu_and_timeout_env() -> None:
    spec = _spec(cpu="cortex-a7")
    env = runner.container_env(spec, BUILTINS["jsc"], {}, 2.0)
    assert env["QEMU_CPU"] == "cortex-a7"
    assert env["JSCTEST_timeout"] == "600"
    assert env["PODREPRO_TIMEOUT_MULTIPLIER"] == "2"


def test_user_env_wins_over_profile_env() -> None:
    spec = _spec(env={"WEBKIT_OUTPUTDIR": "/x"})
    vals = runner.placeholders(lookup("arm"), BUILTINS["jsc"], Path("/src"), 4.0)
    env = runner.container_env(spec, BUILTINS["jsc"], vals, 4.0)
    assert env["WEBKIT_OUTPUTDIR"] == "/x"


def test_test_command_filter_is_one_element() -> None:
    prof = BUILTINS["generic"]
    vals = runner.placeholders(lookup("mips"), prof, Path("/p"), 4.0)
    evil = "'; touch /tmp/pwned #"
    argv = runner.test_command(prof, vals, evil, ["$(id)"], 4.0)
    assert argv == ["ctest", "--test-dir", "build-podrepro-mips", "--output-on-failure", "--no-tests=error",
                    "--output-junit", "podrepro-junit.xml", "--timeout", "240", "-R", evil, "$(id)"]


def test_filter_option_ending_in_equals_is_one_element() -> None:
    # make check TESTS=PATTERN (automake): one argv element, as documented
    prof = resolve_profile("mine", {"mine": {"test": "make check", "build": ["make"], "filter_option": "TESTS="}})
    vals = runner.placeholders(lookup("arm"), prof, Path("/p"), 4.0)
    assert runner.test_command(prof, vals, "t1 t2", [], 4.0) == ["make", "check", "TESTS=t1 t2"]
    prof = resolve_profile("m2", {"m2": {"test": "prove", "build": ["make"], "filter_option": "--filter"}})
    assert runner.test_command(prof, vals, "x", [], 4.0)[-2:] == ["--filter", "x"]


def test_jsc_commands() -> None:
    prof = BUILTINS["jsc"]
    vals = runner.placeholders(lookup("arm"), prof, Path("/wk"), 4.0)
    t = runner.test_command(prof, vals, "stress", [], 4.0)
    assert t[0] == "Tools/Scripts/run-javascriptcore-tests"
    assert "--json-output=WebKitBuild/podrepro-arm/jsc-test-results.json" in t
    assert t[-2:] == ["--filter", "stress"]
    b = runner.build_command(prof, vals, [])
    assert b[:3] == ["Tools/Scripts/build-jsc", "--release", "--jsc-only"]


def test_filter_without_option_is_appended() -> None:
    prof = resolve_profile("mine", {"mine": {"test": "make check", "build": ["make"]}})
    vals = runner.placeholders(lookup("arm"), prof, Path("/p"), 1.0)
    assert runner.test_command(prof, vals, "a b", ["-k"], 1.0) == ["make", "check", "a b", "-k"]


def test_parse_env() -> None:
    # B: passed through by name (None: podman's --env B reads it; the value is in no argv)
    assert runner.parse_env(["A=1", "B", "C"], {"B": "s3cr3t"}) == {"A": "1", "B": None}
    argv = runner.run_argv("podman", _spec(env={"A": "1", "B": None}), {"A": "1", "B": None})
    assert argv[argv.index("B") - 1] == "--env" and not [a for a in argv if "s3cr3t" in a]
    with pytest.raises(UsageError):
        runner.parse_env(["1BAD=x"], {})
    with pytest.raises(UsageError):
        runner.parse_env(["A B=x"], {})


def test_workdir_for() -> None:
    root = Path("/tmp")
    assert runner.workdir_for(root, Path("/tmp")) == root
    assert runner.workdir_for(Path("/nonexistent/root"), Path("/")) == Path("/nonexistent/root")


def test_placeholders_leave_unknown_braces() -> None:
    assert runner.substitute(["{arch}-{nope}", "${HOME}"], {"arch": "arm"}) == ["arm-{nope}", "${HOME}"]


def test_the_projects_git_dir_is_mounted_read_only(tmp_path: Path) -> None:
    (tmp_path / ".git" / "hooks").mkdir(parents=True)
    argv = runner.run_argv("podman", _spec(project_root=tmp_path, workdir=tmp_path), {})
    vols = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert vols[:2] == [f"{tmp_path}:{tmp_path}", f"{tmp_path}/.git:{tmp_path}/.git:ro"]
    argv = runner.run_argv("podman", _spec(project_root=tmp_path, workdir=tmp_path, git_writable=True), {})
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"] == [f"{tmp_path}:{tmp_path}"]
    # a worktree's .git is a file: read-only too
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / ".git").write_text("gitdir: /elsewhere\n")
    argv = runner.run_argv("podman", _spec(project_root=wt, workdir=wt), {})
    assert f"{wt}/.git:{wt}/.git:ro" in argv


@pytest.mark.parametrize("bad", ["foo; curl x | sh", "$(id)", "./evil.deb", "/tmp/x.deb", "-o", "--allow-unauthenticated",
                                 "Foo", "a b", "libfoo`id`"])
def test_profile_packages_must_be_package_names(bad: str) -> None:
    """`packages` reach apt-get through a RUN line's shell in podrepro's own Containerfile (which
    shares the .deb cache): anything but a package name (an option, a path, shell syntax) is refused."""
    with pytest.raises(UsageError, match="not a Debian package name"):
        resolve_profile("generic", {"generic": {"packages": ["cmake", bad]}})


def test_profile_packages_take_apt_forms() -> None:
    p = resolve_profile("generic", {"generic": {"packages": ["libicu-dev", "libfoo-dev:armhf", "g++-12", "libfoo1=1.2-3+b1"]}})
    assert p.packages == ("libicu-dev", "libfoo-dev:armhf", "g++-12", "libfoo1=1.2-3+b1")


def test_a_project_containerfile_gets_its_own_deb_cache(tmp_path: Path) -> None:
    from podrepro.paths import Paths

    paths = Paths(cache=tmp_path, config=tmp_path, state=tmp_path)
    shared = paths.debs("armhf", "bookworm")
    a = paths.debs("armhf", "bookworm", tmp_path / "a" / "Containerfile")
    b = paths.debs("armhf", "bookworm", tmp_path / "b" / "Containerfile")
    assert len({shared, a, b}) == 3
    # never inside the shared one: a bootstrap syncs the whole shared directory in
    assert not a.is_relative_to(shared.parent) and not b.is_relative_to(shared.parent)
