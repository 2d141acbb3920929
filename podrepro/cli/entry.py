"""The console script. ``podrepro run ARCH -- CMD...`` with no options skips the CLI framework:
it is the hot path of a reproduction loop, and typer/click's import and parsing would add more
than podrepro's whole own work; a saved run plan (``runplan``) skips even podrepro's own checks
when none of their inputs changed. Everything else goes through the typer app."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # not for several architectures ("arm,mips", "all": a matrix run, through the typer app)
    if len(args) >= 4 and args[0] == "run" and args[2] == "--" and not args[1].startswith("-") \
            and "," not in args[1] and args[1] != "all":
        if argv is None:  # a real process (tests call main() in-process with argv)
            from podrepro import runplan

            runplan.try_exec(args[1], args[3:])  # returns only without a valid plan
        sys.exit(_fast_run(args[1], args[3:]))
    from podrepro.cli.main import run_cli

    sys.exit(run_cli(argv))


def _fast_run(arch: str, command: list[str]) -> int:
    """Exactly what ``podrepro run ARCH -- CMD`` means through typer, minus the parsing."""
    from podrepro.cli.output import Progress, confirm, error, info
    from podrepro.errors import EXIT_INTERRUPTED, PodreproError
    from podrepro.workflows import reproduce

    try:  # it execs podman, or (a remote engine, output read for artefacts) returns the exit status
        return reproduce("run", arch, command, save_plan=True, confirm=confirm, progress=Progress,
                         notify=lambda line: info(f"podrepro: {line}"))
    except PodreproError as e:
        error(e.message, e.hint)
        return e.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 1
