"""podrepro debug ARCH [GDB OPTIONS] -- PROGRAM [ARGS...] | debug ARCH --core FILE [-- PROGRAM]."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from podrepro.cli.run import ArchArg, CpuOpt, ImageOpt, MirrorOpt, PrivOpt, SrcOpt, SuiteOpt

AFTER = "podrepro.after_dashdash"


class DashDash(TyperCommand):
    """Remembers how many arguments came after "--" (click drops the separator itself): those
    are the program and its arguments, everything unknown before it is gdb's."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[AFTER] = len(args) - args.index("--") - 1 if "--" in args else None
        return super().parse_args(ctx, args)


def split(args: list[str], after: int | None) -> tuple[list[str], list[str]]:
    """(gdb options, program and its arguments). Without "--", a last argument that is no option
    names the program (``debug ARCH --core FILE PROGRAM``)."""
    if after is not None:
        return args[: len(args) - after], args[len(args) - after:]
    if args and not args[-1].startswith("-") and (len(args) == 1 or not args[-2].startswith("-")):
        return args[:-1], args[-1:]
    return args, []


def register(app: typer.Typer) -> None:
    @app.command("debug", cls=DashDash, context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                                           "allow_interspersed_args": True})
    def debug(ctx: typer.Context, arch: ArchArg,
              core: Annotated[Path | None, typer.Option("--core", help="Open this core of an emulated crash (from .podrepro/cores/ARCH/).")] = None,
              profile: Annotated[str | None, typer.Option("--profile", help="Profile (its image is the sysroot).")] = None,
              src: SrcOpt = None,
              env: Annotated[list[str] | None, typer.Option("--env", help="NAME=VALUE to set, or NAME to pass through (repeatable).")] = None,
              cpu: CpuOpt = None, suite: SuiteOpt = None, mirror: MirrorOpt = None, image: ImageOpt = None,
              private_binfmt: PrivOpt = False) -> None:
        """Debug PROGRAM with gdb: podrepro debug ARCH [GDB OPTIONS] -- PROGRAM [ARGS...].

        PROGRAM runs in the ARCH container (as with run) stopped at its first instruction under
        QEMU's gdbstub; a native gdb-multiarch attaches with the image as sysroot. In gdb, 'run'
        (or 'start') lets it go. GDB OPTIONS (--batch, -ex CMD, -x FILE...) go to gdb. With --core
        FILE, opens a core left by 'run --core' instead. Exits with gdb's code."""
        from podrepro.cli.output import Progress, confirm, info
        from podrepro.debug.command import debug as run_debug

        gdb_opts, program = split(list(ctx.args), ctx.meta.get(AFTER))
        rc = run_debug(arch, program, gdb_opts, core=core, profile=profile, src=src, env=env or [], cpu=cpu,
                       suite=suite, mirror=mirror, image=image, private_binfmt=private_binfmt, confirm=confirm,
                       progress=Progress, notify=lambda line: info(f"podrepro: {line}"))
        raise typer.Exit(rc)
