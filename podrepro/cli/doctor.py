"""``podrepro doctor [ARCH...] [--json]``: one report on the host's readiness; exit 0 or 1."""

from __future__ import annotations

from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(
        names: Annotated[list[str] | None, typer.Argument(
            help="Only these architectures (any spelling); default: all.", show_default=False)] = None,
        json_: Annotated[bool, typer.Option("--json", help="Machine-readable report (schema: podrepro.doctor.report).")] = False,
        no_probe: Annotated[bool, typer.Option("--no-probe", help="Do not execute the tiny probe binaries.")] = False,
        connection: Annotated[str | None, typer.Option("--connection", help="Check that podman system connection's side instead: ssh, its podman service, rsync, and how each architecture runs there.")] = None,
    ) -> None:
        """Check podman, rootless setup, tools and binfmt_misc handlers; print each problem with its fix.

        Exit 0 when everything the requested architectures need is usable, 1 otherwise.
        """
        import dataclasses

        from podrepro.arches import ARCHES, lookup
        from podrepro.cli.output import echo, emit_json
        from podrepro.doctor.env import DoctorEnv
        from podrepro.doctor.report import run_doctor

        selected = list(dict.fromkeys(lookup(n) for n in names)) if names else list(ARCHES)
        if connection is not None:
            raise typer.Exit(_remote(connection, selected, json_))
        env = DoctorEnv.from_host()
        if no_probe:
            env = dataclasses.replace(env, probe=False)
        report = run_doctor(selected, env)
        if json_:
            emit_json(report.to_dict())
        else:
            echo(render(report))
        raise typer.Exit(report.exit_code)


def _remote(name: str, arches: list[Any], json_: bool) -> int:
    from podrepro.cli.output import echo, emit_json, printable
    from podrepro.remote import doctor

    checks = doctor.check(name, arches)
    if json_:
        emit_json(doctor.to_json(name, checks))
    else:
        label = {"ok": "ok", "info": "info", "fail": "FAIL"}
        for c in checks:
            echo(printable(f"{label[c.status]:<5} {c.what:<22} {c.detail}"))
            if c.fix:
                echo(printable(f"{'':<29}fix: {c.fix}"))
        echo(f"\n{name}: ready" if doctor.ok(checks) else f"\n{name}: not ready (see the FAIL lines)")
    return 0 if doctor.ok(checks) else 1


def render(report: object) -> str:
    """Human report: one line per finding, its fix indented under it, a verdict at the end."""
    from podrepro.doctor.report import DoctorReport

    assert isinstance(report, DoctorReport)
    label = {"ok": "ok", "info": "info", "warn": "WARN", "fail": "FAIL"}
    lines = []
    for f in report.findings:
        lines.append(f"{label[f.severity]:<5} {f.check:<22} {f.message}")
        if f.fix and f.severity in ("warn", "fail"):
            lines.append(f"{'':<29}fix: {f.fix}")
    ready = [r.arch.alias for r in report.arches if r.usable and report.probes.get(r.arch.alias) != "failed"]
    fails = sum(1 for f in report.findings if f.severity == "fail")
    if report.ok:
        lines.append(f"\nready: {', '.join(ready) or '(no architectures requested)'}")
    else:
        lines.append(f"\nnot ready: {fails} problem(s) above; run each 'fix' command, then 'podrepro doctor' again")
    return "\n".join(lines)
