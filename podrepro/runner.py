"""Running commands in the emulated container: the podman argv for run/shell/build/test.

Pure functions decide what a run mounts, sets and runs, and hand it to the engine's one
``podman run`` builder (``engine.commands.run_argv``; unit-tested element by element);
``workflows`` execs the argv. The project root is mounted at the same absolute path inside, so
paths in compiler errors and logs match the host; ``--userns=keep-id`` makes files created
inside belong to the user on the host.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from podrepro.arches import Arch
from podrepro.errors import UsageError
from podrepro.profiles import Profile

CCACHE_MOUNT = "/var/cache/podrepro-ccache"
TREE_SOURCE = "/run/podrepro-tree"   # --tmpfs-tree: the project, read-only, copied from here
# --tmpfs-tree's command: copy the project's entries into the tmpfs at its own path (each one:
# "cp -a DIR/." would also copy the times of the tmpfs's root, which is not ours), then run there
TMPFS_TREE_SH = ('for f in "$0"/* "$0"/.[!.]* "$0"/..?*; do { [ -e "$f" ] || [ -L "$f" ]; } || continue; '
                 'cp -a "$f" "$1"/ || exit 1; done; cd "$2" && shift 2 && exec "$@"')
HOME_IN_CONTAINER = "/tmp/podrepro-home"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class RunSpec:
    arch: Arch
    image: str
    command: tuple[str, ...]
    project_root: Path
    workdir: Path
    network: str = "none"              # "none" | "private" | "host" (host: CLI flag only)
    env: Mapping[str, str | None] = field(default_factory=dict)   # None: passed through by name
    tty: bool = False
    interactive: bool = False
    ccache_dir: Path | None = None
    cpu: str = ""
    selinux: bool = False
    name: str | None = None
    extra_args: tuple[str, ...] = ()   # podman options before the image (privbinfmt.prepare)
    git_writable: bool = False         # --writable-git: the project's .git mounted read-write too
    tmpfs_tree: bool = False           # --tmpfs-tree: run on a copy of the project in a tmpfs
    remote: bool = False               # the paths are another host's (--connection): nothing to look at here


def parse_env(items: Sequence[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    """``NAME=VALUE`` sets; bare ``NAME`` passes the host's value through (skipped if unset): it
    maps to None, which becomes podman's ``--env NAME``, so podman takes the value from its own
    environment and it never appears in an argv (``ps``), a log or a saved run plan."""
    out: dict[str, str | None] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not ENV_NAME.fullmatch(name):
            raise UsageError(f"invalid environment variable name {name!r} in {item!r}",
                             hint="use NAME=VALUE or NAME")
        if sep:
            out[name] = value
        elif name in environ:
            out[name] = None
    return out


def substitute(args: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Replace ``{placeholder}`` in each element; unknown braces are left alone (data, not code)."""
    out = []
    for a in args:
        for k, v in values.items():
            a = a.replace("{" + k + "}", v)
        out.append(a)
    return out


def placeholders(arch: Arch, profile: Profile, root: Path, multiplier: float) -> dict[str, str]:
    vals = {"arch": arch.alias, "debian_arch": arch.debian, "src": str(root),
            "jobs": str(os.cpu_count() or 2), "timeout_multiplier": f"{multiplier:g}",
            "run": ""}  # "-N" in the N-th run of a --repeat series (results files of their own)
    vals["build_dir"] = substitute([profile.build_dir], vals)[0]
    return vals


def test_command(profile: Profile, vals: Mapping[str, str], filt: str | None, extra: Sequence[str],
                 multiplier: float) -> list[str]:
    """The profile's test argv + the filter + extra args, each as its own argv element."""
    if not profile.test:
        raise UsageError(f"profile {profile.name!r} has no test command", hint="set [profile.NAME] test in podrepro.toml")
    argv = substitute(profile.test, vals)
    if profile.timeout_option:
        argv += [profile.timeout_option, str(int(profile.timeout_base * multiplier))]
    if filt is not None:
        if profile.filter_option and profile.filter_option.endswith("="):
            argv.append(profile.filter_option + filt)  # TESTS=PATTERN: one element
        elif profile.filter_option:
            argv += [profile.filter_option, filt]
        else:
            argv.append(filt)
    argv += list(extra)
    return argv


def build_command(profile: Profile, vals: Mapping[str, str], extra: Sequence[str]) -> list[str]:
    if not profile.build:
        raise UsageError(f"profile {profile.name!r} has no build command", hint="set [profile.NAME] build in podrepro.toml")
    return substitute(profile.build, vals) + list(extra)


def container_env(spec: RunSpec, profile: Profile | None, vals: Mapping[str, str],
                  multiplier: float) -> dict[str, str | None]:
    # what a test suite may read to skip what cannot work under emulation (documented)
    env: dict[str, str | None] = {"HOME": HOME_IN_CONTAINER, "PODREPRO_ARCH": spec.arch.alias,
                                  "PODREPRO_EMULATED": "1" if spec.arch.emulated else "0",
                                  "PODREPRO_TIMEOUT_MULTIPLIER": f"{multiplier:g}"}
    path = BASE_PATH
    if spec.ccache_dir is not None:
        # Debian's ccache masquerade directory: gcc/g++/cc found through PATH go through ccache
        path = "/usr/lib/ccache:" + path
        env["CCACHE_DIR"] = CCACHE_MOUNT
        env["CCACHE_BASEDIR"] = str(spec.project_root)
        # Debian's masquerade dir has gcc/g++ but no cc/c++, which CMake picks first; CMake
        # (>= 3.17) reads these to put ccache in front of whatever compiler it chose
        env["CMAKE_C_COMPILER_LAUNCHER"] = "ccache"
        env["CMAKE_CXX_COMPILER_LAUNCHER"] = "ccache"
    env["PATH"] = path
    if spec.cpu:
        env["QEMU_CPU"] = spec.cpu
    if profile is not None:
        if profile.timeout_env:
            env[profile.timeout_env] = str(int(profile.timeout_base * multiplier))
        for item in profile.env:
            k, _, v = substitute([item], vals)[0].partition("=")
            env[k] = v
    env.update(spec.env)
    return env


def run_argv(binary: str, spec: RunSpec, env: Mapping[str, str | None]) -> list[str]:
    """The ``podman run`` argv of a run (the engine's one builder, with a run's options)."""
    from podrepro.engine import commands

    root = str(spec.project_root)
    volumes = [f"{root}:{root}"]
    tmpfs = [f"{HOME_IN_CONTAINER}:rw,exec,mode=1777"]
    command, workdir = list(spec.command), str(spec.workdir)
    git = spec.project_root / ".git"
    if spec.tmpfs_tree:
        # the project read-only elsewhere, a tmpfs at its path (small directory offsets: see
        # podrepro.fidelity, readdir-cookies), filled before the command; nothing comes back
        volumes = [f"{root}:{TREE_SOURCE}:ro"]
        tmpfs.append(f"{root}:rw,exec,mode=1777")
        command = ["sh", "-c", TMPFS_TREE_SH, TREE_SOURCE, root, workdir, *command]
        workdir = "/"
    elif not spec.remote and not spec.git_writable and (git.is_dir() or git.is_file()) and not git.is_symlink():
        # a build or test may not add a hook or set core.fsmonitor: those run on the host, at the
        # user's next `git status`. Read-only over the read-write project mount.
        volumes.append(f"{git}:{git}:ro")
    if spec.ccache_dir is not None:
        volumes.append(f"{spec.ccache_dir}:{CCACHE_MOUNT}")
    return commands.run_argv(
        binary, spec.image, command, platform=spec.arch.oci_platform,
        interactive=spec.interactive, tty=spec.tty,
        # "private": podman's default rootless network (slirp4netns or pasta), no flag needed
        network=spec.network if spec.network in ("none", "host") else None,
        keep_id=True,
        # a tiny init (catatonit) as PID 1: an emulated process that is PID 1 and gets SIGINT/SIGTERM
        # with the default action hangs forever (qemu-user re-raises the signal, which the kernel
        # drops for a namespace's init, then waits for it), so Ctrl-C would leave the run stuck and
        # its container behind. The cost: a command that cannot be exec'd exits 1, not 126/127.
        init=True,
        # no relabelling of the user's tree (":z" would rewrite every file's label); instead this
        # one container runs unconfined by SELinux. Documented in the README.
        selinux_label_disable=spec.selinux,
        labels={"io.podrepro.run": "1", "io.podrepro.arch": spec.arch.alias}, name=spec.name,
        volumes=volumes, tmpfs=tmpfs, env=env, workdir=workdir, extra=spec.extra_args,
    )


def selinux_enforcing(path: Path = Path("/sys/fs/selinux/enforce")) -> bool:
    try:
        return path.read_text().strip() == "1"
    except OSError:
        return False


def workdir_for(root: Path, cwd: Path) -> Path:
    """The same directory inside, if it is under the mounted project root; else the root."""
    cwd = cwd.resolve()
    return cwd if cwd == root or root in cwd.parents else root
