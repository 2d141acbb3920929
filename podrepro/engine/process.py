"""The one subprocess chokepoint.

Every external command podrepro runs goes through ``run``/``popen``/``exec_``: the full argv is
logged (``-v`` prints it), nothing goes through a shell, and the caller decides what an exit code
means. ``PODREPRO_AUDIT_LOG`` records each one (see ``podrepro.audit``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, NoReturn

from podrepro import audit
from podrepro.errors import EXIT_NOT_FOUND, PodreproError

log = logging.getLogger("podrepro.process")


def _audit(argv: Sequence[str], how: str) -> None:
    log.info("$ %s", shlex.join(argv))
    audit.record(argv, how)


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
        raise PodreproError(
            f"{argv[0]} failed (exit {cp.returncode}): {last_line(cp.stderr or b'')}".rstrip(": "),
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


def foreground(argv: Sequence[str]) -> int:
    """Run argv on this terminal (stdio inherited) and return its exit status, 128+N for a
    signal. While it runs, Ctrl-C and SIGTERM are the child's business (podman passes them into
    the container); this process waits for the child's own exit instead of dying first."""
    import signal

    _audit(argv, "foreground")
    try:
        p = subprocess.Popen(list(argv))
    except FileNotFoundError:
        raise _missing(argv) from None

    def forward(signum: int, frame: object) -> None:
        if signum != signal.SIGINT:  # the terminal sends SIGINT to the child's group itself
            with contextlib.suppress(OSError):
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        rc = p.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 128 - rc if rc < 0 else rc


def last_line(output: bytes | str, default: str = "", *, errors_first: bool = False) -> str:
    """The line of a command's output that says what went wrong: its last non-empty line (with
    ``errors_first``, the last one that looks like an error, if any), cut at 300 characters;
    ``default`` when there is none."""
    text = output.decode(errors="replace") if isinstance(output, bytes) else output
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if errors_first:
        for ln in reversed(lines):
            low = ln.lower()
            if low.startswith(("e:", "error", "w:")) or "error" in low or "failed" in low:
                return ln[:300]
    return lines[-1][:300] if lines else default


def owner_gone(rest: str) -> bool:
    """podrepro names its temporary things ``<prefix><pid>-<random>``; given what follows the
    prefix: True when that podrepro process is gone (the thing is a leftover), False while it
    runs or when there is no pid."""
    try:
        os.kill(int(rest.split("-")[0]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, OverflowError, PermissionError):
        return False
    return False


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files created meanwhile (by us or a child started meanwhile) are the user's alone (umask
    077): a root filesystem export or an image archive being written must not be readable by
    other local users."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def current_umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def boot_ticks() -> int:
    """Now, in the clock ticks since boot that /proc/PID/stat's starttime uses."""
    with open("/proc/uptime") as f:
        return int(float(f.read().split()[0]) * os.sysconf("SC_CLK_TCK"))


_KEEP = frozenset({"conmon", "catatonit", "slirp4netns", "pasta", "pasta.avx2", "podman", "fuse-overlayfs",
                   "rootlessport", "aardvark-dns", "netavark"})


def kill_orphaned_build_steps(since_ticks: int) -> list[int]:
    """Kill RUN-step processes that an interrupted ``podman build`` left running.

    buildah does not stop a RUN step's container when it is interrupted: the step's processes
    are reparented to init and keep running (and keep the layer's mount busy). They are
    recognisable: ours, parent 1, started after the build began, in a mount namespace that is
    neither ours nor the rootless pause process's, and not podman's own helpers. Containers of
    ``podman run`` are children of conmon, so they are never touched."""
    uid = os.getuid()
    try:
        own_mnt = os.readlink("/proc/self/ns/mnt")
    except OSError:
        return []
    pause_mnt = set()
    victims: list[int] = []
    procs = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{d}")
            if st.st_uid != uid:
                continue
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            ppid, start = int(fields[1]), int(fields[19])
            mnt = os.readlink(f"/proc/{d}/ns/mnt")
        except (OSError, ValueError, IndexError):
            continue
        if comm == "catatonit":
            pause_mnt.add(mnt)
        procs.append((int(d), comm, ppid, start, mnt))
    for pid, comm, ppid, start, mnt in procs:
        if ppid == 1 and start >= since_ticks and mnt != own_mnt and mnt not in pause_mnt and comm not in _KEEP:
            victims.append(pid)
    import signal

    for pid in victims:
        log.info("killing orphaned build step %d", pid)
        try:
            os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return victims
