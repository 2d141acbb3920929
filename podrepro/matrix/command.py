"""A matrix run of run/build/test: the architectures, binfmt once, the children, the results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from podrepro.matrix.runner import Job
from podrepro.reporting import Confirm, Notify


def matrix(mode: str, spec: str, options: Sequence[str], extra: Sequence[str], *, jobs: int | None,
           junit_file: Path | None, profile: str | None, src: Path | None, confirm: Confirm | None,
           show: Callable[[list[Job]], None], notify: Notify | None = None) -> list[Job]:
    """Run ``podrepro MODE ARCH OPTIONS -- EXTRA`` for every architecture of ``spec``; write
    ``junit_file`` (test); the jobs with their results."""
    from podrepro import config, runner, workflows
    from podrepro.debug.outdir import new_folder
    from podrepro.matrix import plan, report
    from podrepro.matrix.runner import run
    from podrepro.profiles import resolve_profile
    from podrepro.results import parse_spec

    say = notify or (lambda line: None)
    cfg = config.resolve({"profile": profile}, src=src)
    arches = plan.arches_for(spec, cfg["arches"])
    # the children have no terminal to ask on: a missing handler is registered (or refused) here, once
    for a in arches:
        if workflows.binfmt_mode_for(cfg, a) == "host":
            workflows.check_binfmt(a, confirm)
    root = cfg.project_root
    logdir = new_folder(root, "matrix")
    n = jobs or plan.default_jobs(len(arches))
    say(f"{mode} on {', '.join(a.alias for a in arches)}: {n} at once; logs in {logdir.relative_to(root)}/")
    job_list = [Job(a, plan.child_argv(mode, a.alias, options, extra), logdir / f"{a.alias}.log") for a in arches]
    run(job_list, n, show)
    if junit_file is not None:
        prof = resolve_profile(profile or cfg["profile"], cfg.profiles)
        results: dict[str, Path | None] = {}
        for a in arches:
            path = None
            if mode == "test" and prof.results:
                kind, rel = parse_spec(prof.results)
                vals = runner.placeholders(a, prof, root, float(cfg["timeout_multiplier"]))
                path = root / runner.substitute([rel], vals)[0] if kind == "junit" else None
            results[a.alias] = path
        junit_file.write_bytes(report.junit(job_list, results))
    return job_list
