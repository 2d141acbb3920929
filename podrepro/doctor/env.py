"""What doctor reads: everything a check looks at (paths, the user, PATH lookups, the subprocess
runner) comes from a ``DoctorEnv``, so unit tests run every check against fakes. External
commands (``podman info``, the probe binaries) go through ``podrepro.engine.process``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from podrepro.engine.info import PodmanInfo

Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


def _default_run(argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    from podrepro.engine import process

    return process.run(argv, **kw)


def _default_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


@dataclass(frozen=True)
class DoctorEnv:
    """Everything the checks look at. ``root`` prefixes host files (tests point it at a tree)."""

    binfmt_dir: str
    euid: int
    user: str
    home: str
    kernel_release: str
    root: str = "/"
    config_home: str | None = None            # XDG_CONFIG_HOME; default ~/.config
    mountinfo: str = "/proc/self/mountinfo"
    which: Callable[[str], str | None] = _default_which
    run: Runner = _default_run
    probe: bool = True                         # exec the tiny probe binaries
    probe_dir: str | None = None               # where to write them (default: a temp dir)

    def path(self, p: str) -> str:
        return os.path.join(self.root, p.lstrip("/"))

    @property
    def containers_dir(self) -> str:
        return os.path.join(self.config_home or os.path.join(self.home, ".config"), "containers")

    @classmethod
    def from_host(cls) -> DoctorEnv:
        import getpass

        from podrepro.binfmt.state import binfmt_dir

        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.geteuid())
        return cls(
            binfmt_dir=binfmt_dir(), euid=os.geteuid(), user=user,
            home=os.path.expanduser("~"), kernel_release=os.uname().release,
            config_home=os.environ.get("XDG_CONFIG_HOME") or None,
        )


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_toml(path: str) -> dict[str, Any]:
    import tomllib

    text = read_text(path)
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def cgroup_version(mountinfo_text: str | None) -> str | None:
    """"v2" (pure cgroup2), "hybrid" (v1 + cgroup2 at unified), "v1", or None when unknown."""
    if not mountinfo_text:
        return None
    types: dict[str, str] = {}
    for line in mountinfo_text.splitlines():
        pre, sep, post = line.partition(" - ")
        fields = pre.split()
        if not sep or len(fields) < 5:
            continue
        types[fields[4]] = post.split()[0] if post.split() else ""
    top = types.get("/sys/fs/cgroup")
    if top == "cgroup2":
        return "v2"
    if top is None:
        return None
    return "hybrid" if types.get("/sys/fs/cgroup/unified") == "cgroup2" else "v1"


def subid_count(text: str | None, user: str, uid: int) -> int:
    """Total size of the ranges /etc/subuid (or subgid) gives ``user`` (by name or number)."""
    total = 0
    for line in (text or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (user, str(uid)):
            try:
                total += int(parts[2])
            except ValueError:
                continue
    return total


def podman_info(env: DoctorEnv) -> PodmanInfo:
    from podrepro.engine import info

    return info.podman_info(env.which, env.run)
