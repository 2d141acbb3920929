"""Issue 5 end to end: run/shell/build/test in emulated containers, for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, approve, no_leftover_containers, podman, podrepro, through_a_pty

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("arch, uname", [("arm", "armv7l"), ("mips", "mips")])
def test_run_uname(arch: str, uname: str, project: Path) -> None:
    r = podrepro("run", arch, "--", "uname", "-m", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == uname


def test_exit_code_and_argv_pass_through(project: Path) -> None:
    r = podrepro("run", "arm", "--", "sh", "-c", 'printf "%s|" "$@"; exit 7', "sh", "a b", "$(id)", "';x")
    assert r.returncode == 7
    assert r.stdout == "a b|$(id)|';x|"


def test_command_not_found_fails_with_one_clear_line(project: Path) -> None:
    # PID 1 is podman's init (catatonit), so signals reach emulated commands; the price is that
    # a command that cannot be executed exits 1 with catatonit's line instead of podman's 127
    r = podrepro("run", "arm", "--", "no-such-command-here", cwd=project)
    assert r.returncode != 0
    assert "No such file or directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_same_directory_and_ownership(project: Path) -> None:
    sub = project / "src"
    r = podrepro("run", "arm", "--", "sh", "-c", "pwd; touch made-inside; id -u", cwd=sub)
    assert r.returncode == 0, r.stderr
    pwd, uid = r.stdout.split()
    assert pwd == str(sub)
    assert int(uid) == os.getuid()
    st = (sub / "made-inside").stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_network_off_by_default_and_on_with_flag(project: Path) -> None:
    off = podrepro("run", "arm", "--", "ls", "/sys/class/net", cwd=project)
    assert off.returncode == 0, off.stderr
    assert off.stdout.split() == ["lo"]
    on = podrepro("run", "--network", "arm", "--", "ls", "/sys/class/net", cwd=project)
    assert on.returncode == 0, on.stderr
    assert len(on.stdout.split()) > 1


def test_env_passthrough(project: Path) -> None:
    r = podrepro("run", "-e", "FOO=bar baz", "-e", "FROM_HOST", "arm", "--", "sh", "-c", 'echo "$FOO|$FROM_HOST"',
                 cwd=project, env={"FROM_HOST": "hosted"})
    assert r.stdout.strip() == "bar baz|hosted"


def test_cpu_model_reaches_qemu(project: Path) -> None:
    # what the program sees of its CPU: the kernel-style hardware capabilities qemu puts in its
    # auxiliary vector (glibc prints them with LD_SHOW_AUXV). The default model (max) is an ARMv8
    # with crypto extensions; a Cortex-A8 has no integer divide (idiva) and no VFPv4
    show = ["sh", "-c", 'echo "$QEMU_CPU"; LD_SHOW_AUXV=1 /bin/true | grep -E "^AT_(HWCAP|PLATFORM):"']
    a8 = podrepro("run", "--cpu", "cortex-a8", "arm", "--", *show, cwd=project)
    assert a8.returncode == 0, a8.stderr
    lines = a8.stdout.splitlines()
    assert lines[0] == "cortex-a8"
    hw = dict(ln.split(":", 1) for ln in lines[1:])
    caps = set(hw["AT_HWCAP"].split())
    assert "neon" in caps and "idiva" not in caps and "vfpv4" not in caps, hw
    assert hw["AT_PLATFORM"].strip() == "v7l"
    default = podrepro("run", "arm", "--", *show, cwd=project)
    assert default.returncode == 0, default.stderr
    hw = dict(ln.split(":", 1) for ln in default.stdout.splitlines()[1:])
    assert "idiva" in hw["AT_HWCAP"].split() and hw["AT_PLATFORM"].strip() == "v8l", hw
    bad = podrepro("run", "--cpu", "no-such-cpu", "arm", "--", "true", cwd=project)
    assert bad.returncode != 0


def test_example_reproduces_the_32bit_bug_on_arm(project: Path) -> None:
    # natively, all tests pass (plain cc: no cmake needed on the host)
    for t in ("checksum", "y2038", "wire"):
        exe = project / f"native-{t}"
        subprocess.run(["cc", "-o", str(exe), f"tests/test_{t}.c", "src/checksum.c", "src/dates.c", "src/wire.c",
                        "-Isrc"], cwd=project, check=True)
        assert subprocess.run([str(exe)], capture_output=True).returncode == 0, t
    b = podrepro("build", "arm", cwd=project, timeout=1800)
    assert b.returncode == 0, b.stdout + b.stderr
    assert (project / "build-podrepro-arm" / "test_checksum").exists()
    r = podrepro("test", "arm", cwd=project, timeout=1800)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "checksum (Failed)" in out, out
    assert "y2038 (Failed)" in out, out
    assert "sizeof(long) = 4" in out
    # files written by the build belong to the user
    assert (project / "build-podrepro-arm").stat().st_uid == os.getuid()


def test_test_builds_what_it_tests_and_names_the_failures(project: Path) -> None:
    # the README's `podrepro test arm` in a fresh copy of the example: no separate build
    assert not (project / "build-podrepro-arm").exists()
    r = podrepro("test", "arm", cwd=project, timeout=1800)
    out = r.stdout + r.stderr
    assert r.returncode == 8, out  # ctest's code for failed tests, passed through
    assert "podrepro: building first" in r.stderr
    assert (project / "build-podrepro-arm" / "test_checksum").exists()
    assert "podrepro: 3 tests ran on arm, 2 failed: checksum, y2038" in r.stderr, r.stderr
    # a second run builds nothing new and reports the same
    r2 = podrepro("test", "arm", "--filter", "wire", cwd=project, timeout=1800)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "podrepro: 1 test ran on arm, all passed" in r2.stderr, r2.stderr


def test_extra_build_arguments_reach_cmakes_configure_step(project: Path) -> None:
    b = podrepro("build", "arm", cwd=project, timeout=1800)
    assert b.returncode == 0, b.stdout + b.stderr
    # an existing tree: the arguments still take effect (the configure step runs again)
    b = podrepro("build", "arm", "--", "-DPODREPRO_TEST_DEFINE=ON", cwd=project, timeout=1800)
    assert b.returncode == 0, b.stdout + b.stderr
    cache = (project / "build-podrepro-arm" / "CMakeCache.txt").read_text()
    assert "PODREPRO_TEST_DEFINE:UNINITIALIZED=ON" in cache, cache[-2000:]


def test_a_test_run_that_ran_no_test_fails(project: Path) -> None:
    # nothing built and --no-build: ctest finds no test
    r = podrepro("test", "arm", "--no-build", cwd=project, timeout=1800)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: no test ran on arm: "), r.stderr
    assert "building first" not in r.stderr
    # the mission's own example on a project with no "stress" test: built, but nothing matched
    r = podrepro("test", "mips", "--filter", "stress", cwd=project, timeout=1800)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "error: no test ran on mips: --filter 'stress' matched no test "
        "(hint: check the pattern; without --filter every test runs)"), r.stderr


def test_a_moved_tree_is_reconfigured(project: Path, tmp_path: Path) -> None:
    b = podrepro("build", "arm", cwd=project, timeout=1800)
    assert b.returncode == 0, b.stdout + b.stderr
    moved = tmp_path / "moved" / "wordsize"
    moved.parent.mkdir()
    project.rename(moved)
    b = podrepro("build", "arm", cwd=moved, timeout=1800)
    assert b.returncode == 0, b.stdout + b.stderr
    assert f"podrepro: reconfiguring build-podrepro-arm: it was configured in {project}/build-podrepro-arm" in b.stderr
    assert "is different than the directory" not in b.stdout + b.stderr
    r = podrepro("test", "arm", "--no-build", cwd=moved, timeout=1800)
    assert r.returncode == 8 and "2 failed: checksum, y2038" in r.stderr, r.stdout + r.stderr


MESON_TOML = """default_profile = "meson"
[profile.meson]
extends = "generic"
packages = ["meson"]
build = ["sh", "-c", '[ -f "$1/build.ninja" ] || meson setup "$1"; meson compile -C "$1"', "build", "{build_dir}"]
test = ["meson", "test", "-C", "{build_dir}", "--print-errorlogs", "--timeout-multiplier", "{timeout_multiplier}"]
results = "junit:{build_dir}/meson-logs/testlog.junit.xml"
"""


def test_the_readmes_meson_profile(tmp_path: Path) -> None:
    """The README's Meson example, as written there, on a tiny Meson project."""
    readme = (REPO / "README.md").read_text()
    assert MESON_TOML.split("[profile.meson]")[1] in readme, "the README's Meson profile changed: update this test"
    proj = tmp_path / "mesonproj"
    proj.mkdir()
    (proj / "podrepro.toml").write_text(MESON_TOML)
    approve(proj)  # its packages and Containerfile (the README says to run `podrepro trust`)
    (proj / "meson.build").write_text("project('w', 'c')\n"
                                      "test('long_is_8', executable('t', 't.c'))\n")
    (proj / "t.c").write_text("int main(void) { return sizeof(long) == 8 ? 0 : 1; }\n")
    r = podrepro("test", "arm", cwd=proj, timeout=3600)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "podrepro: 1 test ran on arm, 1 failed: long_is_8" in r.stderr, r.stderr


def test_filter_runs_only_named_test_on_mips(project: Path) -> None:
    b = podrepro("build", "mips", cwd=project, timeout=1800)
    assert b.returncode == 0, b.stdout + b.stderr
    r = podrepro("test", "mips", "--filter", "wire", cwd=project, timeout=1800)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out  # the endianness bug does not show on little-endian mips
    assert "100% tests passed, 0 tests failed out of 1" in out
    assert "checksum" not in out
    r2 = podrepro("test", "mips", "--filter", "checksum", cwd=project, timeout=1800)
    assert r2.returncode != 0
    assert "out of 1" in r2.stdout + r2.stderr
    # per-arch build directories never overwrite each other
    assert (project / "build-podrepro-mips").is_dir()


def test_shell_through_a_pty(project: Path) -> None:
    sent: list[int] = []

    def answer(out: bytes) -> bytes | None:
        if not sent and (b"$ " in out or b"# " in out):
            sent.append(1)
            return b"uname -m; touch probe; exit 3\n"
        return None

    out, code = through_a_pty(["shell", "arm"], project, answer)
    assert sent, out
    assert b"armv7l" in out, out
    assert code == 3
    probe = (project / "probe").stat()
    assert probe.st_uid == os.getuid()
    assert no_leftover_containers() == []


RECORDER = """#!/bin/sh
# records the argv it received, one NUL-terminated element each, per arch
out="$PODREPRO_RECORD_DIR/$(basename "$0")-$PODREPRO_ARCH.argv"
printf '%s\\0' "$@" > "$out"
# like run-javascriptcore-tests: the results file podrepro counts (no failures)
for a in "$@"; do
    case "$a" in --json-output=*) echo '{"stressTestFailures": []}' > "${a#--json-output=}" ;; esac
done
"""


@pytest.fixture
def fake_webkit(tmp_path: Path) -> Path:
    """A tiny stand-in for a WebKit checkout: the two scripts record their argv."""
    root = tmp_path / "WebKit"
    (root / "Tools" / "Scripts").mkdir(parents=True)
    for s in ("build-jsc", "run-javascriptcore-tests"):
        p = root / "Tools" / "Scripts" / s
        p.write_text(RECORDER)
        p.chmod(0o755)
    (root / "light.Containerfile").write_text("ARG BASE\nFROM ${BASE}\n")
    # the real jsc profile, but on a light image: this test is about the argv, not about g++
    (root / "podrepro.toml").write_text('default_profile = "jsc"\n[profile.jsc]\ncontainerfile = "light.Containerfile"\n'
                                        'env = ["PODREPRO_RECORD_DIR={src}/rec"]\n')
    approve(root)
    (root / "rec").mkdir()
    return root


def _recorded(root: Path, script: str, arch: str) -> list[str]:
    data = (root / "rec" / f"{script}-{arch}.argv").read_bytes()
    return [x.decode() for x in data.split(b"\0")[:-1]]


@pytest.mark.parametrize("arch", ["arm", "mips"])
def test_jsc_profile_argv(fake_webkit: Path, arch: str) -> None:
    b = podrepro("build", arch, cwd=fake_webkit, timeout=1800)
    assert b.returncode == 0, b.stderr
    assert _recorded(fake_webkit, "build-jsc", arch) == [
        "--release", "--jsc-only",
        "--cmakeargs=-DENABLE_STATIC_JSC=ON -DENABLE_JIT=OFF -DENABLE_C_LOOP=ON -DENABLE_WEBASSEMBLY=OFF"
        " -DENABLE_SAMPLING_PROFILER=OFF -DUSE_SYSTEM_MALLOC=ON",
    ]
    t = podrepro("test", arch, "--filter", "stress/array-*.js", cwd=fake_webkit, timeout=1800)
    assert t.returncode == 0, t.stderr
    assert _recorded(fake_webkit, "run-javascriptcore-tests", arch) == [
        "--no-build", "--no-fail-fast", "--release", "--memory-limited", "--jsc-only", "--no-testmasm",
        "--no-testair", "--no-testb3", "--no-testdfg", "--no-testapi", "--no-jit-stress-tests",
        f"--json-output=WebKitBuild/podrepro-{arch}/jsc-test-results.json", "--filter", "stress/array-*.js",
    ]
    assert (fake_webkit / "WebKitBuild" / f"podrepro-{arch}").is_dir()


def test_jsc_cross_build_passes_the_toolchain_file_to_build_jsc(fake_webkit: Path) -> None:
    """Hybrid builds with the jsc profile: build-jsc runs natively in the jsc cross image and gets
    the generated CMake toolchain file through its one --cmakeargs string."""
    b = podrepro("build", "arm", "--cross", cwd=fake_webkit, timeout=3600)
    assert b.returncode == 0, b.stdout + b.stderr
    tree = fake_webkit / "WebKitBuild" / "podrepro-arm"
    toolchain = tree / ".podrepro-cross" / "toolchain.cmake"
    assert _recorded(fake_webkit, "build-jsc", "arm") == [
        "--release", "--jsc-only",
        "--cmakeargs=-DENABLE_STATIC_JSC=ON -DENABLE_JIT=OFF -DENABLE_C_LOOP=ON -DENABLE_WEBASSEMBLY=OFF"
        f" -DENABLE_SAMPLING_PROFILER=OFF -DUSE_SYSTEM_MALLOC=ON -DCMAKE_TOOLCHAIN_FILE={toolchain}",
    ]
    assert "arm-linux-gnueabihf-g++" in toolchain.read_text()
    assert json.loads((tree / ".podrepro-build.json").read_text())["mode"] == "cross"


def test_hostile_filter_is_data_not_code(fake_webkit: Path) -> None:
    evil = "'; touch pwned #"
    t = podrepro("test", "arm", "--filter", evil, "--", "$(id)", "`id`", "a;b", cwd=fake_webkit, timeout=1800)
    assert t.returncode == 0, t.stderr
    argv = _recorded(fake_webkit, "run-javascriptcore-tests", "arm")
    assert argv[-5:] == ["--filter", evil, "$(id)", "`id`", "a;b"]
    assert not (fake_webkit / "pwned").exists()
    assert not list(fake_webkit.rglob("pwned"))


def test_timeout_multiplier_reaches_the_harness(fake_webkit: Path) -> None:
    (fake_webkit / "Tools" / "Scripts" / "run-javascriptcore-tests").write_text(
        '#!/bin/sh\necho "JSCTEST_timeout=$JSCTEST_timeout"\n'
        'echo \'{"stressTestFailures": []}\' > WebKitBuild/podrepro-$PODREPRO_ARCH/jsc-test-results.json\n')
    r = podrepro("test", "arm", "--timeout-multiplier", "2", cwd=fake_webkit, timeout=1800)
    assert r.returncode == 0, r.stderr
    assert "JSCTEST_timeout=600" in r.stdout


def test_unknown_arch_and_missing_command(project: Path) -> None:
    r = podrepro("run", "armv9", "--", "true", cwd=project)
    assert r.returncode == 2
    assert r.stderr.startswith("error: unknown architecture 'armv9'; known: arm, mips")
    r = podrepro("run", "arm", cwd=project)
    assert r.returncode == 2 and "needs a command" in r.stderr


def test_ccache_dir_is_used(project: Path) -> None:
    b = podrepro("build", "arm", cwd=project, timeout=1800)
    assert b.returncode == 0, b.stderr
    s = podrepro("run", "arm", "--", "sh", "-c", "ccache -s | head -20; echo CCACHE_DIR=$CCACHE_DIR", cwd=project)
    assert "CCACHE_DIR=/var/cache/podrepro-ccache" in s.stdout
    cache_root = Path(os.environ.get("PODREPRO_CACHE_DIR") or Path.home() / ".cache" / "podrepro")
    files = list((cache_root / "ccache" / "arm").rglob("*"))
    assert len(files) > 3, "ccache wrote objects to the per-arch cache dir"


WATCHED = {"watch": "exec", "watch-plan": "exec-plan"}


class _AuditTail:
    """The exec records a run appended to an audit log (the suite's own when CI sets one, so the
    privilege audit sees these runs too; else a private one)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        self.watched = False

    def new(self) -> list[dict[str, object]]:
        import json

        with open(self.log, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        recs = [json.loads(ln) for ln in data.decode().splitlines()]
        # a run whose output podrepro reads (not a terminal, a qemu-user artefact possible here:
        # podrepro.fidelity) is the same run, watched instead of exec'd: "watch", "watch-plan"
        self.watched = any(r["how"] in ("watch", "watch-plan") for r in recs)
        return [{**r, "how": WATCHED.get(str(r["how"]), r["how"])} for r in recs
                if r["how"] in ("exec", "exec-plan", "watch", "watch-plan")]


def test_run_plan_is_the_same_run_and_notices_changes(project: Path, tmp_path: Path) -> None:
    """`run ARCH -- CMD` saves its argv as a run plan; the next run execs it without podrepro's
    checks. The plan's argv must equal the slow path's, and changing the config or the image
    store must send the run back to the slow path (which then sees the change)."""
    log = Path(os.environ.get("PODREPRO_AUDIT_LOG") or tmp_path / "audit.log")
    tail = _AuditTail(log)
    env = {"PODREPRO_AUDIT_LOG": str(log), "PODREPRO_CACHE_DIR": str(tmp_path / "cache")}
    cmd = ("run", "arm", "--", "sh", "-c", 'echo "${FOO:-unset} $(uname -m)"')

    def run(**extra: str) -> tuple[str, str, list[str]]:
        r = podrepro(*cmd, cwd=project, env={**env, **extra})
        assert r.returncode == 0, r.stderr
        (rec,) = tail.new()
        return r.stdout.strip(), str(rec["how"]), list(rec["argv"])  # type: ignore[call-overload]

    out1, how1, argv1 = run()
    assert (out1, how1) == ("unset armv7l", "exec")
    # the project is on the host's ext4 (here): arm's output is read for qemu-user's readdir artefact
    from podrepro.arches import lookup
    from podrepro.fidelity.host import triggers

    assert tail.watched == bool(triggers(lookup("arm"), project))
    out2, how2, argv2 = run()
    assert (out2, how2) == ("unset armv7l", "exec-plan")
    assert argv2 == argv1
    assert (tmp_path / "cache" / "run-plans").is_file()
    # the slow path, asked explicitly, decides exactly the same argv
    _, how3, argv3 = run(PODREPRO_NO_RUN_PLAN="1")
    assert (how3, argv3) == ("exec", argv1)

    # a config change: the next run takes the slow path and sees it; then plans again
    toml = project / "podrepro.toml"
    toml.write_text(toml.read_text().replace('default_profile = "generic"',
                                             'default_profile = "generic"\nenv = ["FOO=from-config"]'))
    assert (run()[0:2]) == ("from-config armv7l", "exec")
    assert (run()[0:2]) == ("from-config armv7l", "exec-plan")

    # a change in the image store (another tag) also invalidates it
    (tag,) = [a for a in argv1 if a.startswith("localhost/podrepro/")]
    extra = f"localhost/podrepro-test/plan-{os.getpid()}:latest"
    assert podman("tag", tag, extra).returncode == 0
    try:
        assert run()[1] == "exec"
        assert run()[1] == "exec-plan"
    finally:
        podman("rmi", extra)
    # in another directory: its own plan
    sub = project / "src"
    r = podrepro(*cmd, cwd=sub, env=env)
    assert r.returncode == 0 and tail.new()[0]["how"] == "exec"


def test_run_plan_notices_binfmt_containerfile_and_upgrade(project: Path, tmp_path: Path) -> None:
    """Three more inputs of a run plan, each changed for real: the binfmt handler podrepro reads,
    the profile's Containerfile, and podrepro itself (an upgrade changes its modules)."""
    import podrepro as pkg

    log = Path(os.environ.get("PODREPRO_AUDIT_LOG") or tmp_path / "audit.log")
    tail = _AuditTail(log)
    # podrepro from a copy we can "upgrade"; binfmt_misc as podrepro reads it, from a copy we
    # can change (the kernel keeps using the real handler, so the runs still work)
    code = tmp_path / "code"
    shutil.copytree(Path(pkg.__file__).parent, code / "podrepro", ignore=shutil.ignore_patterns("__pycache__"))
    if not (code / "podrepro" / "containerfiles").is_dir():  # a checkout keeps them one level up
        shutil.copytree(REPO / "containerfiles", code / "containerfiles")
    fake_binfmt = tmp_path / "binfmt"
    fake_binfmt.mkdir()
    real = Path("/proc/sys/fs/binfmt_misc")
    for entry in real.iterdir():
        if entry.name != "register":
            (fake_binfmt / entry.name).write_text(entry.read_text())
    (project / "light.Containerfile").write_text("ARG BASE\nFROM ${BASE}\n")
    (project / "podrepro.toml").write_text('default_profile = "light"\n[profile.light]\n'
                                            'containerfile = "light.Containerfile"\n')
    approve(project)
    env = {"PODREPRO_AUDIT_LOG": str(log), "PODREPRO_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(code), "PODREPRO_BINFMT_DIR": str(fake_binfmt)}
    cmd = ("run", "arm", "--", "uname", "-m")

    def how() -> str:
        r = podrepro(*cmd, cwd=project, env=env)
        assert r.returncode == 0 and r.stdout.strip() == "armv7l", r.stderr
        (rec,) = tail.new()
        return str(rec["how"])

    def settle() -> None:
        # a run that had to build the image saves no plan (the store changed under it): the
        # next saves one, and the one after that execs it
        hows = [how()]
        while hows[-1] != "exec-plan" and len(hows) < 3:
            hows.append(how())
        assert hows[-1] == "exec-plan", hows

    settle()
    # 1. the binfmt handler changed (here: its flags as binfmt_misc reports them)
    handler = next(p for p in fake_binfmt.iterdir() if p.name.endswith("arm") and "interpreter" in p.read_text())
    handler.write_text(handler.read_text().replace("flags: ", "flags: O"))
    assert how() == "exec", "a changed binfmt handler must send the run to the slow path"
    settle()
    # 2. the profile's Containerfile changed (the slow path builds its new image)
    (project / "light.Containerfile").write_text("ARG BASE\nFROM ${BASE}\nLABEL changed=1\n")
    assert how() == "exec", "a changed Containerfile must send the run to the slow path"
    settle()
    # 3. podrepro upgraded: one of its modules changed
    mod = code / "podrepro" / "arches.py"
    mod.write_text(mod.read_text() + "\n# upgraded\n")
    assert how() == "exec", "a podrepro upgrade must send the run to the slow path"
    settle()
    made = podman("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=localhost/podrepro/light")
    for tag in made.stdout.decode().split():
        podman("rmi", tag)


def test_a_project_cannot_take_secrets_or_network_without_approval(project: Path, tmp_path: Path) -> None:
    """The attack: a cloned project's podrepro.toml passes the user's GITHUB_TOKEN through and
    asks for a network, so its test could send the token anywhere. Until `podrepro trust`, both
    are ignored (one line says so); after it, the value reaches the container without ever being
    in podman's argv (what `ps` shows) or a saved run plan."""
    toml = project / "podrepro.toml"
    # top-level keys first: the example's file ends with a [profile.generic] table
    toml.write_text('env = ["GITHUB_TOKEN", "LITERAL=ok"]\nnetwork = true\n' + toml.read_text())
    secret = f"ghp_{os.getpid()}secret"
    log = tmp_path / "audit.jsonl"
    env = {"GITHUB_TOKEN": secret, "PODREPRO_AUDIT_LOG": str(log), "PODREPRO_CACHE_DIR": str(tmp_path / "cache")}
    show = ["sh", "-c", 'echo "token=${GITHUB_TOKEN:-unset} literal=$LITERAL"; ls /sys/class/net | tr "\\n" " "']
    r = podrepro("run", "arm", "--", *show, cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    assert "token=unset literal=ok" in r.stdout
    assert r.stdout.split("\n")[1].split() == ["lo"], "no network without approval"
    assert "asks for env (host variables GITHUB_TOKEN); network (a network for the container): ignored until" \
        in r.stderr, r.stderr
    approve(project)
    r = podrepro("run", "arm", "--", *show, cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    assert f"token={secret} literal=ok" in r.stdout
    assert len(r.stdout.split("\n")[1].split()) > 1, "the approved file gets its network"
    assert "ignored until" not in r.stderr
    # the value was never an argument of any command podrepro ran, nor in a saved run plan
    assert secret not in log.read_text()
    plans = tmp_path / "cache" / "run-plans"
    assert not plans.exists() or secret.encode() not in plans.read_bytes()
    # any edit of the file needs a new approval
    toml.write_text(toml.read_text() + "# edited\n")
    r = podrepro("run", "arm", "--", *show, cwd=project, env=env)
    assert "token=unset" in r.stdout and "ignored until" in r.stderr


def test_a_build_cannot_plant_a_git_hook(project: Path) -> None:
    """The attack: a test writes .git/hooks/post-checkout (or sets core.fsmonitor), which would run
    on the host at the user's next git command. .git is read-only inside unless --writable-git."""
    (project / ".git" / "hooks").mkdir(parents=True)
    (project / ".git" / "config").write_text("[core]\n\trepositoryformatversion = 0\n")
    plant = ["sh", "-c", "echo 'touch /tmp/pwned' > .git/hooks/post-checkout; "
             "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> .git/config; echo tried"]
    r = podrepro("run", "arm", "--", *plant, cwd=project)
    assert "Read-only file system" in r.stderr, r.stdout + r.stderr
    assert not (project / ".git" / "hooks" / "post-checkout").exists()
    assert "fsmonitor" not in (project / ".git" / "config").read_text()
    # the rest of the project stays writable, and the user can lift it on purpose
    w = podrepro("run", "arm", "--writable-git", "--", "sh", "-c", "touch .git/ok && touch ok", cwd=project)
    assert w.returncode == 0, w.stderr
    assert (project / ".git" / "ok").exists() and (project / "ok").exists()


def test_no_containers_left_behind() -> None:
    assert no_leftover_containers() == []
    assert shutil.which("podman")


def test_run_in_a_given_image(project: Path) -> None:
    built = podrepro("image", "build", "arm", "--profile", "base", "--json", cwd=project)
    assert built.returncode == 0, built.stderr
    import json

    tag = json.loads(built.stdout)["tag"]
    r = podrepro("run", "--image", tag, "arm", "--", "sh", "-c", "command -v cmake || echo no-cmake", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "no-cmake"  # the bare base, not the generic profile's image
    missing = podrepro("run", "--image", "localhost/podrepro/base:arm-000000000000", "arm", "--", "true", cwd=project)
    assert missing.returncode == 2 and "no such image" in missing.stderr


def test_init_in_a_fresh_cmake_project_then_test(project: Path) -> None:
    (project / "podrepro.toml").unlink()
    i = podrepro("init", cwd=project)
    assert i.returncode == 0, i.stderr
    assert "for cmake (detected)" in i.stdout and (project / "podrepro.toml").is_file()
    again = podrepro("init", cwd=project)
    assert again.returncode == 2 and "never overwrites" in again.stderr
    r = podrepro("test", "arm", cwd=project, timeout=1800)
    assert r.returncode == 8, r.stdout + r.stderr
    assert "podrepro: 3 tests ran on arm, 2 failed: checksum, y2038" in r.stderr, r.stderr
