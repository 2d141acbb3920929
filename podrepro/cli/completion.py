"""podrepro completion SHELL — print the shell completion script (bash, zsh, fish)."""

from __future__ import annotations

from typing import Annotated

import typer

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_PODREPRO_COMPLETE"


def register(app: typer.Typer) -> None:
    @app.command("completion")
    def completion(
        shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", show_default=False)],
    ) -> None:
        """Print the completion script for SHELL (see the README for where it goes)."""
        from click.shell_completion import get_completion_class

        from podrepro.cli.main import _click_command, completion_classes
        from podrepro.cli.output import echo
        from podrepro.errors import UsageError

        completion_classes()
        cls = get_completion_class(shell) if shell in SHELLS else None
        if cls is None:
            raise UsageError(f"no completion for shell {shell!r}", hint=f"one of: {', '.join(SHELLS)}")
        echo(cls(_click_command(), {}, "podrepro", COMPLETE_VAR).source())
