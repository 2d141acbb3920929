"""The subprocesses a build starts, kept track of so that an interruption can stop every one.

A bootstrap runs mmdebstrap (in a process group of its own: on interruption the whole mmdebstrap
tree, its unshared child included, gets the SIGINT a terminal's Ctrl-C would give it, the path it
cleans up after) piped into ``podman import``; a layer build runs ``podman build``. Everything
goes through the chokepoint (``process.popen``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podrepro.engine import process


class Children:
    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._groups: set[int] = set()  # children started as process-group leaders

    def spawn(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        p = process.popen(argv, **kw)
        self._procs.append(p)
        if kw.get("start_new_session"):
            self._groups.add(p.pid)
        return p

    def run_logged(self, argv: list[str], log: Path, echo: Callable[[bytes], None] | None = None,
                   watch: Callable[[bytes], None] | None = None, env: dict[str, str] | None = None) -> int:
        """Run ``argv`` to its end with its output appended to ``log`` (and each line passed to
        ``echo`` too, when given: ``-v``; and to ``watch``, which draws progress from it); its
        exit status. ``env``: variables to set for it."""
        with open(log, "ab") as lf:
            lf.write(f"$ {' '.join(argv)}\n".encode())
            lf.flush()
            if echo is not None or watch is not None:
                p = self.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
                assert p.stdout is not None
                for line in p.stdout:
                    lf.write(line)
                    if echo is not None:
                        echo(line)
                    if watch is not None:
                        watch(line)
            else:
                p = self.spawn(argv, stdout=lf, stderr=lf, env=env)
            rc = p.wait()
        self._procs.remove(p)
        return rc

    def forget(self) -> None:
        """They all ended as they should: nothing to stop any more."""
        self._procs.clear()
        self._groups.clear()

    def kill_all(self) -> None:
        """After a failure or an interruption: stop every child (a group leader's whole group)
        and wait until each is gone."""
        for p in self._procs:
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    if p.pid in self._groups:
                        os.killpg(p.pid, signal.SIGINT)
                    else:
                        p.terminate()
        for p in self._procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pgid in self._groups:
            wait_group_gone(pgid, timeout=30)
        self.forget()


def wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait until no process of the group is left; SIGKILL whatever still is after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)
