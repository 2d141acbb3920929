"""``--repeat N`` (``--until-fail``, ``--jobs J``): the same run or test again and again.

Every repeat is its own ``podman run --rm``: a fresh container from the same image, so no run
sees another's processes, temporary files or home directory (the project tree and the build
tree are the same mounts, as in any run). The build, when there is one, runs once before. Each
run's output goes to a log file; podrepro prints one line per run and, at the end, the failure
rate with its 95% Wilson interval, which tests failed how often, and the log of the first
failing run (the logs of passing runs are not kept).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from podrepro.errors import PodreproError
from podrepro.reporting import Notify
from podrepro.triage import signs, stats

MAX_UNTIL_FAIL = 100


@dataclass(frozen=True)
class Run:
    index: int
    returncode: int
    seconds: float
    failed_tests: tuple[str, ...]
    ran: int | None                 # tests the harness counted (None: it does not say)
    log: Path
    signs: signs.Signs
    signal: str | None

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        if self.passed:
            return f"passed ({self.seconds:.1f} s)"
        how = f"killed by {self.signal}" if self.signal else f"exit {self.returncode}"
        tests = f": {', '.join(self.failed_tests)}" if self.failed_tests else ""
        return f"failed, {how} ({self.seconds:.1f} s){tests}"


@dataclass
class Series:
    label: str
    runs: list[Run] = field(default_factory=list)
    concurrent: int = 1
    build_failed: int | None = None          # the build's exit code when it failed (then no runs)
    missing: Counter[str] | None = None      # a traced series: syscalls qemu-user does not implement

    @property
    def failures(self) -> int:
        return sum(1 for r in self.runs if not r.passed)

    @property
    def interval(self) -> tuple[float, float]:
        return stats.wilson(self.failures, len(self.runs))

    @property
    def test_failures(self) -> Counter[str]:
        return Counter(t for r in self.runs for t in r.failed_tests)

    @property
    def first_failure(self) -> Run | None:
        return next((r for r in sorted(self.runs, key=lambda r: r.index) if not r.passed), None)

    def summary(self, show: Callable[[Path], str] = str) -> list[str]:
        n, k = len(self.runs), self.failures
        lo, hi = self.interval
        lines = [f"{n} run{'s' if n != 1 else ''} on {self.label}: {k} failed, {n - k} passed; failure rate "
                 f"{stats.percent(k / n if n else 0)} (95% CI {stats.percent(lo)}-{stats.percent(hi)}, Wilson)"]
        if self.test_failures:
            lines.append("failed tests: " + ", ".join(f"{t} {c}/{n}" for t, c in self.test_failures.most_common()))
        first = self.first_failure
        if first is not None:
            lines.append(f"first failing run (run {first.index}): log {show(first.log)}")
        return lines

    def returncode(self) -> int:
        first = self.first_failure
        return 0 if first is None else first.returncode


@dataclass
class Request:
    """What ``--repeat``/``--until-fail``/``--jobs`` ask for; ``done`` receives the finished
    series (triage reads it); ``quiet``: no line per run."""

    count: int = 1
    until_fail: bool = False
    jobs: int = 1
    quiet: bool = False
    label: str | None = None
    build: bool = False             # build first even for a run (triage's {build_dir} commands)
    substitute: bool = False        # a run's command may name {build_dir} and the other placeholders
    done: list[Series] = field(default_factory=list)

    def total(self) -> int:
        return self.count if not self.until_fail or self.count > 1 else MAX_UNTIL_FAIL


def jobs_for(requested: int) -> int:
    return max(1, min(requested, os.cpu_count() or 1))


def run_series(req: Request, label: str, argv_for: Callable[[int], Sequence[str]],
               results_for: Callable[[int], tuple[str, Path] | None], logdir: Path, say: Notify,
               shared_results: bool = False) -> Series:
    """Run ``argv_for(i)`` for i = 1..N (until the first failure with ``until_fail``), up to
    ``jobs`` at once; each run's output in ``logdir/run-i.log``."""
    from podrepro import results
    from podrepro.engine import process

    total = req.total()
    jobs = jobs_for(req.jobs)
    if jobs > 1 and shared_results:
        say("--jobs: the runs go one at a time: the profile's results file has no {run} in its name, "
            "so concurrent runs would overwrite each other's")
        jobs = 1
    series = Series(label, concurrent=jobs)

    def one(i: int) -> Run:
        spec = results_for(i)
        if spec is not None:
            results.clear(spec[1])
        log = logdir / f"run-{i}.log"
        t0 = time.monotonic()
        with open(log, "wb") as f:
            p = process.popen(argv_for(i), stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
            rc = p.wait()
        secs = time.monotonic() - t0
        rc = 128 - rc if rc < 0 else rc
        text = log.read_text(errors="replace")
        counted = results.count(*spec) if spec is not None else None
        if spec is not None:
            with contextlib.suppress(OSError):
                spec[1].unlink()
        if counted is not None and counted.ran == 0 and rc == 0 and counted.found:
            raise PodreproError(f"no test ran on {label}: the build tree has no tests",
                                hint="check that the build builds the tests")
        return Run(i, rc, secs, counted.failed if counted else (), counted.ran if counted else None, log,
                   signs.read(text), signs.exit_signal(rc))

    def record(r: Run) -> None:
        series.runs.append(r)
        if not req.quiet:
            say(f"run {r.index}/{total if not req.until_fail else str(total) + ' at most'} on {label}: {r.describe()}")
        if r.passed:
            with contextlib.suppress(OSError):
                r.log.unlink()

    nxt = 1
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running: set[Future[Run]] = set()
        try:
            while nxt <= total or running:
                stop = req.until_fail and series.failures > 0
                while not stop and nxt <= total and len(running) < jobs:
                    running.add(pool.submit(one, nxt))
                    nxt += 1
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    record(fut.result())
        except BaseException:
            for fut in running:
                fut.cancel()
            raise
    req.done.append(series)
    return series
