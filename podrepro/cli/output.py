"""The one place that prints results and errors, draws progress and asks questions."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def printable(text: str) -> str:
    """Control and format characters escaped (``\\x1b``, ``\\u202e``): values from a project file
    are someone else's text, and an escape sequence or a bidi override in one could hide or fake
    rows of a table on the user's terminal."""
    import unicodedata

    if text.isprintable():
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[printable(str(c)) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for r in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def echo(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def info(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def warning(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")
    sys.stderr.flush()


def _one_line(text: str) -> str:
    # some messages embed a library's multi-line text (tarfile's ReadError lists every method)
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def error(message: str, hint: str | None = None) -> None:
    line = f"error: {_one_line(message)}"
    if hint:
        line += f" (hint: {_one_line(hint)})"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def confirm(question: str) -> bool:
    """A yes/no question on the terminal (``reporting.Confirm``); no is the default."""
    import typer

    return bool(typer.confirm(question, default=False, err=True))


class Progress:
    """The CLI's ``reporting.Reporter``: stage + elapsed time on stderr. A TTY gets one live line;
    anything else gets timestamped lines. Warnings and ``-v`` output go to stderr in every mode.
    A stage's status (``configuring 37/95: ca-certificates``) replaces its detail on the live
    line; in a log it is a line of its own, at most one every PLAIN_EVERY seconds, plus each
    status that starts a new kind of work (its text before the first digit changes)."""

    PLAIN_EVERY = 10.0

    def __init__(self, mode: str = "auto", stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = mode == "auto" and self.stream.isatty()
        self.quiet = mode == "none"
        self.t0 = time.monotonic()
        self.stage = ""
        self._stage_name = ""
        self._last_plain = -1e9
        self._last_kind = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self.t0)
        return f"{s // 60:02d}:{s % 60:02d}"

    def step(self, stage: str, detail: str = "") -> None:
        self._stage_name = stage
        self._last_kind = ""
        self._show(f"{stage}: {detail}" if detail else stage)

    def status(self, detail: str) -> None:
        text = f"{self._stage_name}: {detail}" if self._stage_name else detail
        if self.live or self.quiet:
            self._show(text)
            return
        kind = re.split(r"\d", detail, maxsplit=1)[0]
        now = time.monotonic()
        if kind != self._last_kind or now - self._last_plain >= self.PLAIN_EVERY:
            self._last_kind = kind
            self._show(text)

    def _show(self, text: str) -> None:
        self.stage = text
        if self.quiet:
            return
        if self.live:
            self._redraw()
            if self._thread is None:
                self._thread = threading.Thread(target=self._tick, daemon=True)
                self._thread.start()
        else:
            self._last_plain = time.monotonic()
            ts = time.strftime("%H:%M:%S")
            self.stream.write(f"{ts} [{self._elapsed()}] {self.stage}\n")
            self.stream.flush()

    def _redraw(self) -> None:
        import shutil

        # cut to the terminal's width: a wrapped line would not be erased by the next redraw
        line = f"[{self._elapsed()}] {self.stage}"[: max(20, shutil.get_terminal_size().columns - 1)]
        self.stream.write(f"\r\x1b[K{line}")
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self._redraw()

    def done(self, message: str) -> None:
        self._stop.set()
        if self.quiet:
            return
        if self.live:
            self.stream.write(f"\r\x1b[K[{self._elapsed()}] {message}\n")
        else:
            self.stream.write(f"{time.strftime('%H:%M:%S')} [{self._elapsed()}] {message}\n")
        self.stream.flush()

    def warn(self, text: str) -> None:
        sys.stderr.write(f"warning: {text}\n")
        sys.stderr.flush()

    def output(self, data: bytes) -> None:
        sys.stderr.buffer.write(data)
        sys.stderr.flush()
