"""A matrix run of run/build/test: the architectures, binfmt once, the children, the results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from podrepro.matrix.runner import Job
from podrepro.reporting import Confirm, Notify


def matrix(mode: str, spec: str, options: Sequence[str], extra: Sequence[str], *, jobs: int | None,
           junit_file: Path | None, profile: str | None, src: Path | None, confirm: Confirm | None,
           show: Callable[[list[Job]], None], notify: Notify | None = None,
           connection: str | None = None) -> list[Job]:
    """Run ``podrepro MODE ARCH OPTIONS -- EXTRA`` for every architecture of ``spec``; write
    ``junit_file`` (test); the jobs with their results."""
    from podrepro import config, runner, workflows
    from podrepro.debug.outdir import new_folder
    from podrepro.matrix import plan, report
    from podrepro.matrix.runner import run
    from podrepro.profiles import resolve_profile
    from podrepro.remote.connection import spread
    from podrepro.results import parse_spec

    say = notify or (lambda line: None)
    cfg = config.resolve({"profile": profile}, src=src)
    arches = plan.arches_for(spec, cfg["arches"])
    # --connection a,b,local: the architectures over the engines, in turn (None: this host)
    where = spread(connection, len(arches)) if connection else [None] * len(arches)
    # the children have no terminal to ask on: a missing handler is registered (or refused) here, once
    for a, w in zip(arches, where, strict=True):
        if w is None:  # a remote engine's own binfmt is checked there
            workflows.gate_binfmt(cfg, a, confirm)
    root = cfg.project_root
    logdir = new_folder(root, "matrix")
    n = jobs or plan.default_jobs(len(arches))
    say(f"{mode} on {', '.join(a.alias + (f' (on {w})' if w else '') for a, w in zip(arches, where, strict=True))}: "
        f"{n} at once; logs in {logdir.relative_to(root)}/")
    job_list = [Job(a, plan.child_argv(mode, a.alias, [*options, *(["--connection", w] if w else [])], extra),
                    logdir / f"{a.alias}.log", engine=w) for a, w in zip(arches, where, strict=True)]
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
