"""Known qemu-user artefacts: failures under podrepro that a board of the same architecture does
not have. One entry per class, with the evidence it needs, where it is documented, and what
applies it. Each was confirmed on podrepro's development machine (Debian bookworm, qemu 7.2,
Linux 6.18, ext4) with a program in ``examples/fidelity``.

A match is a hint with its evidence, never a verdict of its own: ``run``/``test`` print one line
after a failed run, ``triage`` names it beside its verdict, ``doctor`` lists what this host's
setup can trigger.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from podrepro.arches import Arch


@dataclass(frozen=True)
class Artefact:
    id: str
    title: str                       # what goes wrong, a few words
    detail: str                      # why, and how a board differs
    output: re.Pattern[str] | None   # evidence in the program's output, if it can show
    syscalls: tuple[str, ...]        # evidence in a QEMU_STRACE pass (calls answered ENOSYS)
    word_size: int | None            # 32: only 32-bit targets; None: any
    arches: tuple[str, ...]          # () = every emulated architecture
    reference: str                   # where it is documented
    mitigation: str                  # what podrepro (or the user) can do

    def applies(self, arch: Arch) -> bool:
        if not arch.emulated:
            return False
        if self.word_size is not None and 8 * 4 * arch.elf_class != self.word_size:
            return False
        return not self.arches or arch.alias in self.arches


ARTEFACTS: tuple[Artefact, ...] = (
    Artefact(
        "readdir-cookies",
        "32-bit readdir() fails with EOVERFLOW on the host's ext4",
        "a 32-bit program's readdir() fails with EOVERFLOW in a directory of the host's ext4: ext4 hands "
        "the (64-bit) qemu process 64-bit directory offsets that 32-bit glibc cannot return; a board's "
        "32-bit kernel (or arm64's compat path) gets 32-bit ones",
        re.compile(r"Value too large for defined data type|EOVERFLOW"), (), 32, (),
        "Linux fs/ext4/dir.c (with dir_index, offsets are htree hashes; 32-bit ones only for is_32bit_api() "
        "callers); reported under qemu by go-debos/debos#704 and Azure/iot-hub-device-update#350",
        "--tmpfs-tree (the command runs on a copy of the project in a tmpfs, whose offsets are small); in the "
        "program, -D_FILE_OFFSET_BITS=64",
    ),
    Artefact(
        "ptrace",
        "no ptrace under qemu-user",
        "qemu-user implements no ptrace: gdb, gdbserver, strace and sanitizers' helpers inside fail "
        "(ENOSYS)",
        re.compile(r"ptrace[^\n]*(Function not implemented|ENOSYS)|(Function not implemented|ENOSYS)[^\n]*ptrace",
                   re.I), ("ptrace",), None, (),
        "QEMU linux-user: no TARGET_NR_ptrace emulation (syscall.c answers ENOSYS for it)",
        "podrepro debug ARCH (QEMU's gdbstub with a native gdb-multiarch)",
    ),
    Artefact(
        "host-cpuinfo",
        "/proc/cpuinfo describes the host's x86 CPU",
        "/proc/cpuinfo is the host's (x86: vendor_id, x86 flags) under qemu-user 7.2: a program that "
        "detects CPU features there (NEON, VFP, ...) finds none of the target's",
        re.compile(r"GenuineIntel|AuthenticAMD|vendor_id"), (), None, ("arm", "armel", "arm64", "mips", "mips64el",
                                                                         "ppc64el", "s390x"),
        "QEMU linux-user/syscall.c: /proc/cpuinfo is emulated only for a few targets (not these in 7.2)",
        "read features from getauxval(AT_HWCAP) (qemu sets the target's), not /proc/cpuinfo",
    ),
    Artefact(
        "missing-syscall",
        "a system call qemu-user does not emulate answers ENOSYS",
        "a system call qemu-user does not emulate answers ENOSYS (\"Unknown syscall\" in its trace; e.g. "
        "openat2 in qemu 7.2), where every kernel podrepro targets has it",
        re.compile(r"Function not implemented"), ("openat2", "syscall 437"), None, (),
        "QEMU linux-user syscall table: qemu 7.2 (Debian bookworm's) has no openat2 (\"Unknown syscall 437\", "
        "checked here); podrepro run --strace lists what a program hits",
        "a newer qemu-user-static on the host (podrepro doctor shows its version), or a fallback in the program",
    ),
    Artefact(
        "robust-futex",
        "robust mutexes never report EOWNERDEAD",
        "set_robust_list is refused (ENOSYS): the kernel never learns a thread's robust futexes, so "
        "process-shared robust mutexes never report EOWNERDEAD when their owner dies",
        re.compile(r"EOWNERDEAD|owner died", re.I), ("set_robust_list",), None, (),
        "QEMU linux-user/syscall.c, TARGET_NR_set_robust_list: \"we can't support these. Silently return "
        "ENOSYS\"",
        "none under qemu-user; test robust-mutex recovery with podrepro run --system (a full-system VM)",
    ),
)
BY_ID = {a.id: a for a in ARTEFACTS}


def matching(arch: Arch, output: str = "", missing: Sequence[str] = ()) -> list[Artefact]:
    """The classes that apply to ``arch`` and whose evidence is in a failed run's ``output`` or
    in the syscalls its trace showed answered ENOSYS (``missing``, as the strace summary names
    them: ``openat2``, ``syscall 437 (openat2)``)."""
    out = []
    names = {m.split(" (")[0] for m in missing} | {m for m in missing}
    for a in ARTEFACTS:
        if not a.applies(arch):
            continue
        by_output = a.output is not None and output and a.output.search(output)
        by_trace = any(s in names or any(n.endswith(f"({s})") for n in missing) for s in a.syscalls)
        if by_output or by_trace:
            out.append(a)
    return out


def hint_for_log(arch: Arch, log: Path) -> str | None:
    """The one line for a failed run whose output is in ``log`` (a results file holding the
    tests' output, a run's log), or None: only the first 4 MiB are read."""
    try:
        with open(log, errors="replace") as f:
            text = f.read(4 << 20)
    except OSError:
        return None
    return warning(arch, matching(arch, text))


def watch_list(arch: Arch) -> list[tuple[str, str]]:
    """(pattern, line) for each class that applies to ``arch`` and can show in a run's output: what
    a ``run`` whose output podrepro reads says after a failure (``runplan.run_watched``)."""
    out = []
    for a in ARTEFACTS:
        if a.applies(arch) and a.output is not None:
            line = warning(arch, [a])
            assert line is not None
            out.append(((f"(?i){a.output.pattern}" if a.output.flags & re.I else a.output.pattern), line))
    return out


def warning(arch: Arch, found: Sequence[Artefact]) -> str | None:
    """The one line ``run``/``test`` print after a failed run (None when nothing matched)."""
    if not found:
        return None
    a = found[0]
    more = f" (also: {', '.join(x.id for x in found[1:])})" if found[1:] else ""
    return (f"this failure may be a qemu-user artefact, not the program's: {a.id} ({a.title}){more}; "
            f"{a.mitigation}")
