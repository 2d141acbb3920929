"""The host's qemu-user (where a static one is, its version) and the kernel features the handlers
depend on: flag P (preserve argv[0]) and binfmt_misc instances private to a user namespace."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from podrepro.binfmt.elf import inspect_interpreter


def qemu_candidates(qemu: str, which: Callable[[str], str | None]) -> list[str]:
    """Where distros put a static qemu-user: PATH, /usr/bin, Debian's P-flag wrapper name."""
    found = which(f"qemu-{qemu}-static")
    c = [found] if found else []
    c += [f"/usr/bin/qemu-{qemu}-static", f"/usr/libexec/qemu-binfmt/{qemu}-binfmt-P"]
    return list(dict.fromkeys(c))


def root_owned_chain(path: str, root: str = "/") -> bool:
    """``path`` (symlinks resolved) and every directory above it belong to root and are writable by
    nobody else: only such a file may become a system-wide handler, which every user's binaries of
    that architecture then run through (with flag C, as root for setuid programs)."""
    real = os.path.realpath(os.path.join(root, path.lstrip("/")))
    p = real
    while True:
        try:
            st = os.lstat(p)
        except OSError:
            return False
        if st.st_uid != 0 or st.st_mode & 0o022:
            return False
        parent = os.path.dirname(p)
        if parent == p:
            return True
        p = parent


def find_static_qemu(qemu: str, *, which: Callable[[str], str | None] | None = None,
                     root: str = "/", trusted: Callable[[str], bool] | None = None) -> str | None:
    """The first candidate that exists and is static (a dynamic one is useless in containers);
    with ``trusted``, only one it accepts (a registration for everyone: ``root_owned_chain``)."""
    import shutil

    for path in qemu_candidates(qemu, which or shutil.which):
        info = inspect_interpreter(path, root)
        if info.exists and info.static and (trusted is None or trusted(path)):
            return path
    return None


_VERSION_RE = re.compile(r"version (\d+)\.(\d+)")


def parse_qemu_version(text: str) -> tuple[int, int] | None:
    m = _VERSION_RE.search(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_kernel_version(release: str) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def qemu_version(path: str, *, timeout: float = 10.0) -> tuple[int, int] | None:
    import subprocess

    from podrepro.engine import process
    from podrepro.errors import PodreproError

    try:
        cp = process.run([path, "--version"], timeout=timeout)
    except (PodreproError, OSError, subprocess.TimeoutExpired):
        return None  # unknown version: P is simply left off
    return parse_qemu_version(cp.stdout.decode(errors="replace"))


def preserve_argv0_supported(interpreter: str, qemu: tuple[int, int] | None,
                             kernel: tuple[int, int] | None) -> bool:
    """May the entry carry flag P (preserve argv[0])?

    With P the kernel passes the binary's original argv[0] *in addition* to its path, so qemu must
    know whether P was used or it runs the wrong file. Two ways it can know:
    - QEMU >= 6.0 reads ``AT_FLAGS_PRESERVE_ARGV0`` from the aux vector (linux-user/main.c:
      ``preserve_argv0 = !!(qemu_getauxval(AT_FLAGS) & AT_FLAGS_PRESERVE_ARGV0)``, upstream commit
      "linux-user: manage binfmt-misc preserve-arg[0] flag"), which the kernel sets only since
      Linux 5.12 ("binfmt_misc: pass binfmt_misc flags to the interpreter"): both are needed.
    - Debian's qemu recognises being invoked as ``/usr/libexec/qemu-binfmt/<name>-binfmt-P``
      (Debian patch "linux-user: handle binfmt-misc P flag as a separate exe name"), any kernel.
    Without either, P would make qemu execute argv[0] instead of the binary: leave it off.
    """
    if os.path.basename(interpreter).endswith("-binfmt-P"):
        return True
    return qemu is not None and qemu >= (6, 0) and kernel is not None and kernel >= (5, 12)


MIN_KERNEL = (6, 7)  # binfmt_misc in user namespaces (commit "binfmt_misc: enable sandboxed mounts")


def kernel_supported(release: str | None = None) -> bool:
    """May a user namespace mount its own binfmt_misc (zero-sudo emulation, ``privbinfmt``)?"""
    kv = parse_kernel_version(release if release is not None else os.uname().release)
    return kv is not None and kv >= MIN_KERNEL
