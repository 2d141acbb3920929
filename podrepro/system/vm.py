"""Booting a ``--system`` VM: its init script, the qemu-system argv, and reading its console.

The init (``/podrepro-init``, the kernel's ``rdinit=``) mounts /proc, /sys, /dev and a /tmp,
sets podrepro's variables, runs the command in the project directory, prints its exit status
between markers (and, for ``test``, the results file as base64 of a tar), then powers off.
Everything else on the console (the kernel's own lines, with ``quiet``) is not shown. qemu runs
with no network and no disk, ``-no-reboot`` (a dying init ends qemu too) and a time limit; it is
killed whatever happens.
"""

from __future__ import annotations

import base64
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from podrepro.errors import PodreproError
from podrepro.system.machines import Machine

BEGIN, EXIT, RES_BEGIN, RES_END = "@@podrepro-begin@@", "@@podrepro-exit=", "@@podrepro-results@@", "@@podrepro-end@@"
EXIT_RE = re.compile(r"@@podrepro-exit=(\d+)@@")


def init_script(command: Sequence[str], workdir: str, env: Mapping[str, str], results: Sequence[str],
                results_root: str) -> str:
    """``/podrepro-init``: every value shell-quoted; ``results``: paths relative to ``results_root``
    sent back after the command (base64 of a tar)."""
    q = shlex.quote
    exports = "".join(f"export {k}={q(v)}\n" for k, v in env.items())
    res = " ".join(q(r) for r in results)
    send = (f'echo {RES_BEGIN}\ncd {q(results_root)} && tar -cf - {res} 2>/dev/null | base64\necho {RES_END}\n'
            if results else "")
    return ("#!/bin/sh\n"
            "mount -t proc proc /proc 2>/dev/null; mount -t sysfs sys /sys 2>/dev/null\n"
            "mount -t devtmpfs dev /dev 2>/dev/null; mkdir -p /dev/pts /dev/shm /tmp /run\n"
            # no tmpfs over /tmp or /run: the root is a tmpfs already, and the project may be under them
            "mount -t devpts devpts /dev/pts 2>/dev/null; chmod 1777 /tmp\n"
            "export HOME=/tmp PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8\n"
            f"{exports}"
            f"cd {q(workdir)} || {{ echo '@@podrepro-error: no directory {workdir}@@'; exit 1; }}\n"
            f"echo {BEGIN}\n"
            # through a pipe, as in a container run without a terminal (no colours, no pager)
            f"{{ {shlex.join(command)} </dev/null; echo $? > /run/.podrepro-rc; }} 2>&1 | cat\n"
            "rc=$(cat /run/.podrepro-rc)\n"
            f'echo "{EXIT}$rc@@"\n'
            f"{send}"
            "sync\necho o > /proc/sysrq-trigger\nsleep 5\n")


def qemu_argv(m: Machine, kernel: Path, initrd: Path, memory_mib: int | None = None) -> list[str]:
    return [m.qemu, *m.args, "-m", str(memory_mib or m.memory_mib), "-smp", str(m.smp), "-nodefaults",
            "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot", "-nic", "none",
            "-kernel", str(kernel), "-initrd", str(initrd),
            # ramfs, not the tmpfs the kernel would pick: no cap at half the memory
            "-append", f"console={m.console} rdinit=/podrepro-init rootfstype=ramfs quiet loglevel=1 panic=-1"]


@dataclass
class Outcome:
    exit_status: int | None      # None: the VM ended without the command's status (see ``tail``)
    results: bytes               # the tar the init sent (b"" when none)
    tail: list[str]              # the console's last lines outside the command's output (for errors)
    seconds: float


def boot(argv: Sequence[str], *, show: Callable[[str], None], timeout: float) -> Outcome:
    """Run the VM; the command's lines go to ``show`` as they come."""
    from podrepro.engine import process

    t0 = time.monotonic()
    proc = process.popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    state, rc, res, tail = "boot", None, [], []  # type: tuple[str, int | None, list[str], list[str]]
    watchdog = threading.Timer(timeout, proc.kill)  # a VM that hangs silently is stopped too
    watchdog.start()
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
            if state == "boot":
                if line.endswith(BEGIN):
                    state = "cmd"
                else:
                    tail = [*tail, line][-20:]
            elif state == "cmd":
                m = EXIT_RE.search(line)
                if m:
                    before = line[:m.start()]
                    if before:
                        show(before)
                    rc, state = int(m.group(1)), "after"
                else:
                    show(line)
            elif state == "after":
                if line.strip() == RES_BEGIN:
                    state = "res"
            elif state == "res":
                if line.strip() == RES_END:
                    state = "done"
                else:
                    res.append(line.strip())
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    if rc is None and time.monotonic() - t0 >= timeout:
        raise PodreproError(f"the VM did not finish within {timeout:.0f} s: stopped",
                            hint="a smaller command, or more time: PODREPRO_SYSTEM_TIMEOUT=SECONDS")
    data = b""
    if res:
        try:
            data = base64.b64decode("".join(res), validate=False)
        except ValueError:
            data = b""
    return Outcome(rc, data, tail, time.monotonic() - t0)
