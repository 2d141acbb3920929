"""``podrepro triage``: the same run or tests across comparators, then the verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from podrepro.arches import lookup
from podrepro.errors import PodreproError, UsageError
from podrepro.reporting import Confirm, Notify, ReporterFor
from podrepro.triage.report import Comparator, Report


def triage(arch_name: str, command: Sequence[str], *, test: bool, filt: str | None = None, repeat: int = 3,
           jobs: int = 1, cpu_models: str | None = None, native: bool = True, single_thread_env: str | None = None,
           profile: str | None = None, src: Path | None = None, env: Sequence[str] = (), suite: str | None = None,
           mirror: str | None = None, system_check: bool = False, confirm: Confirm | None, progress: ReporterFor,
           notify: Notify | None = None) -> Report:
    """Run the tests (``test``) or ``command`` ``repeat`` times on ARCH with its default CPU, on
    other CPU models, single-threaded (``single_thread_env``), natively on amd64 and i386 (the
    target's suite and profile), and once traced; return the report with its verdicts."""
    from podrepro import config, workflows
    from podrepro.images.recipe import resolve_suite
    from podrepro.triage import comparators
    from podrepro.triage.repeat import Request

    arch = lookup(arch_name)
    if not test and not command:
        raise UsageError("triage needs a command or --test: podrepro triage ARCH [--] CMD... | triage ARCH --test",
                         hint="a command may name each comparator's build tree as {build_dir}")
    if test and command:
        raise UsageError("triage --test runs the profile's tests: give no command with it")
    say = notify or (lambda line: None)
    cfg = config.resolve({"profile": profile, "suite": suite, "mirror": mirror}, src=src)
    target_suite = resolve_suite(arch, cfg["suite"])  # every comparator: the same suite (glibc, gcc)
    listing = None
    if cpu_models == "all" and arch.qemu:
        from podrepro import privbinfmt
        from podrepro.engine import process

        listing = process.run([privbinfmt.find_qemu(arch), "-cpu", "help"]).stdout.decode(errors="replace")
    models = comparators.cpu_models(arch, cpu_models, listing)
    mode = "test" if test else "run"
    report = Report(arch.alias, mode, list(command), filt, repeat)

    def go(a: str, kind: str, name: str, *, cpu: str | None = None, build: bool = True, count: int = repeat,
           extra_env: Sequence[str] = (), strace: bool = False, cmd: Sequence[str] | None = None,
           record: bool = True) -> Comparator:
        req = Request(count=count, jobs=jobs, quiet=True, label=name, build=build and mode == "run" and cmd is None,
                      substitute=mode == "run")
        say(f"triage: {name}: {count} run{'s' if count != 1 else ''}" + (" (traced)" if strace else ""))
        comp = Comparator(name, kind, a, cpu, None)
        try:
            workflows.reproduce("run" if cmd is not None else mode, a, list(cmd if cmd is not None else command),
                                profile=profile, src=src, env=[*env, *extra_env], cpu=cpu, suite=target_suite,
                                mirror=mirror, filt=filt if cmd is None else None, no_build=not build, strace=strace,
                                series=req, confirm=confirm, progress=progress, notify=say)
            comp.series = req.done[-1] if req.done else None
        except PodreproError as e:
            comp.error = e.message
            say(f"triage: {name} could not run: {e.message}")
        if record:
            report.comparators.append(comp)
        return comp

    target = go(arch.alias, "target", arch.alias)
    for m in models:
        go(arch.alias, "cpu", f"{arch.alias} (cpu {m})", cpu=m, build=False)
    if single_thread_env:
        go(arch.alias, "threads", f"{arch.alias} (single-threaded)", build=False, extra_env=[single_thread_env])
    if native:
        for n in comparators.NATIVES:
            if n != arch.alias:
                go(n, "native", n)
    if arch.emulated and target.series is not None and target.series.failures:
        from podrepro.triage.report import missing_syscalls

        traced = go(arch.alias, "trace", f"{arch.alias} (traced)", build=False, count=1, strace=True, record=False)
        baseline = go(arch.alias, "trace", f"{arch.alias} (start-up baseline)", build=False, count=1, strace=True,
                      cmd=["true"], record=False)
        report.missing = missing_syscalls(traced.series, baseline.series, arch.alias)
    if system_check and target.series is not None and target.series.failures:
        report.comparators.append(_system(arch.alias, mode, command, profile=profile, src=src, env=env, filt=filt,
                                          confirm=confirm, progress=progress, say=say))
    first = target.series.first_failure if target.series is not None else None
    if first is not None:
        from podrepro.fidelity.artefacts import matching

        try:
            with open(first.log, errors="replace") as f:
                text = f.read(4 << 20)
        except OSError:
            text = ""
        report.artefacts = [a.id for a in matching(arch, text, report.missing)]
    return report


def print_to(f: IO[str], line: str) -> None:
    f.write(line + "\n")


def _system(alias: str, mode: str, command: Sequence[str], *, profile: str | None, src: Path | None,
            env: Sequence[str], filt: str | None, confirm: Confirm | None, progress: ReporterFor,
            say: Notify) -> Comparator:
    """The second opinion (``--system-check``): one run in a full-system VM of the target."""
    import time

    from podrepro import config, runner
    from podrepro.arches import lookup as arch_of
    from podrepro.images.target import target as target_of
    from podrepro.paths import get_paths
    from podrepro.system.command import run_system
    from podrepro.triage import signs
    from podrepro.triage.repeat import Run, Series

    name = f"{alias} (full-system VM)"
    comp = Comparator(name, "system", alias, None, None)
    say(f"triage: {name}: 1 run")
    logs = get_paths().logs
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"triage-system-{alias}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    cfg = config.resolve({"profile": profile}, src=src)
    vals = runner.placeholders(arch_of(alias), target_of(cfg, alias, None).profile, cfg.project_root,
                               float(cfg["timeout_multiplier"]))
    try:
        with open(log, "w") as out:
            r = run_system(mode, alias, runner.substitute(list(command), vals) if mode == "run" else [],
                           profile=profile, src=src, env=env, filt=filt, timeout_multiplier=None, memory=None,
                           confirm=confirm, progress=progress, say=say, show=lambda line: print_to(out, line))
        comp.series = Series(name, runs=[Run(1, r.exit_status, r.seconds, r.failed_tests, r.tests_ran, log,
                                             signs.Signs((), None), signs.exit_signal(r.exit_status))])
    except PodreproError as e:
        comp.error = e.message
        say(f"triage: {name} could not run: {e.message}")
    return comp
