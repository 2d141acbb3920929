"""How code below the CLI reaches the user: through what the CLI passes in.

Nothing below ``podrepro.cli`` prints, prompts or draws progress (tests/unit/test_architecture.py
checks it). A long operation reports its stages to a ``Reporter``; a one-line note goes to a
``Notify``; a yes/no question to a ``Confirm`` (None where nobody can answer: stdin is not a
terminal). The CLI's implementations live in ``podrepro.cli.output``; ``Silent`` is the reporter
of callers that show nothing (tests, scripts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Notify = Callable[[str], None]
Confirm = Callable[[str], bool]


class Reporter(Protocol):
    def step(self, stage: str, detail: str = "") -> None:
        """A stage of a long operation begins (``detail``: what it works on)."""

    def status(self, detail: str) -> None:
        """Where the current stage is now (``configuring 37/95: ca-certificates``): a live
        line may show each one, a log only some."""

    def done(self, message: str) -> None:
        """The operation ended; ``message`` says how."""

    def warn(self, text: str) -> None:
        """Something the user should know; the operation goes on."""

    def output(self, data: bytes) -> None:
        """A line of a command's own output, passed on as it is (``-v``)."""


# the progress setting ("auto", "plain", "none") -> the reporter that shows it
ReporterFor = Callable[[str], Reporter]


class Silent:
    """A Reporter that shows nothing."""

    def step(self, stage: str, detail: str = "") -> None:
        pass

    def status(self, detail: str) -> None:
        pass

    def done(self, message: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass

    def output(self, data: bytes) -> None:
        pass
