"""podrepro trust — approve this project's podrepro.toml for what widens a container's view."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("trust")
    def trust_cmd(
        show: Annotated[bool, typer.Option("--show", help="Only say what the file asks for and whether it is approved.")] = False,
        revoke: Annotated[bool, typer.Option("--revoke", help="Withdraw the approval of this project's file.")] = False,
    ) -> None:
        """Approve this project's podrepro.toml, as it is now, for host variables passed through by
        name, network, mirror, a profile's Containerfile and packages (any edit needs a new approval)."""
        from pathlib import Path

        from podrepro import config, trust
        from podrepro.cli.output import echo
        from podrepro.errors import UsageError
        from podrepro.paths import get_paths

        _, pfile = config.find_project_root(Path.cwd())
        if pfile is None:
            raise UsageError("no podrepro.toml here (looked up to the git top level)",
                             hint="run 'podrepro trust' in the project whose file you want to approve")
        paths = get_paths()
        paths.check_private()
        cfg = config.load_toml(pfile, str(pfile))
        values = config.check_project_table(cfg[0], cfg[1], str(pfile))
        profiles = config.check_project_profiles(cfg[0], cfg[1], str(pfile), pfile.parent)
        asked = trust.requests(values, profiles)
        trusted = trust.is_trusted(paths, pfile)
        what = "; ".join(str(r) for r in asked) or "nothing that needs approval"
        if revoke:
            gone = trust.revoke(paths, pfile)
            echo(f"{pfile}: approval withdrawn" if gone else f"{pfile}: was not approved")
            return
        if show:
            echo(f"{pfile} asks for {what}; {'approved' if trusted else 'not approved'}")
            return
        digest = trust.approve(paths, pfile)
        echo(f"approved {pfile} (sha256 {digest[:12]}): {what}")
