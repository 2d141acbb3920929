"""gdb through QEMU's gdbstub: the program in its target container, the debugger beside it.

qemu-user implements no ptrace, so neither ``gdb ./prog`` nor ``gdbserver`` works on an
emulated program. Instead the program starts under qemu's gdbstub (``qemu-ARCH -g PORT``, the
host's static qemu mounted into the target container), stopped before its first instruction, and
a native ``gdb-multiarch`` (the tools image) attaches from a second container that joins the
first one's network and user namespaces, with the target image mounted read-only as its sysroot
and the project at the same absolute path, so file:line breakpoints and ``list`` work. Only that
one program runs under the stub (qemu's ``-g``, not ``QEMU_GDB``, which its children would
inherit). The stub listens on the loopback of the program's own network namespace: the port is
the same in every session, never collides, and nothing outside can reach it.

In gdb, ``run`` (``r``), ``start`` and ``starti`` connect to the waiting program, as they start
one natively (``podrepro-gdb.py``, loaded first).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from podrepro.engine import commands, process
from podrepro.errors import EngineError

PORT = 1234
SYSROOT = "/sysroot"
DIR_IN = "/run/podrepro-debug"
QEMU_IN = f"{DIR_IN}/qemu"
SCRIPT_IN = f"{DIR_IN}/podrepro-gdb.py"
START_TIMEOUT = 120.0

GDB_SCRIPT = """\
# podrepro debug's gdb helpers (loaded with -x; podrepro calls one of the two functions)
import re
import struct

import gdb

_ran = []


class _Start(gdb.Command):
    \"\"\"Let the program run (it waits under QEMU's gdbstub: qemu-user cannot be started from gdb).\"\"\"

    def __init__(self, name, stop):
        super().__init__(name, gdb.COMMAND_RUNNING)
        self.stop = stop

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("podrepro: the program's arguments go after '--' on the podrepro debug command line")
        if _ran:
            raise gdb.GdbError("podrepro: the program has run; start 'podrepro debug' again to run it again")
        _ran.append(1)
        if self.stop == "main":
            gdb.execute("tbreak main", from_tty)
        gdb.execute("target remote 127.0.0.1:@PORT@", from_tty)
        if self.stop != "first":
            gdb.execute("continue", from_tty)


def podrepro_attach():
    \"\"\"'run', 'r', 'start' and 'starti' connect to the waiting program.\"\"\"
    for name, stop in (("run", None), ("r", None), ("start", "main"), ("starti", "first")):
        _Start(name, stop)


def podrepro_relocate(core):
    \"\"\"Open the core with a position-independent program put where qemu loaded it. qemu-user's
    cores leave out the program's read-only pages, with the ELF header gdb reads to work that
    out, so gdb would take the program as unmoved: no function names. The auxiliary vector's
    AT_ENTRY minus the file's entry point is the offset; then the core is read again, and the
    libraries' symbols are loaded from its link map.\"\"\"
    out = gdb.execute("core-file %s" % core, to_string=True)
    prog = gdb.current_progspace().filename
    m = re.search(r"^\\s*\\d+\\s+AT_ENTRY\\s.*?(0x[0-9a-f]+)\\s*$", gdb.execute("info auxv", to_string=True), re.M)
    if prog and m is not None:
        with open(prog, "rb") as f:
            h = f.read(64)
        order = "<" if h[5] == 1 else ">"
        e_type = struct.unpack_from(order + "H", h, 16)[0]
        entry = struct.unpack_from(order + ("I" if h[4] == 1 else "Q"), h, 24)[0]
        shift = int(m.group(1), 16) - entry
        if e_type == 3 and shift:
            gdb.execute("symbol-file -o %#x %s" % (shift, prog), to_string=True)
            gdb.execute("exec-file %s" % prog, to_string=True)
            out = gdb.execute("core-file %s" % core, to_string=True)
        try:
            _libraries(order + ("I" if h[4] == 1 else "Q"))
        except (gdb.error, gdb.MemoryError, struct.error):
            pass  # a backtrace through the program's own code still works
    # what gdb says on opening a core, with the frame it stopped in now that symbols are there
    gdb.write("".join(line + "\\n" for line in out.splitlines() if not line.startswith("#")))
    gdb.execute("frame")


def _words(addr, n, fmt):
    size = struct.calcsize(fmt)
    mem = gdb.selected_inferior().read_memory(addr, size * n).tobytes()
    return [struct.unpack_from(fmt, mem, i * size)[0] for i in range(n)]


def _string(addr):
    out = b""
    while b"\\0" not in out and len(out) < 4096:
        out += gdb.selected_inferior().read_memory(addr + len(out), 64).tobytes()
    return out.split(b"\\0", 1)[0].decode(errors="replace")


def _libraries(fmt):
    \"\"\"Load the libraries' symbols where the core's link map says they are (gdb's own
    reading of it needs the program's ELF header in the core too): DT_DEBUG in the program's
    _DYNAMIC -> r_debug.r_map -> each link_map's l_addr and l_name.\"\"\"
    size = struct.calcsize(fmt)
    dyn = int(gdb.parse_and_eval("(long)&_DYNAMIC"))
    r_debug = 0
    for i in range(512):
        tag, val = _words(dyn + 2 * size * i, 2, fmt)
        if tag == 0:
            break
        if tag == 21:  # DT_DEBUG
            r_debug = val
            break
    lm = _words(r_debug + size, 1, fmt)[0] if r_debug else 0
    sysroot = gdb.parameter("sysroot")
    while lm:
        l_addr, l_name, _ld, l_next = _words(lm, 4, fmt)
        name = _string(l_name) if l_name else ""
        if name.startswith("/"):
            gdb.execute("add-symbol-file -o %#x %s%s" % (l_addr, sysroot, name), to_string=True)
        lm = l_next
""".replace("@PORT@", str(PORT))

# in the target container: qemu does not search PATH, so a bare command name is looked up first
_FIND_AND_RUN = ('p=$(command -v -- "$0") || { echo "podrepro debug: $0: command not found" >&2; exit 127; }; '
                 'q=$1 port=$2; shift 2; exec "$q" -g "$port" "$p" "$@"')

# in the tools container: a bare name is looked up on the target's PATH in the sysroot, and the
# target's absolute symbolic links are followed inside the sysroot, not the tools image
_GDB_WRAPPER = """\
p=$1; shift
case $p in */*) ;; *) for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  if [ -f "/sysroot$d/$p" ]; then p=/sysroot$d/$p; break; fi; done;; esac
n=0
while [ -L "$p" ] && [ $n -lt 40 ]; do
  case $p in /sysroot/*) ;; *) break;; esac
  l=$(readlink "$p"); case $l in /*) p=/sysroot$l;; *) p=${p%/*}/$l;; esac; n=$((n+1))
done
[ -e "$p" ] || { echo "podrepro debug: $p: not in the image or the project" >&2; exit 127; }
exec gdb-multiarch "$@" "$p"
"""


def program_command(program: str, args: Sequence[str]) -> list[str]:
    """The target container's command: PROGRAM under qemu's gdbstub, waiting for the debugger."""
    if "/" in program:
        return [QEMU_IN, "-g", str(PORT), program, *args]
    return ["sh", "-c", _FIND_AND_RUN, program, QEMU_IN, str(PORT), *args]


def program_file(program: str, root: Path, workdir: Path) -> str:
    """Where the debugger finds PROGRAM: in the project (mounted at the same path), else in the
    target's files under the sysroot; a bare name is looked up there by the wrapper."""
    if "/" not in program:
        return program
    p = Path(os.path.normpath(workdir / program))
    return str(p) if p == root or root in p.parents else SYSROOT + str(p)


def gdb_command(program_path: str, core: str | None, user_options: Sequence[str], *, attach: bool) -> list[str]:
    """The tools container's command: gdb-multiarch with the sysroot and the target's separate
    debug symbols (libc6-dbg) set before anything loads, then the user's options."""
    opts = ["-q", "-iex", f"set sysroot {SYSROOT}", "-iex", f"set debug-file-directory {SYSROOT}/usr/lib/debug"]
    opts += ["-x", SCRIPT_IN, "-ex", "python podrepro_attach()" if attach else f"python podrepro_relocate({core!r})"]
    # a core is opened by podrepro_relocate, not on gdb's command line
    return ["sh", "-c", _GDB_WRAPPER, "podrepro-debug", program_path, *opts, *user_options]


def _wait_running(binary: str, name: str, prog: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if prog.poll() is not None:
            return False
        out = process.run(commands.running_argv(binary, name))
        if out.stdout.strip() == b"true":
            return True
        time.sleep(0.1)
    return False


def run(binary: str, program_argv: Sequence[str], gdb_argv: Sequence[str], name: str) -> int:
    """Start the program's container, run gdb's on this terminal, and leave nothing behind: the
    program's container is removed whatever happened (gdb quit, Ctrl-C, an error)."""
    prog = process.popen(program_argv, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        if not _wait_running(binary, name, prog):
            rc = prog.poll()
            raise EngineError(f"the program's container did not start{f' (exit {rc})' if rc is not None else ''}",
                              hint="run with -v to see podman's command line")
        return process.foreground(gdb_argv)
    finally:
        process.run(commands.remove_argv(binary, name), timeout=120)
        try:
            prog.wait(timeout=30)
        except subprocess.TimeoutExpired:
            prog.kill()
            prog.wait()
