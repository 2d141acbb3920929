"""Matrix runs in the CLI: run/build/test on several architectures (``podrepro.matrix``), the
live status lines while they run, the summary table or JSON after."""

from __future__ import annotations

from typing import Any


def run_matrix(mode: str, spec: str, extra: list[str], opts: dict[str, Any]) -> int:
    """One child podrepro per architecture; the summary table (or JSON); 0 when all passed."""
    import json
    import sys

    from podrepro.cli.output import confirm, echo, info
    from podrepro.errors import UsageError
    from podrepro.matrix import plan, report
    from podrepro.matrix.command import matrix

    if opts.get("image"):
        raise UsageError("--image names one architecture's image: not with several", hint="leave --image out")
    params = {**opts, "cross": opts.get("cross"), "native_harness": opts.get("native_harness")}
    view = StatusView(sys.stderr.isatty(), sys.stderr)  # the CLI's own stream: never closed here
    jobs = matrix(mode, spec, plan.child_options(params), extra, jobs=opts.get("jobs"),
                  junit_file=opts.get("junit"), profile=opts.get("profile"), src=opts.get("src"),
                  confirm=confirm, show=view, notify=lambda line: info(f"podrepro: {line}"),
                  connection=opts.get("connection"))
    if opts.get("as_json"):
        echo(json.dumps(report.to_json(mode, jobs), indent=2))
    else:
        for line in report.table(jobs):
            echo(line)
    return report.exit_code(jobs)


class StatusView:
    """While a matrix runs: on a terminal, one line per architecture redrawn in place; otherwise a
    plain line whenever an architecture's phase changes."""

    def __init__(self, tty: bool, stream: Any) -> None:
        self.tty, self.stream, self.drawn = tty, stream, 0
        self.last: dict[str, str] = {}

    def __call__(self, jobs: list[Any]) -> None:
        if self.tty:
            up = f"\x1b[{self.drawn}A" if self.drawn else ""
            self.stream.write(up + "".join(f"\x1b[2K{j.status()}\n" for j in jobs))
            self.drawn = len(jobs)
        else:
            for j in jobs:
                if self.last.get(j.arch.alias) != j.phase and j.phase != "waiting":
                    self.last[j.arch.alias] = j.phase
                    self.stream.write(f"podrepro: {j.status()}\n")
        self.stream.flush()
