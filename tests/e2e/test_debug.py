"""Issue 17 end to end: gdb through QEMU's gdbstub, cores of emulated crashes, syscall traces."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import example, no_leftover_containers, podrepro, through_a_pty

pytestmark = pytest.mark.e2e


@pytest.fixture
def crash_project(tmp_path: Path) -> Path:
    return example("crash", tmp_path)


def _gdb_processes() -> list[str]:
    cp = subprocess.run(["pgrep", "-a", "-u", str(os.getuid()), "-f", "gdb-multiarch"], capture_output=True, text=True)
    return [ln for ln in cp.stdout.splitlines() if "pgrep" not in ln]


def _batch(arch: str) -> list[str]:
    return ["debug", arch, "--batch", "-ex", "break days_since_2000", "-ex", "run", "-ex", "print sizeof(time_t)",
            "-ex", "bt", "--", f"build-podrepro-{arch}/test_y2038"]


def _backtrace_ok(out: str) -> None:
    assert re.search(r"^\$1 = 4$", out, re.M), out
    assert re.search(r"^#0\s+days_since_2000 \(year=2040, .*\) at \S*dates\.c:\d+$", out, re.M), out
    assert re.search(r"^#1\s+0x[0-9a-f]+ in main \(\) at \S*test_y2038\.c:\d+$", out, re.M), out


@pytest.mark.parametrize("arch", ["arm", "mips"])
def test_debug_batch_breaks_prints_and_backtraces(project: Path, arch: str) -> None:
    assert podrepro("build", arch, cwd=project).returncode == 0
    r = podrepro(*_batch(arch), cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    _backtrace_ok(r.stdout)
    assert no_leftover_containers() == []
    assert _gdb_processes() == []


def test_a_session_that_never_runs_the_program_leaves_nothing(project: Path) -> None:
    """gdb quits without 'run': the program still waits under the gdbstub; podrepro removes it."""
    assert podrepro("build", "arm", cwd=project).returncode == 0
    r = podrepro("debug", "arm", "--batch", "-ex", "info line main", "--", "build-podrepro-arm/test_y2038", cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test_y2038.c" in r.stdout
    assert no_leftover_containers() == []
    assert _gdb_processes() == []


def test_two_sessions_at_once_do_not_collide(project: Path) -> None:
    for arch in ("arm", "mips"):
        assert podrepro("build", arch, cwd=project).returncode == 0
    env = {**os.environ, "PODREPRO_PROGRESS": "plain"}
    # each session holds its stopped program (and its gdbstub) for 5 s, so the two overlap
    procs = [subprocess.Popen([sys.executable, "-m", "podrepro", *_batch(arch)[:2], "-ex", "shell sleep 5",
                               *_batch(arch)[2:]], cwd=project, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for arch in ("arm", "mips")]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
        _backtrace_ok(out)
    assert no_leftover_containers() == []


def test_interactive_session_through_a_pty(project: Path) -> None:
    assert podrepro("build", "arm", cwd=project).returncode == 0
    steps = [b"break dates.c:9\n", b"run\n", b"print year\n", b"quit\n"]
    done: list[int] = []

    def answer(out: bytes) -> bytes | None:
        if len(done) < len(steps) and out.count(b"(gdb) ") > len(done):
            done.append(1)
            return steps[len(done) - 1]
        if len(done) == len(steps) and b"(y or n)" in out:
            done.append(1)
            return b"y\n"
        return None

    out, code = through_a_pty(["debug", "arm", "--", "build-podrepro-arm/test_y2038"], project, answer)
    text = re.sub(rb"\x1b\[[0-9;?]*[a-zA-Z]", b"", out).decode(errors="replace")
    assert len(done) == len(steps) + 1, text
    assert "Breakpoint 1 at" in text and "dates.c, line 9." in text, text
    assert re.search(r"Breakpoint 1, days_since_2000 \(year=2040", text), text
    assert re.search(r"^\r?\$1 = 2040\r?$", text, re.M), text
    assert code == 0
    assert no_leftover_containers() == []
    assert _gdb_processes() == []


def test_core_with_a_hard_limit_of_zero_says_so(crash_project: Path) -> None:
    """Under sudo (1.9.13 sets the hard core-file limit to 0, and root without CAP_SYS_RESOURCE
    cannot raise it again) no program may dump core: --core says that in one line, builds
    nothing, leaves nothing."""
    code = "import resource, sys; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); " \
           "from podrepro.cli.main import main; sys.argv = ['podrepro'] + sys.argv[1:]; main()"
    import subprocess
    import sys

    cp = subprocess.run([sys.executable, "-c", code, "run", "--core", "arm", "--", "true"], cwd=crash_project,
                        capture_output=True, text=True, timeout=600)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert cp.stderr.strip().splitlines()[-1].startswith("error: --core: this session's hard core-file limit is 0"), cp.stderr
    assert not (crash_project / ".podrepro").exists()
    assert no_leftover_containers() == []


@pytest.mark.core  # a hard core-file limit above 0: not under sudo (scripts/test-all.sh, ci-newcomer.sh)
def test_a_crash_leaves_a_core_that_debug_opens(crash_project: Path) -> None:
    assert podrepro("build", "arm", cwd=crash_project).returncode == 0
    r = podrepro("run", "--core", "arm", "--", "build-podrepro-arm/bigbuf", cwd=crash_project)
    assert r.returncode == 139, r.stdout + r.stderr  # SIGSEGV, passed through
    cores = sorted((crash_project / ".podrepro" / "cores" / "arm").glob("qemu_bigbuf_*.core"))
    assert len(cores) == 1, r.stderr
    rel = cores[0].relative_to(crash_project)
    assert f"bigbuf dumped core: {rel}" in r.stderr
    note = json.loads(Path(str(cores[0]) + ".json").read_text())
    assert note["program"] == str(crash_project / "build-podrepro-arm" / "bigbuf")
    # the host kernel's dump of the dying emulator (x86-64, hundreds of MB) is not left behind
    left = [p for p in crash_project.rglob("core*") if p.is_file() and p.name.split(".")[0] == "core"]
    assert left == []
    # nothing of it reaches git status
    assert (crash_project / ".podrepro" / ".gitignore").read_text().splitlines()[-1] == "*"
    d = podrepro("debug", "arm", "--core", str(rel), "--batch", "-ex", "bt", cwd=crash_project)
    assert d.returncode == 0, d.stdout + d.stderr
    assert "Program terminated with signal SIGSEGV" in d.stdout
    assert re.search(r"#\d+\s+0x[0-9a-f]+ in fill_buffer \(buf=0x0, len=3221225472\) at \S*bigbuf\.c:\d+", d.stdout), d.stdout
    # libc's symbols, from the core's link map: the crash is inside memset
    assert re.search(r"^#0\s+(0x[0-9a-f]+ in )?\w*memset\w* \(", d.stdout, re.M), d.stdout
    assert "?? ()" not in d.stdout, d.stdout
    # test --core: the crash of a test program run by ctest, in the build tree
    t = podrepro("test", "--core", "arm", cwd=crash_project)
    assert t.returncode != 0
    assert re.search(r"bigbuf dumped core: \.podrepro/cores/arm/qemu_bigbuf_\S+\.core", t.stderr), t.stderr
    assert len(list((crash_project / ".podrepro" / "cores" / "arm").glob("qemu_bigbuf_*.core"))) == 2
    assert list((crash_project / "build-podrepro-arm").rglob("qemu_*.core")) == []
    assert no_leftover_containers() == []


def test_without_core_no_core_is_kept(crash_project: Path) -> None:
    assert podrepro("build", "arm", cwd=crash_project).returncode == 0
    r = podrepro("run", "arm", "--", "build-podrepro-arm/bigbuf", cwd=crash_project)
    assert r.returncode == 139
    assert not (crash_project / ".podrepro").exists()
    assert list(crash_project.rglob("qemu_*.core")) == []


def test_strace_writes_the_programs_openat_calls(project: Path) -> None:
    assert podrepro("build", "arm", cwd=project).returncode == 0
    r = podrepro("run", "--strace", "arm", "--", "build-podrepro-arm/test_wire", cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = sorted((project / ".podrepro" / "traces" / "arm").iterdir())
    assert len(runs) == 1
    traces = list(runs[0].glob("trace-*.log"))
    assert len(traces) == 1
    text = traces[0].read_text()
    assert re.search(r'^\d+ openat\(AT_FDCWD,"/etc/ld\.so\.cache",', text, re.M), text[:2000]
    assert "syscall trace:" in r.stderr and str(runs[0].relative_to(project)) in r.stderr
    # the trace stays out of the program's own output
    assert "openat(" not in r.stdout + r.stderr.replace(str(runs[0].relative_to(project)), "")
    assert (runs[0] / "summary.txt").is_file()


def test_tests_can_tell_they_run_emulated(project: Path) -> None:
    r = podrepro("run", "arm", "--", "sh", "-c", 'echo "$PODREPRO_ARCH $PODREPRO_EMULATED"', cwd=project)
    assert r.returncode == 0 and r.stdout.strip() == "arm 1", r.stdout + r.stderr
