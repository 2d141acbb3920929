"""The one subprocess chokepoint.

Every external command podrepro runs goes through ``run``/``popen``/``exec_``: the full argv is
logged (``-v`` prints it), nothing goes through a shell, and the caller decides what an exit code
means. ``PODREPRO_AUDIT_LOG`` (a file path) appends one JSON line per command with the argv and
the effective uid, which the privilege-audit test reads.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO, Any, NoReturn

from podrepro.errors import EXIT_NOT_FOUND, PodreproError

log = logging.getLogger("podrepro.process")


def _audit(argv: Sequence[str], how: str) -> None:
    log.info("$ %s", shlex.join(argv))
    path = os.environ.get("PODREPRO_AUDIT_LOG")
    if path:
        rec = {"argv": list(argv), "euid": os.geteuid(), "how": how, "pid": os.getpid()}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")


def _env(extra: Mapping[str, str] | None) -> dict[str, str] | None:
    if not extra:
        return None
    env = dict(os.environ)
    env.update(extra)
    return env


def _missing(argv: Sequence[str]) -> PodreproError:
    return PodreproError(
        f"{argv[0]}: command not found",
        hint="run 'podrepro doctor' to see what is missing and how to install it",
        exit_code=EXIT_NOT_FOUND,
    )


def run(
    argv: Sequence[str],
    *,
    check: bool = False,
    capture: bool = True,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv to completion. ``check`` raises PodreproError with the stderr tail."""
    _audit(argv, "run")
    try:
        cp = subprocess.run(
            list(argv),
            input=input,
            stdout=stdout if stdout is not None else (subprocess.PIPE if capture else None),
            stderr=stderr if stderr is not None else (subprocess.PIPE if capture else None),
            env=_env(env),
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        raise _missing(argv) from None
    if check and cp.returncode != 0:
        tail = (cp.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise PodreproError(
            f"{argv[0]} failed (exit {cp.returncode}): {tail[0]}".rstrip(": "),
            hint="run with -v to see the full command and its output",
        )
    return cp


def popen(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    **kw: Any,
) -> subprocess.Popen[bytes]:
    _audit(argv, "popen")
    try:
        return subprocess.Popen(list(argv), env=_env(env), **kw)
    except FileNotFoundError:
        raise _missing(argv) from None


def exec_(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> NoReturn:
    """Replace this process (TTY, signals, job control and exit code stay native)."""
    _audit(argv, "exec")
    logging.shutdown()
    try:
        if env:
            os.execvpe(argv[0], list(argv), _env(env) or {})
        os.execvp(argv[0], list(argv))
    except FileNotFoundError:
        raise _missing(argv) from None


def which(name: str) -> str | None:
    import shutil

    return shutil.which(name)
