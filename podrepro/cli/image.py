from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from podrepro.engine.podman import Podman
    from podrepro.images.build import Builder

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
    private_binfmt: Annotated[bool, typer.Option("--private-binfmt", help="Build without the host's binfmt handler: the bootstrap, RUN steps and verification each register qemu in their own binfmt_misc (Linux >= 6.7). Same as binfmt_mode = \"private\".")] = False,
    cross: Annotated[bool, typer.Option("--cross", help="The profile's cross image for ARCH instead (hybrid builds: an amd64 Debian with the cross toolchain).")] = False,
    json_: JsonOpt = False,
    connection: Annotated[str | None, typer.Option("--connection", help="Also put it on this podman system connection's engine (built here, streamed there).")] = None,
) -> None:
    """Build (or find in the cache) the image for ARCH and a profile (--cross: its cross image)."""
    from podrepro import workflows
    from podrepro.arches import lookup
    from podrepro.cli.output import Progress, confirm, echo, emit_json
    from podrepro.engine.podman import engine
    from podrepro.errors import UsageError
    from podrepro.images.recipe import BaseSource
    from podrepro.images.target import rootfs_source, target

    lookup(arch)
    if from_rootfs and base_ref:
        raise UsageError("--from-rootfs and --base exclude each other", hint="pick one source for the base")
    cfg = _cfg(suite=suite, mirror=mirror, binfmt_mode="private" if private_binfmt else None)
    source = BaseSource()
    if from_rootfs:
        source = rootfs_source(from_rootfs)
    elif base_ref:
        source = BaseSource("ref", base_ref)
    t = target(cfg, arch, profile, source)
    if cross:
        if source.kind != "mmdebstrap":
            raise UsageError("--cross builds podrepro's own amd64 base: no --from-rootfs or --base with it")
        with engine() as eng:
            r = workflows.ensure_cross_image(cfg, eng, t, rebuild=rebuild, progress=Progress)
    else:
        workflows.gate_binfmt(cfg, t.arch, confirm)
        with engine() as eng:
            r = workflows.ensure_image(cfg, eng, t, rebuild=rebuild, progress=Progress)
    if connection:
        from podrepro.cli.output import info
        from podrepro.remote import run as remote

        say = lambda line: info(f"podrepro: {line}")  # noqa: E731
        rem = remote.start(connection, t.arch, {}, say)
        remote.ensure_image(rem, "podman", r.tag, True, lambda: None, say)
    if json_:
        emit_json(workflows.to_jsonable(r))
    else:
        echo(r.tag if r.built else f"{r.tag} (cached)")


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1000
    return f"{size:.1f}GB"


ConnOpt = Annotated[str | None, typer.Option("--connection", help="The images on this podman system connection's engine instead.")]


@image_app.command("ls")
def ls(json_: JsonOpt = False, connection: ConnOpt = None) -> None:
    """List podrepro's images: arch, profile, hash, size, created, last used, current or stale."""
    from podrepro.cli.output import echo, emit_json, table, warning
    from podrepro.engine.podman import engine
    from podrepro.images import store
    from podrepro.paths import get_paths

    if connection:
        from podrepro.remote.connection import check_name
        from podrepro.remote.session import remote_images

        found = remote_images(check_name(connection))
        if json_:
            emit_json(found)
        else:
            echo(table(["arch", "size", "created", "tag"],
                       [(r["arch"], _human(int(r["size"])), str(r["created"])[:16], r["tag"]) for r in found]))
        return

    cfg = _cfg()
    with engine() as eng:
        rows = store.list_rows(cfg, eng, get_paths(), warn=warning)
    if json_:
        emit_json([r.to_dict() for r in rows])
        return
    echo(table(["arch", "profile", "hash", "size", "created", "last used", "status", "origin", "tag"],
               [(r.arch, r.profile, r.hash, _human(r.size), r.created[:16], r.last_used[:16] or "-", r.status,
                 r.origin, r.tag) for r in rows]))


@image_app.command("rm")
def rm(
    refs: Annotated[list[str], typer.Argument(help="Image tags, or architectures (= their current image).")],
    profile: ProfileOpt = None,
    connection: ConnOpt = None,
) -> None:
    """Remove podrepro images (by tag, or the current image of an architecture)."""
    from podrepro.cli.output import echo
    from podrepro.engine.podman import engine
    from podrepro.errors import PodreproError
    from podrepro.images import store
    from podrepro.paths import get_paths

    cfg = _cfg()
    missing = []
    if connection:
        from podrepro.remote.connection import check_name
        from podrepro.remote.session import remove_remote_image

        for ref in refs:
            tag = store.resolve_ref(cfg, ref, profile)
            if remove_remote_image(check_name(connection), tag):
                echo(f"removed {tag} from {connection}")
            else:
                missing.append(tag)
        if missing:
            raise PodreproError(f"no such image on {connection}: {', '.join(missing)}",
                                hint=f"see 'podrepro image ls --connection {connection}'")
        return
    with engine() as eng:
        for ref in refs:
            tag = store.resolve_ref(cfg, ref, profile)
            if store.remove(eng, get_paths(), tag):
                echo(f"removed {tag}")
            else:
                missing.append(tag)
    if missing:
        raise PodreproError(f"no such image: {', '.join(missing)}", hint="see 'podrepro image ls'")


@image_app.command("prune")
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Remove current images too.")] = False,
) -> None:
    """Remove stale images (older recipes) and leftovers of interrupted builds; images in use stay."""
    from podrepro.cli.output import echo, info, warning
    from podrepro.engine.podman import engine
    from podrepro.images import store
    from podrepro.paths import get_paths

    cfg = _cfg()
    with engine() as eng:
        removed, kept = store.prune(cfg, eng, get_paths(), dry_run=dry_run, all_=all_, warn=warning)
    for t in removed:
        echo(("would remove " if dry_run else "removed ") + t)
    for k in kept:
        info(f"kept (in use): {k}")
    if not removed and not kept:
        echo("nothing to prune")


@image_app.command("export")
def export(
    arch: ArchArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Tarball to write.")],
    profile: ProfileOpt = None,
    suite: SuiteOpt = None,
    from_rootfs: Annotated[Path | None, typer.Option("--from-rootfs", help="The image built from this rootfs.")] = None,
) -> None:
    """Write ARCH's current image (with its recipe) to a tarball someone else can 'image import'."""
    from podrepro.cli.output import echo
    from podrepro.engine.podman import engine
    from podrepro.images import sharing
    from podrepro.images.recipe import BaseSource
    from podrepro.images.target import rootfs_source, target

    cfg = _cfg(suite=suite)
    source = rootfs_source(from_rootfs) if from_rootfs else BaseSource()
    t = target(cfg, arch, profile, source)
    with engine() as eng:
        sharing.export(eng, t.recipe.tag, output)
    echo(f"exported {t.recipe.tag} to {output}")


@image_app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="A tarball from 'podrepro image export'.")]) -> None:
    """Load an exported image after checking its recipe, platform and integrity."""
    from podrepro.cli.output import echo
    from podrepro.images import sharing

    tag = _with_builder(lambda eng, b: sharing.import_archive(eng, b, file))
    echo(f"imported {tag}")


@image_app.command("push")
def push(
    image: Annotated[str, typer.Argument(help="Image tag, or an architecture (= its current image).")],
    ref: Annotated[str, typer.Argument(help="Destination, e.g. registry.example/team/podrepro:arm.")],
    profile: ProfileOpt = None,
) -> None:
    """Push a podrepro image to a registry."""
    from podrepro.cli.output import echo
    from podrepro.engine.podman import engine
    from podrepro.images import sharing, store

    cfg = _cfg()
    tag = store.resolve_ref(cfg, image, profile)
    with engine() as eng:
        sharing.push(eng, tag, ref)
    echo(f"pushed {tag} to {ref}")


@image_app.command("pull")
def pull(ref: Annotated[str, typer.Argument(help="A podrepro image in a registry.")]) -> None:
    """Pull a podrepro image, verify its recipe and platform, and store it under its content tag."""
    from podrepro.cli.output import echo
    from podrepro.images import sharing

    tag = _with_builder(lambda eng, b: sharing.pull(eng, b, ref))
    echo(f"pulled {ref} as {tag}")


def _with_builder(action: Callable[[Podman, Builder], str]) -> str:
    """Run ``action`` with the engine and a builder for the current config (import, pull: both
    verify what arrives the way a build does)."""
    from podrepro import workflows
    from podrepro.cli.output import Progress
    from podrepro.engine.podman import engine

    with engine() as eng, workflows.builder(_cfg(), eng, progress=Progress) as b:
        return action(eng, b)
