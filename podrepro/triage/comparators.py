"""Triage's comparators: CPU models per architecture, the natives, syscall names."""

from __future__ import annotations

import re

from podrepro.arches import Arch
from podrepro.errors import UsageError

# other models of the same architecture, each able to run Debian's binaries for it (its
# baseline ISA), to set beside qemu's default ("max"-like) model: an older and a newer core
DEFAULT_CPU_MODELS: dict[str, tuple[str, ...]] = {
    "arm": ("cortex-a7", "cortex-a15"),
    "armel": ("arm926", "arm1176"),
    "arm64": ("cortex-a53", "cortex-a72"),
    "mips": ("74Kf", "P5600"),
    "mips64el": ("MIPS64R2-generic", "Loongson-3A4000"),
    "ppc64el": ("power8", "power9"),
    "s390x": ("z13", "z14"),
    "riscv64": ("rv64", "sifive-u54"),
}
NATIVES = ("amd64", "i386")

# the generic syscall numbers every Linux architecture shares since 5.1 (qemu prints "Unknown
# syscall N" with the target's number; MIPS adds its ABI's base)
SYSCALL_NAMES = {
    424: "pidfd_send_signal", 425: "io_uring_setup", 426: "io_uring_enter", 427: "io_uring_register",
    428: "open_tree", 429: "move_mount", 430: "fsopen", 431: "fsconfig", 432: "fsmount", 433: "fspick",
    434: "pidfd_open", 435: "clone3", 436: "close_range", 437: "openat2", 438: "pidfd_getfd",
    439: "faccessat2", 440: "process_madvise", 441: "epoll_pwait2", 442: "mount_setattr",
    443: "quotactl_fd", 444: "landlock_create_ruleset", 445: "landlock_add_rule",
    446: "landlock_restrict_self", 447: "memfd_secret", 448: "process_mrelease", 449: "futex_waitv",
    450: "set_mempolicy_home_node",
}
MIPS_BASE = {"mips": 4000, "mips64el": 5000}


def cpu_models(arch: Arch, spec: str | None, listing: str | None = None) -> list[str]:
    """The CPU models to compare: ``spec`` "a,b" as given, "none", "all" (every model qemu lists:
    ``listing`` is ``qemu-ARCH -cpu help``), or None for the documented default set."""
    if not arch.emulated or spec == "none":
        return []
    if spec is None:
        return list(DEFAULT_CPU_MODELS.get(arch.alias, ()))
    if spec == "all":
        if listing is None:
            raise UsageError("--cpu-models all needs qemu's list of models")
        return parse_cpu_help(listing)
    models = [m.strip() for m in spec.split(",") if m.strip()]
    bad = [m for m in models if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", m)]
    if bad or not models:
        raise UsageError(f"--cpu-models {spec!r}: not a comma-separated list of CPU model names",
                         hint=f"e.g. --cpu-models {','.join(DEFAULT_CPU_MODELS.get(arch.alias, ('max',)))}")
    return models


def parse_cpu_help(text: str, aliases: bool = False) -> list[str]:
    """Model names from ``qemu-ARCH -cpu help`` (its formats differ by architecture); with
    ``aliases``, the alias names too (``power8`` for ``power8_v2.0``)."""
    names: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\s*MIPS '([^']+)'", line) or re.match(r"\s*(?:s390|PowerPC|x86)\s+(\S+)", line) \
            or re.match(r"\s*([A-Za-z0-9][\w.+-]*)\s*$", line)  # one name a line (arm, aarch64, riscv)
        if m and m.group(1) not in ("max", "any", "host") and (aliases or "(alias for" not in line):
            names.append(m.group(1))
    return list(dict.fromkeys(names))


def syscall_name(key: str, arch: str) -> str:
    """``syscall 4425`` on mips -> ``syscall 4425 (io_uring_setup)``; names stay as they are."""
    m = re.fullmatch(r"syscall (\d+)", key)
    if not m:
        return key
    n = int(m.group(1)) - MIPS_BASE.get(arch, 0)
    return f"{key} ({SYSCALL_NAMES[n]})" if n in SYSCALL_NAMES else key
