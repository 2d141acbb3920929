"""Run a matrix: one child podrepro per architecture, at most ``jobs`` at once.

Each child is an ordinary ``podrepro test|build|run ARCH`` (so images build under the same
locks, and interrupting it removes its container as for one architecture) with its output in
``.podrepro/matrix/TIME-…/ARCH.log``. While they run, the status of each (phase, elapsed time,
tests done and failed as the harness reports them) is read from its log and handed to
``show``; at the end, what each one's own summary line said.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from podrepro.arches import Arch

PHASES = (  # (pattern in the child's output, phase); the last one seen wins
    (re.compile(r"bootstrap:|build-step|→ podman import|building the debugger"), "image"),
    (re.compile(r"building first|Building C|Linking|\[\d+/\d+\] "), "building"),
    (re.compile(r"Test project |Start\s+\d+: |^\s*\d+/\d+ Test\s+#", re.M), "testing"),
)
GRACE = 2.0  # seconds the children get to act on a terminal's Ctrl-C themselves
CTEST_DONE = re.compile(r"^\s*\d+/\d+ Test\s+#\d+: (\S+) \.+\s*(\*{0,3}\w+)", re.M)
SUMMARY = re.compile(r"^podrepro: (?:(\d+) tests? ran|tests ran) on [^\s,]+(?:, (\d+) failed: (.*)|, all passed|.*)$", re.M)


@dataclass
class Job:
    arch: Arch
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ended: float = 0.0
    started_at: float = 0.0          # wall clock (time.time), for the report
    ended_at: float = 0.0
    returncode: int | None = None
    phase: str = "waiting"
    done: int = 0
    failed_now: int = 0
    ran: int | None = None
    failed_tests: list[str] = field(default_factory=list)
    engine: str | None = None        # the podman connection it runs on (None: this host)

    @property
    def seconds(self) -> float:
        end = self.ended or (time.monotonic() if self.started else 0.0)
        return end - self.started if self.started else 0.0

    def read(self) -> None:
        """Phase and ctest's progress so far, from the log."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return
        last = -1
        for pat, phase in PHASES:
            for m in pat.finditer(text):
                if m.start() > last:
                    last, self.phase = m.start(), phase
        results = CTEST_DONE.findall(text)
        self.done = len(results)
        self.failed_now = sum(1 for _, r in results if r.strip("*") != "Passed")

    def finish(self, rc: int) -> None:
        self.returncode, self.ended, self.ended_at = rc, time.monotonic(), time.time()
        self.read()
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        found = list(SUMMARY.finditer(text))
        if found:
            m = found[-1]
            self.ran = int(m.group(1)) if m.group(1) else None
            self.failed_tests = [t.strip() for t in (m.group(3) or "").split(",") if t.strip()]
        self.phase = "passed" if rc == 0 else ("interrupted" if rc in (130, -2) else "failed")

    def status(self) -> str:
        tests = f", tests {self.done} done, {self.failed_now} failed" if self.done else ""
        if self.returncode is None:
            return f"{self.arch.alias:<9} {self.phase:<10} {self.seconds:6.1f} s{tests}"
        what = self.phase if self.returncode == 0 else f"{self.phase} (exit {self.returncode})"
        return f"{self.arch.alias:<9} {what:<10} {self.seconds:6.1f} s{tests}"


def run(jobs_list: Sequence[Job], jobs: int, show: Callable[[list[Job]], None], *, tick: float = 0.05,
        refresh: float = 0.5) -> list[Job]:
    """Start up to ``jobs`` children at once (a finished one is noticed within ``tick``, so the
    next starts at once); ``show`` gets every job at most every ``refresh`` seconds and on a change.
    On Ctrl-C (SIGINT reaches the children from the terminal; SIGTERM is passed on) every child
    stops its own container; this waits for all of them, then raises KeyboardInterrupt."""
    from podrepro.engine import process

    pending = list(jobs_list)
    running: list[Job] = []
    interrupted = 0.0   # when the interrupt came (monotonic), 0 = none
    termed = False
    shown = 0.0

    def stop(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = interrupted or time.monotonic()
        pending.clear()
        for j in running:
            if j.proc is not None and signum != signal.SIGINT:  # the terminal sent SIGINT to them already
                j.proc.send_signal(signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                j = pending.pop(0)
                with open(j.log, "wb") as f:
                    j.proc = process.popen(j.argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                           env={"PODREPRO_PROGRESS": "plain"})
                j.started, j.started_at, j.phase = time.monotonic(), time.time(), "starting"
                running.append(j)
            time.sleep(tick)
            if interrupted and not termed and time.monotonic() - interrupted > GRACE:
                # a SIGINT sent to this process alone (not by a terminal to the whole group):
                # the children have not heard it; they stop their containers on SIGTERM
                termed = True
                for j in running:
                    if j.proc is not None and j.proc.poll() is None:
                        j.proc.send_signal(signal.SIGTERM)
            changed = False
            due = time.monotonic() - shown >= refresh
            for j in list(running):
                assert j.proc is not None
                rc = j.proc.poll()
                if rc is not None:
                    j.finish(128 - rc if rc < 0 else rc)
                    running.remove(j)
                    changed = True
                elif due:
                    j.read()
            if changed or due:
                show(list(jobs_list))
                shown = time.monotonic()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if interrupted:
        raise KeyboardInterrupt
    return list(jobs_list)
