"""CLI entry point. Only ``main`` turns errors into one line on stderr and an exit code."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

# typer < 0.25 (pinned: newer typer imports pydantic on every parse) uses click; newer typer
# vendors it as typer._click
try:
    from click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - typer >= 0.25
    from typer._click.exceptions import ClickException, UsageError  # type: ignore[import-not-found,no-redef,unused-ignore]

from podrepro import __version__
from podrepro.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, PodreproError

app = typer.Typer(
    name="podrepro",
    help="Reproduce foreign-architecture failures (32-bit ARM, MIPS, ...) in rootless, emulated podman containers.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"podrepro {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log every external command's argv (and stream build logs).")] = False,
) -> None:
    if verbose or os.environ.get("PODREPRO_VERBOSE"):
        os.environ["PODREPRO_VERBOSE"] = "1"  # children (and the private service) inherit it
        logging.basicConfig(level=logging.INFO, format="+ %(message)s", stream=sys.stderr)


def _register() -> None:
    from podrepro.cli import (
        arches,
        binfmt,
        bisect,
        bundle,
        completion,
        config,
        debug,
        doctor,
        image,
        init,
        run,
        triage,
        trust,
    )

    arches.register(app)
    config.register(app)
    doctor.register(app)
    binfmt.register(app)
    image.register(app)
    run.register(app)
    debug.register(app)
    triage.register(app)
    bisect.register(app)
    bundle.register(app)
    trust.register(app)
    completion.register(app)
    init.register(app)


_register()


def _one_line_usage(e: UsageError) -> str:
    msg = e.format_message().strip().splitlines()[0] if e.format_message().strip() else "usage error"
    cmd = e.ctx.command_path if e.ctx is not None else "podrepro"
    return f"{msg[0].lower() + msg[1:] if msg else msg} (see '{cmd} --help')"


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_cli(argv))


_command: TyperGroup | None = None


def _click_command() -> TyperGroup:
    """The click command, built once per process: ``app()`` rebuilds it from the signatures on
    every call (~0.2 s), which in-process callers (the fuzz tests) would pay each time."""
    global _command
    if _command is None:
        cmd = typer.main.get_command(app)
        assert isinstance(cmd, TyperGroup)
        _command = cmd
    return _command


def completion_classes() -> None:
    """typer's shell-completion classes, whose scripts speak typer's protocol (``complete_bash``):
    registered only when completing or printing a script, so other commands do not pay for it."""
    try:
        from typer._completion_classes import completion_init
    except ImportError:  # pragma: no cover - a typer without them: click's own classes
        return
    completion_init()


def run_cli(argv: list[str] | None = None, prog: str = "podrepro") -> int:
    """Run the CLI in-process and return the exit code (used by main and by the fuzz tests)."""
    from podrepro.cli.output import error

    if os.environ.get("_PODREPRO_COMPLETE"):  # a completion request from the shell script
        completion_classes()

    try:
        rv = _click_command().main(args=argv, prog_name=prog, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except PodreproError as e:
        error(e.message, e.hint)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        error("interrupted")
        return EXIT_INTERRUPTED
    except UsageError as e:
        error(_one_line_usage(e))
        return EXIT_USAGE
    except ClickException as e:
        error(e.format_message().splitlines()[0] if e.format_message() else "error")
        return EXIT_ERROR
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as e:
        # a path the user gave that the OS refuses (name too long, symlink loop, no permission)
        name = str(e.filename) if e.filename is not None else ""
        what = name[:120] + "..." if len(name) > 120 else name
        error(f"{what}: {e.strerror or e}" if what else str(e.strerror or e))
        return EXIT_ERROR
