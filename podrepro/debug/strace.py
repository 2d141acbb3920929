"""qemu-user's syscall traces (``--strace``): QEMU_STRACE, one file per emulated process.

qemu-user prints each syscall of the emulated program with its result when ``QEMU_STRACE`` is
set, to its log (``QEMU_LOG_FILENAME``; a ``%d`` there becomes the process id), so the trace
stays out of the program's own stderr. A syscall that qemu-user does not implement is a classic
reason a reproduction differs from a board: the summary lists the ENOSYS results and the
"Unknown syscall" lines by name.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from podrepro.debug.outdir import new_folder, real_dir

ENOSYS_END = " = -1 errno=38 (Function not implemented)"
# a call's start: "PID name(". After a fork the child writes into its parent's log until it
# execs, so one line can hold a call cut short and another's: the result is the last call's
CALL = re.compile(r"(?:^|(?<=[)\s]))\d+ (?P<name>[a-z_][a-z0-9_]*)\(")
UNKNOWN = re.compile(r"\d+ Unknown syscall (?P<nr>\d+)")
SUMMARY = "summary.txt"


def prepare(root: Path, arch: str) -> tuple[Path, dict[str, str]]:
    """A new folder for this run's traces and the environment that makes qemu write them there
    (the project is mounted at the same path inside)."""
    d = new_folder(root, "traces", arch)
    return d, {"QEMU_STRACE": "1", "QEMU_LOG_FILENAME": str(d / "trace-%d.log")}


@dataclass
class Summary:
    files: int = 0
    calls: int = 0
    missing: Counter[str] = field(default_factory=Counter)   # syscall name (or "syscall N") -> times

    def lines(self, shown: str) -> list[str]:
        out = [f"syscall trace: {self.calls} calls in {self.files} process{'es' if self.files != 1 else ''}, in {shown}"]
        if self.missing:
            top = ", ".join(f"{k} x{v}" for k, v in self.missing.most_common())
            out.append(f"not implemented under qemu-user (ENOSYS or unknown): {top}")
        return out


def _read(p: Path) -> Iterator[str]:
    with open(p, errors="replace", opener=lambda path, flags: os.open(path, flags | os.O_NOFOLLOW)) as f:
        yield from f


def summarise(d: Path) -> Summary:
    """Count the calls and the unimplemented ones in every trace file of ``d``; writes
    ``summary.txt`` there."""
    s = Summary()
    real_dir(d)  # the container could write the project: no link may have replaced the folder
    for p in sorted(d.glob("trace-*.log")):
        try:
            for line in _read(p):
                s.calls += 1
                if line.rstrip("\n").endswith(ENOSYS_END) and (calls := CALL.findall(line)):
                    s.missing[calls[-1]] += 1
                elif (m := UNKNOWN.match(line)) is not None:
                    s.missing[f"syscall {m['nr']}"] += 1
        except OSError:
            continue  # a link planted in place of a trace is not read
        s.files += 1
    try:
        with open(d / SUMMARY, "w", opener=lambda path, flags: os.open(path, flags | os.O_NOFOLLOW, 0o644)) as f:
            f.write("\n".join(s.lines(str(d))) + "\n")
            for k, v in s.missing.most_common():
                f.write(f"{v}\t{k}\n")
    except OSError:
        pass  # a link planted as summary.txt is not written through; the summary is still said
    return s
