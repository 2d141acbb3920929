"""A ``--repeat`` series as ``reproduce`` hands it over: the build once, then the runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from podrepro.profiles import Profile
from podrepro.reporting import Notify
from podrepro.triage.repeat import Request, Series, run_series


def repeat(req: Request, *, build: Sequence[str] | None, argv_for: Callable[[int], Sequence[str]],
           profile: Profile | None, vals: Mapping[str, str], root: Path, arch: str, label: str,
           trace_dir: Path | None, say: Notify) -> int:
    """Build (output to the terminal, or with ``req.quiet`` to a log), run the series, say its
    summary; the first failing run's exit code (0 when all passed)."""
    import subprocess

    from podrepro import results, runner
    from podrepro.debug import strace
    from podrepro.debug.outdir import new_folder, shown
    from podrepro.engine import process

    logdir = new_folder(root, "runs", arch)
    if build is not None:
        if req.quiet:
            log = logdir / "build.log"
            with open(log, "wb") as f:
                rc = process.popen(build, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT).wait()
        else:
            say("building first with the profile's build command")
            rc = process.foreground(build)
        if rc != 0:
            say(f"the build failed on {label} (exit {rc}" + (f", log {shown(log, root)})" if req.quiet else ")"))
            req.done.append(Series(label, build_failed=rc))
            return rc
    spec = results.parse_spec(profile.results) if profile is not None and profile.results else None

    def results_for(i: int) -> tuple[str, Path] | None:
        if spec is None:
            return None
        return spec[0], root / runner.substitute([spec[1]], {**vals, "run": f"-{i}"})[0]

    series = run_series(req, label, argv_for, results_for, logdir, say,
                        shared_results=spec is not None and "{run}" not in spec[1])
    if trace_dir is not None:
        series.missing = strace.summarise(trace_dir).missing
    if not req.quiet:
        for line in series.summary(lambda p: shown(p, root)):
            say(line)
        first = series.first_failure
        if first is not None:
            from podrepro.arches import lookup
            from podrepro.fidelity.artefacts import hint_for_log

            if (hint := hint_for_log(lookup(arch), first.log)) is not None:
                say(hint)
    return series.returncode()
