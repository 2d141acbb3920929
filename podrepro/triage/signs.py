"""What a run's output says about who failed: qemu-user's own messages, told from the program's.

qemu-user prints a few lines of its own on stderr. ``qemu: uncaught target signal N (NAME) -
core dumped`` means the *program* got a fatal signal (a NULL dereference under qemu looks the
same as on a board): the program's own. The others mean the emulator itself is in trouble:
``QEMU internal SIGSEGV``/``SIGBUS`` (qemu crashed while translating or running the code),
``Unsupported syscall: N`` and ``unhandled CPU exception`` (qemu met something it does not
emulate), ``qemu: unhandled trap`` and assertion failures in qemu's own sources.
"""

from __future__ import annotations

import re
import signal as _signal
from dataclasses import dataclass

EMULATOR = re.compile(
    r"QEMU internal SIG[A-Z]+.*|Unsupported syscall: ?\d+.*|unhandled CPU exception.*|qemu: unhandled trap.*"
    r"|qemu-\w+(-static)?: [^\n]*(Assertion|assertion)[^\n]*|\*\*\s*ERROR:\S*(tcg|accel|linux-user)[^\n]*")
TARGET_SIGNAL = re.compile(r"qemu: uncaught target signal (\d+) \(([^)]*)\)")
# podman's own exit codes, not a signal's 128+N
ENGINE_CODES = (125, 126, 127)


@dataclass(frozen=True)
class Signs:
    emulator: tuple[str, ...]      # qemu's own trouble, one line each (first few)
    target_signal: str | None      # the program's fatal signal, as qemu named it


def read(output: str) -> Signs:
    emu = tuple(dict.fromkeys(m.group(0).strip()[:200] for m in EMULATOR.finditer(output)))[:5]
    sig = TARGET_SIGNAL.search(output)
    return Signs(emu, sig.group(2) if sig else None)


def exit_signal(returncode: int) -> str | None:
    """The signal a run died of, from its exit status (podman's 128+N; a negative code from
    Python), or None."""
    n = -returncode if returncode < 0 else (returncode - 128 if returncode > 128 and returncode not in ENGINE_CODES else 0)
    if n <= 0:
        return None
    try:
        return _signal.Signals(n).name
    except ValueError:
        return f"signal {n}"
