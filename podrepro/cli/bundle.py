"""podrepro bundle ARCH [-o FILE] -- test|run ARGS  and  podrepro replay FILE [--in DIR]."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from podrepro.cli.run import PASS, ArchArg


def register(app: typer.Typer) -> None:
    @app.command("bundle", context_settings=PASS)
    def bundle(ctx: typer.Context, arch: ArchArg,
               out: Annotated[Path | None, typer.Option("--output", "-o", help="The bundle file (default: ./podrepro-bundle-ARCH-COMMIT.tar).")] = None,
               image: Annotated[bool, typer.Option("--image/--no-image", help="Carry the image as an OCI archive, or only its recipe and digest (the replaying side builds it).")] = True,
               tree: Annotated[bool, typer.Option("--tree/--no-tree", help="Carry the tree's files, or only the commit and the diff (the replaying side needs a clone with the commit).")] = True) -> None:
        """Run a reproduction and write one file that replays it anywhere: podrepro bundle ARCH -- test|run [OPTIONS].

        The file holds the image, the commit and the working tree's changes (untracked files
        too), the command, the host facts (qemu, binfmt flags, kernel, CPU model) and the result
        (exit status, failing tests, log, cores). Values of environment variables passed through
        from your environment are never written into it. Exits 0 once the bundle is written."""
        from podrepro.bundle.command import bundle as make
        from podrepro.cli.output import confirm, echo, info
        from podrepro.errors import UsageError

        args = list(ctx.args)
        if args and args[0] == "--":
            args = args[1:]
        if not args:
            raise UsageError("bundle needs the command to reproduce", hint=f"podrepro bundle {arch} -- test [--filter P]")
        w = make(arch, args[0], args[1:], out=out, with_image=image, with_tree=tree, confirm=confirm,
                 say=lambda line: info(f"podrepro: {line}"), show=echo)
        what = ", ".join(x for x, on in (("the image", w.image), ("the tree", w.tree)) if on) or "the recipe only"
        echo(f"bundle: {w.path} ({w.size / 1e6:.1f} MB; {what}); the run: {w.outcome.describe()}")
        echo(f"replay it: podrepro replay {w.path.name}")

    @app.command("replay")
    def replay(file: Annotated[Path, typer.Argument(help="A bundle written by 'podrepro bundle'.", show_default=False)],
               into: Annotated[Path | None, typer.Option("--in", help="Rebuild the tree in DIR (new or empty), or replay in DIR as it is when it holds a tree (your checkout with a fix, say).")] = None,
               repo: Annotated[Path | None, typer.Option("--repo", help="A clone that has the bundle's commit (default: the repository you are in, if it has it).")] = None,
               bundled_tree: Annotated[bool, typer.Option("--bundled-tree", help="Use the bundled files even when a repository has the commit.")] = False,
               network: Annotated[bool, typer.Option("--network", help="Give the run a network if the bundle's had one (a bundle is someone else's: off unless you say so).")] = False,
               env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME to pass through from your environment, NAME=VALUE to set (the bundle's pass-throughs are dropped unless named here).")] = None,
               as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON (schema in the README).")] = False) -> None:
        """Replay a bundle: rebuild the tree, load the image (digest checked), rerun, compare.

        Says "reproduced" (the same failing tests, or exit status), "different" (what differs) or
        "not reproduced", with the host facts that differ side by side. Exits 0 when reproduced,
        1 otherwise."""
        from podrepro.bundle.replay import replay as run_replay
        from podrepro.cli.output import confirm, echo, emit_json, info, printable, table

        r = run_replay(file, into=into, repo=repo, bundled_tree=bundled_tree, network=network, env=env or [],
                       confirm=confirm, say=lambda line: info(printable(f"podrepro: {line}")),
                       show=(lambda line: None) if as_json else echo)
        if as_json:
            emit_json(r.to_json())
        else:
            echo(printable(f"replay: {r.verdict}: {r.why}"))
            if r.facts:
                echo("host facts that differ:")
                echo(table(("fact", "bundle", "here"), [list(f) for f in r.facts]))
            else:
                echo("host facts: the same as the bundle's (podrepro, qemu, binfmt flags, kernel, distro, CPU, podman, image)")
            echo(f"tree: {r.tree}; log: {r.log}")
        raise typer.Exit(0 if r.verdict == "reproduced" else 1)
