"""podrepro init — write a commented podrepro.toml for the project in the current directory."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init_cmd(
        build_system: Annotated[str | None, typer.Option("--build-system", help="cmake, meson, autotools or make (default: detected).")] = None,
    ) -> None:
        """Write a commented podrepro.toml here, for the build system detected (never overwrites)."""
        from pathlib import Path

        from podrepro import init
        from podrepro.cli.output import echo

        path, kind, how = init.write(Path.cwd(), build_system)
        why = {"given": "", "detected": " (detected)", "fallback": " (nothing detected: the CMake template)"}[how]
        echo(f"wrote {path} for {kind}{why}")
        if init.asks_for_packages(kind):
            echo("its packages count once you approve the file: podrepro trust")
