"""Run plans: ``podrepro run ARCH -- CMD`` without working out again what has not changed.

The podman argv of a run depends on a small, known set of inputs: the user and project config
files, which ancestor directory holds ``podrepro.toml`` (or ``.git``), the profile's
Containerfile, containers/storage's image list, the binfmt_misc handler, SELinux's mode, and a
few environment variables. The first ``run`` in a directory takes the slow path (config, recipe,
binfmt and image checks) and, just before it execs podman, saves the argv together with a
fingerprint of every one of those inputs. The next ``run ARCH -- CMD`` in the same directory
compares the fingerprint (a few dozen ``stat`` calls and small reads of /proc) and execs at once.
Any difference, a missing or unreadable plan file, or anything unexpected sends it down the slow
path, which decides afresh and saves a new plan: a plan can make a run faster, never different.

This module is the hot path of a reproduction loop: it imports nothing but os, sys and marshal.
The plan file lives in the user's own cache dir (it is trusted as much as the rest of it).
"""

from __future__ import annotations

import marshal
import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs this hot path ~5 ms
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path
    from typing import Any

    from podrepro.binfmt.analysis import ArchReport
    from podrepro.config import Config
    from podrepro.images.target import Target
    from podrepro.paths import Paths

    Dep = tuple[int, str, Any]

FORMAT = 1
MAX_PLANS = 32
FILE_NAME = "run-plans"
# environment variables whose values podrepro reads while deciding a run's argv (config, paths,
# storage location, git's idea of the top level); the plan records them all and any change misses
ENV_PREFIXES = ("PODREPRO_", "XDG_", "CONTAINERS_", "GIT_")
ENV_NAMES = ("HOME",)
DISABLE_VAR = "PODREPRO_NO_RUN_PLAN"

STAT, CONTENT, LISTING, EXISTS = 0, 1, 2, 3


def plans_file(environ: Mapping[str, str] | None = None) -> str:
    """``$PODREPRO_CACHE_DIR/run-plans``, else the platformdirs cache dir's (XDG) location."""
    env = os.environ if environ is None else environ
    d = env.get("PODREPRO_CACHE_DIR")
    if d:
        d = os.path.expanduser(d)
    else:
        base = env.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
        d = os.path.join(base, "podrepro")
    return os.path.join(d, FILE_NAME)


def _version() -> str:
    from podrepro import __version__

    return f"{FORMAT}:{__version__}:{sys.version_info[0]}.{sys.version_info[1]}"


def key(arch: str, cwd: str, stdin_tty: bool, stdout_tty: bool) -> str:
    return f"{arch}\0{cwd}\0{int(stdin_tty)}{int(stdout_tty)}"


def current_key(arch: str) -> str:
    return key(arch, os.getcwd(), os.isatty(0), os.isatty(1))


# ---- fingerprints ----------------------------------------------------------------------------


def stat_sig(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)


def content_sig(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(65536)
    except OSError:
        return None


def exists_sig(path: str) -> int | None:
    """What kind of thing is there (file, directory, ...), if anything: for paths whose mere
    presence matters (``.git``'s mtime changes with every git command)."""
    try:
        return os.stat(path).st_mode & 0o170000
    except OSError:
        return None


def listing_sig(path: str) -> tuple[str, ...] | None:
    try:
        return tuple(sorted(os.listdir(path)))
    except OSError:
        return None


_SIG = {STAT: stat_sig, CONTENT: content_sig, LISTING: listing_sig, EXISTS: exists_sig}


def fingerprint(kind: int, path: str) -> Dep:
    return (kind, path, _SIG[kind](path))


def env_snapshot(environ: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The environment a plan depends on. Of the variables passed through by name (``names``)
    only whether each is set: podman reads their values itself, so a secret's value never lands
    in the plans file."""
    wanted = set(names)
    out = {}
    for k, v in environ.items():
        if k.startswith(ENV_PREFIXES) or k in ENV_NAMES:
            out[k] = v
        elif k in wanted:
            out[k] = "(set)"
    return out


def stale(plan: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """Why ``plan`` no longer holds (the first input that changed), or None when it does."""
    if env_snapshot(environ, plan["env_names"]) != plan["env"]:
        return "environment"
    for kind, path, sig in plan["deps"]:
        if _SIG[kind](path) != sig:
            return str(path)
    return None


# ---- the plans file ----------------------------------------------------------------------------


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _load(path: str) -> dict[str, Any]:
    try:
        # a plan is exec'd: only from a file and a directory that nobody else can write (else the
        # slow path, which refuses such a cache dir with a clear error)
        if not _private(os.stat(os.path.dirname(path) or ".")):
            return {}
        with open(path, "rb") as f:
            if not _private(os.fstat(f.fileno())):
                return {}
            data = marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _version() or not isinstance(data.get("plans"), dict):
        return {}
    plans: dict[str, Any] = data["plans"]
    return plans


def save(arch: str, argv: Sequence[str], deps: Sequence[Dep], env_names: Iterable[str],
         touch: str | None = None, environ: Mapping[str, str] | None = None,
         watch: Sequence[tuple[str, str]] = ()) -> None:
    """Save the plan of the run about to exec (``argv`` without the user's command); ``watch``:
    (pattern, line) pairs when the run's output is to be read (``run_watched``)."""
    env = os.environ if environ is None else environ
    path = plans_file(env)
    names = tuple(sorted(set(env_names)))
    plan = {"argv": list(argv), "deps": tuple(deps), "env_names": names, "env": env_snapshot(env, names),
            "touch": touch, "ns": _now(), "watch": [list(w) for w in watch]}
    plans = _load(path)
    plans[current_key(arch)] = plan
    if len(plans) > MAX_PLANS:
        for k in sorted(plans, key=lambda k: plans[k].get("ns", 0))[: len(plans) - MAX_PLANS]:
            del plans[k]
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            marshal.dump({"version": _version(), "plans": plans}, f)
        os.replace(tmp, path)
    except (OSError, ValueError):
        # a plan is an optimisation: failing to save one never fails the run
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _now() -> int:
    import time

    return time.time_ns()


def lookup(arch: str, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The saved argv for a run of ``arch`` here and now, or None (then: the slow path)."""
    plan = _valid(arch, environ)
    return None if plan is None else plan["argv"]


def _valid(arch: str, environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    env = os.environ if environ is None else environ
    if env.get(DISABLE_VAR) or env.get("PODREPRO_VERBOSE"):
        return None
    try:
        plan = _load(plans_file(env)).get(current_key(arch))
        if not isinstance(plan, dict) or stale(plan, env) is not None:
            return None
        argv = plan["argv"]
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            return None
        watch = plan.get("watch") or []
        if not (isinstance(watch, list) and all(isinstance(w, list) and len(w) == 2 for w in watch)):
            return None
        if plan.get("touch"):
            os.utime(plan["touch"])  # the image's last-use stamp, as the slow path records it
    except Exception:  # whatever went wrong, the slow path knows better
        return None
    return plan


def try_exec(arch: str, command: Sequence[str]) -> None:
    """Exec the run from its plan; returns only when there is no valid plan. A plan that reads
    its output (``watch``) runs the command as a child instead and exits with its status."""
    plan = _valid(arch)
    if plan is None:
        return
    argv = [*plan["argv"], *command]
    if plan.get("watch"):
        sys.exit(run_watched(argv, plan["watch"], how="watch-plan"))
    if os.environ.get("PODREPRO_AUDIT_LOG"):
        from podrepro import audit

        audit.record(argv, "exec-plan")
    try:
        os.execvp(argv[0], argv)
    except OSError:
        return  # podman gone: the slow path reports it properly


def run_watched(argv: Sequence[str], watch: Sequence[Sequence[str]], *, how: str, keep_bytes: int = 4 << 20) -> int:
    """``argv`` with its stdout and stderr passed on as they come (to fd 1 and 2) and read: after
    a failure, the line of the first (pattern, line) in ``watch`` whose pattern its output
    matches (its first ``keep_bytes``), on stderr. For output that is not a terminal, where a run
    can name a known qemu-user artefact (``podrepro.fidelity``) as ``test`` does. Like
    ``engine.process.foreground``: SIGTERM and SIGHUP are passed on, Ctrl-C is the child's."""
    import re
    import signal
    import subprocess
    import threading

    if os.environ.get("PODREPRO_AUDIT_LOG"):
        from podrepro import audit

        audit.record(argv, how)
    try:
        p = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        os.write(2, f"error: cannot run {argv[0]}: {e.strerror}\n".encode())
        return 127
    kept: list[bytes] = []
    room = [keep_bytes]
    lock = threading.Lock()

    def pump(src: Any, fd: int) -> None:
        for chunk in iter(lambda: src.read1(65536), b""):
            try:
                os.write(fd, chunk)
            except OSError:
                pass
            with lock:
                if room[0] > 0:
                    kept.append(chunk[:room[0]])
                    room[0] -= len(chunk)

    pumps = [threading.Thread(target=pump, args=(src, fd), daemon=True) for src, fd in ((p.stdout, 1), (p.stderr, 2))]
    for t in pumps:
        t.start()

    def forward(signum: int, frame: object) -> None:
        if signum != signal.SIGINT:
            try:
                p.send_signal(signum)
            except OSError:
                pass

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        rc = p.wait()
        for t in pumps:
            t.join()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    rc = 128 - rc if rc < 0 else rc
    if rc != 0:
        text = b"".join(kept).decode(errors="replace")
        for pattern, line in watch:
            if re.search(pattern, text):
                os.write(2, f"podrepro: {line}\n".encode())
                break
    return rc


def deps_for(cfg: Config, t: Target, report: ArchReport | None, storage: list[Path], paths: Paths,
             ccache_dir: Path | None) -> list[Any]:
    """Every input a ``run`` argv was decided from, fingerprinted (``workflows.reproduce`` saves
    a plan with them)."""
    from pathlib import Path

    from podrepro import config
    from podrepro.binfmt.state import binfmt_dir

    stat, content, listing, exists = STAT, CONTENT, LISTING, EXISTS
    # podrepro itself: an upgrade or an edit of any module may decide differently
    deps: list[tuple[int, Path]] = [(stat, m) for m in sorted(Path(__file__).resolve().parent.rglob("*.py"))]
    deps += [(stat, cfg.user_file),
             *((exists, p) for p in config.discovery_paths(Path.cwd(), cfg.project_file))]
    if cfg.project_file is not None:
        deps.append((stat, cfg.project_file))
    cf = t.profile.containerfile_path()
    if cf is not None:
        deps.append((stat, cf))
    deps += [(stat, f) for f in storage]
    if ccache_dir is not None:
        deps += [(exists, ccache_dir), (exists, paths.cache / "CACHEDIR.TAG")]
    deps.append((content, Path("/sys/fs/selinux/enforce")))
    deps.append((stat, paths.state / "trusted.json"))  # an approval changes what the config says
    # the host's apt sources: with mirror = auto they name the mirror, which is part of the tag
    deps += [(stat, Path("/etc/apt/sources.list")), (listing, Path("/etc/apt/sources.list.d"))]
    if report is not None and report.entry is not None:
        d = Path(binfmt_dir())
        deps += [(listing, d), (content, d / "status"), *((content, d / e.name) for e in report.matching)]
        deps.append((stat, Path(report.entry.interpreter)))
    return [fingerprint(kind, str(p)) for kind, p in deps]
