from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("arches")
    def arches_cmd(
        names: Annotated[list[str] | None, typer.Argument(help="Only these architectures (any spelling).")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """List the supported architectures and every name each one goes by."""
        from podrepro.arches import ARCHES, lookup
        from podrepro.cli.output import echo, emit_json, table

        selected = [lookup(n) for n in names] if names else list(ARCHES)

        if json_:
            emit_json([a.to_dict() for a in selected])
            return
        rows = [
            (a.alias, a.debian, a.oci_platform, a.uname_m, f"qemu-{a.qemu}" if a.qemu else "native",
             a.suite, ", ".join(a.spellings))
            for a in selected
        ]
        echo(table(["arch", "debian", "platform", "uname -m", "emulator", "suite", "also accepted"], rows))
