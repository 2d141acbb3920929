"""The one place that prints results and errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


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


def _one_line(text: str) -> str:
    # some messages embed a library's multi-line text (tarfile's ReadError lists every method)
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def error(message: str, hint: str | None = None) -> None:
    line = f"error: {_one_line(message)}"
    if hint:
        line += f" (hint: {_one_line(hint)})"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
