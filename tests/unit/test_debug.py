"""podrepro.debug: the gdb session's commands, core collection and syscall-trace summaries."""

from __future__ import annotations

import json
import os
import resource
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from podrepro.arches import lookup
from podrepro.debug import capture, cores, outdir, session, strace
from podrepro.engine import commands
from podrepro.errors import HostNotReady, PodreproError
from podrepro.runner import RunSpec, container_env

# ---- the gdb session -------------------------------------------------------------------------

def test_program_runs_under_the_gdbstub_with_its_arguments() -> None:
    assert session.program_command("build/t", ["a", "-b"]) == [session.QEMU_IN, "-g", "1234", "build/t", "a", "-b"]
    # a bare name: qemu does not search PATH, so the shell in the image finds it first
    argv = session.program_command("ls", ["/"])
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["ls", session.QEMU_IN, "1234", "/"]
    assert 'command -v -- "$0"' in argv[2] and 'exec "$q" -g "$port" "$p" "$@"' in argv[2]


def test_the_debugger_finds_the_program_in_the_project_or_the_sysroot(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    assert session.program_file("build/t", root, root) == str(root / "build" / "t")
    assert session.program_file("../t", root, root / "sub") == str(root / "t")
    assert session.program_file("/usr/bin/ls", root, root) == "/sysroot/usr/bin/ls"
    assert session.program_file("../../etc/x", root, root) == f"/sysroot{tmp_path.parent}/etc/x"
    assert session.program_file("ls", root, root) == "ls"  # looked up by the wrapper


def test_gdb_command_sets_the_sysroot_first_and_keeps_the_users_options_in_order() -> None:
    argv = session.gdb_command("/p/t", None, ["--batch", "-ex", "bt"], attach=True)
    assert argv[:2] == ["sh", "-c"] and argv[3:5] == ["podrepro-debug", "/p/t"]
    opts = argv[5:]
    assert opts[:5] == ["-q", "-iex", "set sysroot /sysroot", "-iex", "set debug-file-directory /sysroot/usr/lib/debug"]
    assert opts[5:9] == ["-x", session.SCRIPT_IN, "-ex", "python podrepro_attach()"]
    assert opts[9:] == ["--batch", "-ex", "bt"]
    core = session.gdb_command("/p/t", "/p/.podrepro/cores/arm/c'1.core", [], attach=False)
    assert core[-1] == "python podrepro_relocate(\"/p/.podrepro/cores/arm/c'1.core\")"


def test_the_gdb_helper_script_is_python_and_connects_to_the_stub() -> None:
    compile(session.GDB_SCRIPT, "podrepro-gdb.py", "exec")
    assert "target remote 127.0.0.1:1234" in session.GDB_SCRIPT
    assert "@PORT@" not in session.GDB_SCRIPT


def test_the_debugger_joins_the_programs_namespaces_only() -> None:
    assert commands.joined_args("podrepro-debug-arm-1-ab", user=(1000, 100)) == [
        "--network", "container:podrepro-debug-arm-1-ab", "--userns", "container:podrepro-debug-arm-1-ab",
        "--user", "1000:100"]
    assert commands.image_mount_args("localhost/podrepro/generic:arm-x", "/sysroot") == [
        "--mount", "type=image,source=localhost/podrepro/generic:arm-x,destination=/sysroot"]
    assert commands.remove_argv("podman", "c") == ["podman", "rm", "--force", "--ignore", "--time", "0", "c"]


@pytest.mark.parametrize("args, after, gdb, prog", [
    (["--batch", "-ex", "bt", "build/t", "a"], 2, ["--batch", "-ex", "bt"], ["build/t", "a"]),
    (["build/t"], 1, [], ["build/t"]),
    (["--batch", "-ex", "bt"], None, ["--batch", "-ex", "bt"], []),
    (["--batch", "-ex", "bt", "build/t"], None, ["--batch", "-ex", "bt"], ["build/t"]),  # --core FILE PROGRAM
    (["build/t"], None, [], ["build/t"]),
    (["-ex", "bt"], None, ["-ex", "bt"], []),
])
def test_split_gdb_options_from_the_program(args: list[str], after: int | None, gdb: list[str], prog: list[str]) -> None:
    from podrepro.cli.debug import split

    assert split(args, after) == (gdb, prog)


def test_the_cli_passes_gdb_options_and_the_program_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    from podrepro.cli.main import run_cli
    from podrepro.debug import command

    seen: dict[str, Any] = {}

    def fake(arch: str, program: list[str], gdb_options: list[str], **kw: Any) -> int:
        seen.update(arch=arch, program=program, gdb=gdb_options, **kw)
        return 7

    monkeypatch.setattr(command, "debug", fake)
    rc = run_cli(["debug", "arm", "--batch", "-ex", "break x", "--env", "A=1", "-ex", "run", "--", "build/t", "-x", "--core"])
    assert rc == 7
    assert seen["program"] == ["build/t", "-x", "--core"] and seen["gdb"] == ["--batch", "-ex", "break x", "-ex", "run"]
    assert seen["env"] == ["A=1"] and seen["core"] is None


# ---- cores ------------------------------------------------------------------------------------

def test_core_limit_follows_the_hard_limit() -> None:
    assert cores.ulimit_args((0, resource.RLIM_INFINITY)) == ["--ulimit", "core=-1:-1"]
    assert cores.ulimit_args((0, 4096)) == ["--ulimit", "core=4096:4096"]
    with pytest.raises(HostNotReady, match="hard core-file limit is 0"):
        cores.ulimit_args((0, 0))


def _elf_core(machine: int, extra: bytes = b"") -> bytes:
    head = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HH", cores.ET_CORE, machine)
    return head + bytes(64 - len(head)) + extra


def _old(p: Path) -> None:
    t = time.time() - 3600
    os.utime(p, (t, t))


def test_collect_keeps_target_cores_and_deletes_only_the_emulators(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    build = root / "build"
    build.mkdir(parents=True)
    prog = build / "crashy"
    prog.write_bytes(b"\x7fELF")
    prog.chmod(0o755)
    since = time.time() - 1
    (build / "qemu_crashy_20261201-120000_7.core").write_bytes(b"target core")
    (build / "core").write_bytes(_elf_core(cores.EM_X86_64, b"/usr/libexec/qemu-binfmt/arm-binfmt-P"))
    (build / "core.99").write_bytes(_elf_core(cores.EM_X86_64))          # a host core, not qemu's
    (root / "core").write_bytes(b"the user's own file called core")
    stale = build / "qemu_crashy_20200101-000000_3.core"                 # an earlier run's
    stale.write_bytes(b"old")
    _old(stale)
    kept = cores.collect(root, [build], "arm", since, command=["./crashy"], workdir=build, image="img:1")
    assert [c.name for c in kept] == ["crashy"]
    dest = root / ".podrepro" / "cores" / "arm" / "qemu_crashy_20261201-120000_7.core"
    assert kept[0].path == dest and dest.read_bytes() == b"target core"
    note = json.loads(Path(str(dest) + ".json").read_text())
    assert note["program"] == str(prog) and note["image"] == "img:1" and note["command"] == ["./crashy"]
    assert cores.note_of(dest)["arch"] == "arm"
    assert not (build / "core").exists()          # the emulator's x86-64 dump of itself
    assert (build / "core.99").exists()           # an x86-64 core that is not qemu's stays
    assert (root / "core").exists()               # so does any other file called core
    assert stale.exists()
    assert (root / ".podrepro" / ".gitignore").read_text().endswith("*\n")


def test_collect_finds_the_program_by_name_when_the_command_does_not_say(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "b" / "tests").mkdir(parents=True)
    prog = root / "b" / "tests" / "t_x"
    prog.write_bytes(b"\x7fELF")
    prog.chmod(0o755)
    (root / "b" / "tests" / "qemu_t_x_20261201-120000_9.core").write_bytes(b"c")
    kept = cores.collect(root, [root / "b"], "mips", time.time() - 1, command=["ctest"], workdir=root, image="i")
    assert kept[0].program == str(prog)


def test_collect_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    elsewhere = tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / ".podrepro").symlink_to(elsewhere)
    (root / "qemu_x_20261201-120000_1.core").write_bytes(b"c")
    with pytest.raises(PodreproError, match="not a directory of yours"):
        cores.collect(root, [root], "arm", time.time() - 1, command=["./x"], workdir=root, image="i")
    assert list(elsewhere.iterdir()) == []


def test_a_link_named_like_a_core_is_not_moved(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("s")
    (root / "qemu_x_20261201-120000_1.core").symlink_to(secret)
    assert cores.collect(root, [root], "arm", time.time() - 1, command=[], workdir=root, image="i") == []
    assert not (root / ".podrepro").exists()


def test_emulator_core_needs_an_x86_64_core_of_qemu(tmp_path: Path) -> None:
    p = tmp_path / "core"
    p.write_bytes(_elf_core(cores.EM_X86_64, b"qemu-arm-static"))
    assert cores.emulator_core(p)
    p.write_bytes(_elf_core(40, b"qemu-arm-static"))  # an ARM core
    assert not cores.emulator_core(p)
    link = tmp_path / "core.1"
    link.symlink_to(p)
    assert not cores.emulator_core(link)


# ---- syscall traces ---------------------------------------------------------------------------

TRACE = """\
6 brk(NULL) = 0x40033000
6 openat(AT_FDCWD,"/etc/ld.so.cache",O_RDONLY|O_LARGEFILE|O_CLOEXEC) = 4
6 set_robust_list(1065199820,12,1065199820,1,1065199712,1065200992) = -1 errno=38 (Function not implemented)
6 Unknown syscall 398
6 Unknown syscall 450
7 read(14,0x323d20c,4)9 set_robust_list(274990063104,24,0,274990063088,0,274888951152) = -1 errno=38 (Function not implemented)
"""


def test_strace_summary_names_what_qemu_does_not_implement(tmp_path: Path) -> None:
    d, env = strace.prepare(tmp_path, "arm")
    assert d.parent == tmp_path / ".podrepro" / "traces" / "arm"
    assert env == {"QEMU_STRACE": "1", "QEMU_LOG_FILENAME": str(d / "trace-%d.log")}
    (d / "trace-6.log").write_text(TRACE)
    (d / "trace-8.log").write_text(TRACE.replace("6 ", "8 "))
    s = strace.summarise(d)
    assert (s.files, s.calls) == (2, 12)
    # the interleaved line (a forked child writing into its parent's log) is the child's call
    assert s.missing == {"set_robust_list": 4, "syscall 398": 2, "syscall 450": 2}
    lines = s.lines("t")
    assert lines[0] == "syscall trace: 12 calls in 2 processes, in t"
    assert lines[1].startswith("not implemented under qemu-user (ENOSYS or unknown): ")
    assert "4\tset_robust_list" in (d / strace.SUMMARY).read_text()


def test_strace_reads_and_writes_no_planted_link(tmp_path: Path) -> None:
    d, _ = strace.prepare(tmp_path, "arm")
    secret = tmp_path / "secret"
    secret.write_text("1 getpid() = -1 errno=38 (Function not implemented)\n")
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (d / "trace-1.log").symlink_to(secret)
    (d / strace.SUMMARY).symlink_to(victim)
    s = strace.summarise(d)
    assert (s.files, s.calls, s.missing) == (0, 0, {})
    assert victim.read_text() == "untouched"


def test_two_traces_in_the_same_second_get_folders_of_their_own(tmp_path: Path) -> None:
    dirs = {strace.prepare(tmp_path, "arm")[0] for _ in range(20)}
    assert len(dirs) == 20


def test_capture_adds_the_core_limit_and_the_trace_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda what: (0, resource.RLIM_INFINITY))
    c = capture.start(tmp_path, "mips", core=True, trace=True)
    assert c.extra_args[0] == "--ulimit" and c.cores
    assert c.trace_dir is not None and c.env["QEMU_LOG_FILENAME"].startswith(str(c.trace_dir))
    none = capture.start(tmp_path, "mips", core=False, trace=False)
    assert (none.extra_args, none.env, none.trace_dir) == ((), {}, None)


def test_outdir_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / ".podrepro").write_text("x")
    with pytest.raises(PodreproError, match="not a directory"):
        outdir.folder(tmp_path, "cores")


# ---- the environment tells tests where they run ---------------------------------------------

@pytest.mark.parametrize("arch, emulated", [("arm", "1"), ("mips", "1"), ("i386", "0")])
def test_containers_say_whether_they_are_emulated(arch: str, emulated: str, tmp_path: Path) -> None:
    spec = RunSpec(arch=lookup(arch), image="i", command=("true",), project_root=tmp_path, workdir=tmp_path)
    env = container_env(spec, None, {}, 4.0)
    assert env["PODREPRO_ARCH"] == arch and env["PODREPRO_EMULATED"] == emulated
