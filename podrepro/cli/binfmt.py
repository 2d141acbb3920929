"""``podrepro binfmt status|register|unregister ARCH...``: the one privileged step, shown before it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from podrepro.arches import Arch
    from podrepro.binfmt.register import Command, HostFacts, Plan

binfmt_app = typer.Typer(
    help="Inspect, register or remove the binfmt_misc handlers that run foreign binaries.",
    no_args_is_help=True,
)

Names = Annotated[list[str] | None, typer.Argument(
    help="Architectures (any spelling); default: all.", show_default=False)]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before running the privileged commands.")]


def register(app: typer.Typer) -> None:
    app.add_typer(binfmt_app, name="binfmt")


def _arches(names: list[str] | None) -> list[Arch]:
    from podrepro.arches import ARCHES, lookup

    return list(dict.fromkeys(lookup(n) for n in names)) if names else list(ARCHES)


@binfmt_app.command("status")
def status_cmd(
    names: Names = None,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Which handler the kernel would use for each architecture, and whether it is fit for containers."""
    from podrepro.binfmt.analysis import analyze, global_findings
    from podrepro.binfmt.lines import read_binfmt_d
    from podrepro.binfmt.state import OWN_PREFIX, binfmt_d_dir, read_state
    from podrepro.cli.output import echo, emit_json
    from podrepro.findings import detect_distro

    state = read_state()
    distro = detect_distro()
    reports = [analyze(state, a, distro) for a in _arches(names)]
    glob = global_findings(state, distro)
    owned = [e.name for e in state.entries if e.owned]
    files = sorted(n for n in read_binfmt_d(binfmt_d_dir()) if f"zz-{OWN_PREFIX}" in n)
    if json_:
        emit_json({
            "directory": state.directory, "mounted": state.mounted, "enabled": state.enabled,
            "podrepro_entries": owned, "binfmt_d": binfmt_d_dir(), "podrepro_files": files,
            "arches": [dict(r.to_dict(), findings=[f.to_dict() for f in r.findings]) for r in reports],
            "findings": [f.to_dict() for f in glob],
        })
    else:
        for f in glob:
            echo(f"{f.severity:<5} {f.message}" + (f"\n      fix: {f.fix}" if f.fix and f.severity != "ok" else ""))
        for r in reports:
            for f in r.findings:
                echo(f"{f.severity:<5} {f.message}" + (f"\n      fix: {f.fix}" if f.fix and f.severity != "ok" else ""))
        echo(f"podrepro entries: {', '.join(owned) or '(none)'}; files in {binfmt_d_dir()}: "
             f"{', '.join(files) or '(none)'}")
    raise typer.Exit(0 if state.mounted and state.enabled and all(r.usable for r in reports) else 1)


@binfmt_app.command("register")
def register_cmd(
    names: Annotated[list[str], typer.Argument(help="Architectures to make runnable (any spelling).")],
    yes: Yes = False,
    force: Annotated[bool, typer.Option("--force", help="Add podrepro's own entry (flags F, C) even when a usable handler exists.")] = False,
    no_persist: Annotated[bool, typer.Option("--no-persist", help="Do not write the binfmt.d file (lost at reboot).")] = False,
) -> None:
    """Register a handler (static qemu, flags F and C) only where none is usable; persist it in binfmt.d."""
    from podrepro.binfmt.register import plan_register
    from podrepro.binfmt.state import read_state
    from podrepro.findings import detect_distro

    arches = _arches(names)
    state = read_state()
    distro = detect_distro()
    facts, no_priv = _facts(persist=not no_persist)
    plans = plan_register(arches, state, distro, facts, force=force)
    _apply(plans, yes, no_priv, verb="register")
    _verify(arches, plans)


@binfmt_app.command("unregister")
def unregister_cmd(names: Names = None, yes: Yes = False) -> None:
    """Remove podrepro's own entries (podrepro-*) and their binfmt.d files; never anything else."""
    from podrepro.binfmt.register import plan_unregister
    from podrepro.binfmt.state import read_state

    arches = _arches(names)
    state = read_state()
    facts, no_priv = _facts(persist=True)
    plans = plan_unregister(arches, state, facts)
    _apply(plans, yes, no_priv, verb="unregister")


def _facts(persist: bool) -> tuple[HostFacts, Exception | None]:
    """Facts with the privilege prefix; a missing sudo is only an error once something must run."""
    import dataclasses
    import shutil

    from podrepro.binfmt.register import default_facts
    from podrepro.errors import HostNotReady

    try:
        return default_facts(persist=persist), None
    except HostNotReady as e:
        facts = default_facts(persist=persist, euid=0, which=shutil.which)
        return dataclasses.replace(facts, prefix=("sudo",)), e


def _apply(plans: list[Plan], yes: bool, no_priv: Exception | None, verb: str) -> None:
    import sys

    from podrepro.binfmt.register import execute
    from podrepro.cli.output import confirm, echo, info
    from podrepro.errors import PodreproError

    for p in plans:
        if not p.commands:
            echo(f"{'/'.join(p.arches)}: {p.reason}")
    commands: list[Command] = [c for p in plans for c in p.commands]
    if not commands:
        echo(f"nothing to {verb}: the host already is as requested (no change made)")
        return
    if no_priv is not None:
        raise no_priv
    for p in plans:
        if p.commands:
            echo(f"{'/'.join(p.arches)}: {p.reason}")
    echo("podrepro will run:")
    for c in commands:
        echo(f"  {c.display()}")
    if not yes:
        if not sys.stdin.isatty():
            raise PodreproError(
                f"refusing to {verb} without confirmation: stdin is not a terminal",
                hint=f"check the commands above, then re-run with --yes (podrepro binfmt {verb} ... --yes)",
            )
        if not confirm("Run these commands?"):
            info("nothing changed")
            raise typer.Exit(1)
    execute(commands)
    for p in plans:
        if p.commands:
            echo(f"{'/'.join(p.arches)}: {verb} done ({p.name})")


def _verify(arches: list[Arch], plans: list[Plan]) -> None:
    """Re-read binfmt_misc and run the probe binary: registration is only done when a binary runs."""
    from podrepro import elfprobe
    from podrepro.binfmt.analysis import analyze
    from podrepro.binfmt.state import read_state
    from podrepro.cli.output import echo
    from podrepro.doctor.env import DoctorEnv
    from podrepro.doctor.probe import run_probe
    from podrepro.errors import HostNotReady
    from podrepro.findings import detect_distro

    changed = {a for p in plans if p.commands for a in p.arches}
    if not changed:
        return
    state = read_state()
    distro = detect_distro()
    env = DoctorEnv.from_host()
    bad: list[str] = []
    for a in arches:
        if a.alias not in changed:
            continue
        r = analyze(state, a, distro)
        where = f"{r.entry.name} (flags {r.entry.flags})" if r.entry else "no handler"
        probe = "skipped"
        if r.usable and elfprobe.supported(a):
            probe, _ = run_probe(env, a)
        echo(f"{a.alias}: {where}; usable: {'yes' if r.usable else 'no'}; probe: {probe}")
        if not r.usable or probe == "failed":
            bad.append(a.alias)
    if bad:
        raise HostNotReady(f"still not usable after registration: {', '.join(bad)}",
                           hint="run 'podrepro doctor " + " ".join(bad) + "' for the details")
