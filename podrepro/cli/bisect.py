"""podrepro bisect ARCH --good REV --bad REV [OPTIONS] [-- TEST OPTIONS]."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from podrepro.cli.run import EXTRA, ArchArg, CrossOpt


def register(app: typer.Typer) -> None:
    @app.command("bisect", context_settings=EXTRA)
    def bisect(ctx: typer.Context, arch: ArchArg,
               good: Annotated[str, typer.Option("--good", help="A revision whose tests pass on ARCH.")],
               bad: Annotated[str, typer.Option("--bad", help="A revision whose tests fail on ARCH.")],
               filter_: Annotated[str | None, typer.Option("--filter", "-f", help="Only tests matching PATTERN.")] = None,
               profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile.")] = None,
               cross: CrossOpt = None) -> None:
        """Find the commit that broke the tests on ARCH: git bisect run, building and testing at each step.

        Runs in a worktree of its own (your checkout, index and branches are never touched);
        a build failure is a skip; a log per step. Exits 0 with the first bad commit, or when the
        tests pass at --bad (nothing to find)."""
        from podrepro.bisect.command import bisect as run_bisect
        from podrepro.cli.output import echo, info

        options: list[str] = []
        if profile:
            options += ["--profile", profile]
        if cross is not None:
            options.append("--cross" if cross else "--emulated")
        test_options = [*(["--filter", filter_] if filter_ else []), *(["--", *ctx.args] if ctx.args else [])]
        r = run_bisect(arch, good, bad, options, test_options, repo=Path.cwd(),
                       say=lambda line: info(f"podrepro: {line}"))
        if r.bad_passes:
            echo(f"no bad commit: the tests pass on {arch} at {bad} (log: {r.logdir})")
        elif r.candidates:
            echo(f"the first bad commit on {arch} is one of (the others did not build): {' '.join(r.candidates)}")
            echo(f"{r.steps} steps; logs: {r.logdir}")
        else:
            echo(f"first bad commit on {arch}: {r.first_bad} {r.subject}")
            echo(f"{r.steps} steps; logs: {r.logdir}")
