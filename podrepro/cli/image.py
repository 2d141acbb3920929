from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

image_app = typer.Typer(help="Build, list, remove, export and import podrepro's images.", no_args_is_help=True)

ArchArg = Annotated[str, typer.Argument(help="Architecture (arm, mips, arm64, ...; any spelling).")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="Profile (generic, jsc, base, or one from podrepro.toml).")]
SuiteOpt = Annotated[str | None, typer.Option("--suite", help="Debian suite of the base image.")]
MirrorOpt = Annotated[str | None, typer.Option("--mirror", help="Debian mirror URL for the bootstrap.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def register(app: typer.Typer) -> None:
    app.add_typer(image_app, name="image")


def _cfg(**cli: object):  # type: ignore[no-untyped-def]
    from podrepro import config

    return config.resolve(cli)


@image_app.command("build")
def build(
    arch: ArchArg,
    profile: ProfileOpt = None,
    suite: SuiteOpt = None,
    mirror: MirrorOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build even if the image exists.")] = False,
    from_rootfs: Annotated[Path | None, typer.Option("--from-rootfs", help="Use this root filesystem tarball as the base instead of bootstrapping.")] = None,
    base_ref: Annotated[str | None, typer.Option("--base", help="Pull this registry image as the base (e.g. an arm32v7 Debian image).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Build (or find in the cache) the image for ARCH and a profile."""
    from podrepro import workflows
    from podrepro.arches import lookup
    from podrepro.cli.output import echo, emit_json
    from podrepro.engine.podman import engine
    from podrepro.errors import UsageError
    from podrepro.images import BaseSource

    lookup(arch)
    if from_rootfs and base_ref:
        raise UsageError("--from-rootfs and --base exclude each other", hint="pick one source for the base")
    cfg = _cfg(suite=suite, mirror=mirror)
    source = BaseSource()
    if from_rootfs:
        source = workflows.rootfs_source(from_rootfs)
    elif base_ref:
        source = BaseSource("ref", base_ref)
    t = workflows.target(cfg, arch, profile, source)
    workflows.check_binfmt(t.arch)
    with engine() as eng:
        r = workflows.ensure_image(cfg, eng, t, rebuild=rebuild)
    if json_:
        emit_json(workflows.to_jsonable(r))
    else:
        echo(r.tag if r.built else f"{r.tag} (cached)")
