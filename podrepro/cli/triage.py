"""podrepro triage ARCH [--test] [--repeat N] ... [--] [CMD...]."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from podrepro.cli.run import PASS, ArchArg, MirrorOpt, SrcOpt, SuiteOpt


def register(app: typer.Typer) -> None:
    @app.command("triage", context_settings=PASS)
    def triage(ctx: typer.Context, arch: ArchArg,
               test: Annotated[bool, typer.Option("--test", help="Triage the profile's tests (built first on each comparator).")] = False,
               filter_: Annotated[str | None, typer.Option("--filter", "-f", help="With --test: only tests matching PATTERN.")] = None,
               repeat: Annotated[int, typer.Option("--repeat", min=1, help="Runs per comparator.")] = 3,
               jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Runs of a comparator at once (at most the cores).")] = 1,
               cpu_models: Annotated[str | None, typer.Option("--cpu-models", help="Other CPU models to compare: a,b,... | all | none (default: a documented set per arch).")] = None,
               native: Annotated[bool, typer.Option("--native/--no-native", help="Compare with native amd64 and i386 (same suite and profile).")] = True,
               single_thread_env: Annotated[str | None, typer.Option("--single-thread-env", help="NAME=VALUE that makes the tests single-threaded (e.g. OMP_NUM_THREADS=1): adds that comparator.")] = None,
               profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile.")] = None,
               src: SrcOpt = None,
               env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE or NAME (repeatable).")] = None,
               suite: SuiteOpt = None, mirror: MirrorOpt = None,
               system_check: Annotated[bool, typer.Option("--system-check", help="When ARCH fails: one more run in a full-system VM of ARCH (run --system): 'emulator artefact' only when it passes there.")] = False,
               as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (schema in the README).")] = False) -> None:
        """Tell what kind of failure it is: word size, byte order, CPU model, the emulator, or a flake.

        Runs CMD (or, with --test, the profile's tests) --repeat times on ARCH, on other models of
        its CPU, natively on amd64 and i386 (same Debian suite and profile), and once traced, and
        prints the table and a verdict per failing test. In CMD, {build_dir} is each
        comparator's own build tree (built first)."""
        from podrepro.cli.output import Progress, confirm, info
        from podrepro.triage.command import triage as run_triage

        args = list(ctx.args)
        if args and args[0] == "--":
            args = args[1:]
        report = run_triage(arch, args, test=test, filt=filter_, repeat=repeat, jobs=jobs, cpu_models=cpu_models,
                            native=native, single_thread_env=single_thread_env, profile=profile, src=src,
                            env=env or [], suite=suite, mirror=mirror, system_check=system_check,
                            confirm=confirm, progress=Progress,
                            notify=lambda line: info(f"podrepro: {line}"))
        if as_json:
            print(json.dumps(report.to_json(), indent=2))
        else:
            for line in report.lines():
                print(line)
