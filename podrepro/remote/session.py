"""Running on another host's podman: what that host is, the project tree synced to it and back,
the image sent to it, and podman argvs pointed at it.

- **The host** is probed once per run over ssh (home, ``uname -m``, SELinux, rsync, its
  binfmt_misc entries): an architecture whose ``uname -m`` is the host's runs natively there,
  any other needs a qemu handler *there*.
- **The tree**: bind mounts do not cross machines, so the project is copied with rsync over the
  same ssh (only what changed; ``.git``, ``.podrepro`` and every architecture's build directory
  left out) into ``~/.local/share/podrepro/trees/NAME-HASH`` on that host, whose own build
  directory for the architecture stays there between runs (incremental builds). After the run
  that build directory comes back (rsync ``--delete``: the local one becomes the remote's), with
  the test results in it.
- **The image** is built here, where podrepro's bootstrap and caches are, and streamed
  ``podman save | podman --connection NAME load`` when that host does not have the tag (the tag
  is the recipe's content hash, so the same tag is the same recipe).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from podrepro.arches import Arch
from podrepro.binfmt.state import Entry, parse_entry
from podrepro.errors import EngineError, PodreproError
from podrepro.remote.connection import Connection

PROBE_SH = r"""printf 'home=%s\n' "$HOME"
printf 'machine=%s\n' "$(uname -m)"
printf 'kernel=%s\n' "$(uname -r)"
[ -r /sys/fs/selinux/enforce ] && printf 'selinux=%s\n' "$(cat /sys/fs/selinux/enforce)"
command -v rsync >/dev/null 2>&1 && echo rsync=yes
command -v podman >/dev/null 2>&1 && echo podman=yes
d=/proc/sys/fs/binfmt_misc
[ -r $d/status ] && printf 'binfmt=%s\n' "$(cat $d/status)"
for f in $d/*; do
  case ${f##*/} in register|status) continue ;; esac
  [ -f "$f" ] && [ -r "$f" ] || continue
  printf '== %s\n' "${f##*/}"; cat "$f"
done
true
"""
SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class RemoteHost:
    home: str
    machine: str
    kernel: str = ""
    selinux: bool = False
    rsync: bool = False
    podman: bool = False
    binfmt: bool = False
    entries: tuple[Entry, ...] = ()

    def runs_natively(self, arch: Arch) -> bool:
        """``arch``'s binaries are the host's own (x86_64 also runs i386 without qemu)."""
        return self.machine == arch.uname_m or (self.machine == "x86_64" and not arch.emulated)

    def handler(self, arch: Arch) -> Entry | None:
        """The enabled binfmt_misc entry there that takes ``arch``'s binaries (with F, so it works
        in containers), if any."""
        header = arch.magic  # qemu's own magic is an ELF header prefix of the architecture
        return next((e for e in self.entries if e.enabled and e.has_flag("F") and e.matches(header)), None)


def parse_probe(text: str) -> RemoteHost:
    fields: dict[str, str] = {}
    entries: list[Entry] = []
    name, body = None, []  # type: tuple[str | None, list[str]]

    def close() -> None:
        if name is not None:
            try:
                entries.append(parse_entry(name, "\n".join(body) + "\n", len(entries)))
            except ValueError:
                pass

    for line in text.splitlines():
        if line.startswith("== "):
            close()
            name, body = line[3:].strip(), []
        elif name is not None:
            body.append(line)
        else:
            k, eq, v = line.partition("=")
            if eq:
                fields[k] = v
    close()
    if "home" not in fields or "machine" not in fields:
        raise EngineError("the remote host's probe printed nothing useful", hint="check that ssh to it works")
    return RemoteHost(fields["home"], fields["machine"], fields.get("kernel", ""), fields.get("selinux") == "1",
                      fields.get("rsync") == "yes", fields.get("podman") == "yes", fields.get("binfmt") == "enabled",
                      tuple(entries))


def probe(conn: Connection) -> RemoteHost:
    from podrepro.engine import process

    cp = process.run(conn.ssh_argv(PROBE_SH), timeout=60)
    if cp.returncode != 0:
        raise PodreproError(f"ssh to {conn.where()} (connection {conn.name}) failed: "
                            f"{process.last_line(cp.stderr, f'exit {cp.returncode}')}",
                            hint=f"check 'ssh -p {conn.port} {conn.user}@{conn.host}' works without a password "
                            "(the connection's --identity key, the host in known_hosts)")
    return parse_probe(cp.stdout.decode(errors="replace"))


@dataclass(frozen=True)
class Remote:
    conn: Connection
    host: RemoteHost

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """A local ``podman ...`` argv pointed at the connection."""
        return [argv[0], "--connection", self.conn.name, *argv[1:]]

    def tree(self, root: Path) -> PurePosixPath:
        """Where ``root`` lives on that host: one directory per (this host, project path)."""
        key = hashlib.sha256(f"{socket.gethostname()}:{root}".encode()).hexdigest()[:12]
        return PurePosixPath(self.host.home) / ".local/share/podrepro/trees" / f"{SAFE.sub('_', root.name)[:40]}-{key}"

    def check_arch(self, arch: Arch) -> str:
        """One line for the user: how ``arch`` runs there; a PodreproError when it cannot."""
        if self.host.runs_natively(arch):
            return f"{arch.alias} runs natively on {self.conn.name} ({self.host.machine}): no emulation"
        entry = self.host.handler(arch)
        if entry is None:
            raise PodreproError(f"{self.conn.name} ({self.conn.where()}, {self.host.machine}) cannot run {arch.alias} "
                                "binaries: no enabled binfmt_misc handler with the F flag for them there",
                                hint=f"on that host: podrepro binfmt register {arch.alias}")
        return f"{arch.alias} runs emulated on {self.conn.name} ({self.host.machine}; handler {entry.name}, flags {entry.flags})"

    def _rsync(self, argv: list[str], what: str) -> None:
        from podrepro.engine import process

        if not self.host.rsync:
            raise PodreproError(f"{self.conn.name} has no rsync: the project cannot be synced",
                                hint="install rsync on that host")
        cp = process.run(["rsync", "-a", "--delete", "-e", self.conn.rsync_shell(), *argv], timeout=3600)
        if cp.returncode != 0:
            raise PodreproError(f"rsync {what} {self.conn.name} failed: {process.last_line(cp.stderr, f'exit {cp.returncode}')}")

    def upload(self, root: Path, build_dirs: Sequence[str], keep: str | None) -> PurePosixPath:
        """The project to that host (what changed); ``keep``: this architecture's build directory,
        made there if missing. Returns the tree's path there."""
        from podrepro.engine import process

        dest = self.tree(root)
        mk = [str(dest)] + ([str(dest / keep)] if keep else [])
        cp = process.run(self.conn.ssh_argv(shlex.join(["mkdir", "-p", "--", *mk])), timeout=60)
        if cp.returncode != 0:
            raise PodreproError(f"cannot create {dest} on {self.conn.name}: {process.last_line(cp.stderr)}")
        excludes = [f"--exclude=/{d.strip('/')}" for d in (".git", ".podrepro", *build_dirs)]
        self._rsync([*excludes, f"{root}/", f"{self.conn.user}@{self.conn.host}:{dest}/"], "to")
        return dest

    def download(self, root: Path, build_dir: str) -> None:
        """That host's build directory of this architecture back over the local one."""
        from podrepro import buildtree

        local = buildtree.build_path(root, build_dir)
        local.mkdir(parents=True, exist_ok=True)
        src = self.tree(root) / build_dir
        self._rsync([f"{self.conn.user}@{self.conn.host}:{src}/", f"{local}/"], "from")

    def has_image(self, binary: str, tag: str) -> bool:
        from podrepro.engine import process

        return process.run(self.wrap([binary, "image", "exists", tag]), timeout=120).returncode == 0

    def send_image(self, binary: str, tag: str) -> None:
        """``podman save TAG | podman --connection NAME load``: a stream, no file in between."""
        from podrepro.engine import process

        save = process.popen([binary, "save", "--format", "docker-archive", tag], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        load = process.popen(self.wrap([binary, "load", "-q"]), stdin=save.stdout, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        assert save.stdout is not None
        save.stdout.close()  # load owns the pipe's read end: a load that dies stops the save
        _, load_err = load.communicate(timeout=3600)
        save_err = save.stderr.read() if save.stderr else b""
        src = save.wait(timeout=60)
        if src != 0 or load.returncode != 0:
            said = process.last_line(load_err if load.returncode else save_err, "no output")
            raise EngineError(f"sending {tag} to {self.conn.name} failed: {said}")
        if not self.has_image(binary, tag):
            raise EngineError(f"{tag} is not on {self.conn.name} after loading it")


def remote_images(name: str, binary: str = "podman") -> list[dict[str, str | int]]:
    """podrepro's images on that engine: tag, architecture, size, created (newest first)."""
    import json

    from podrepro.engine import process
    from podrepro.images.recipe import LABEL, REPO

    cp = process.run([binary, "--connection", name, "images", "--filter", f"reference={REPO}/*", "--format", "json"],
                     timeout=120)
    if cp.returncode != 0:
        raise EngineError(f"podman --connection {name} images failed: {process.last_line(cp.stderr)}")
    try:
        found = json.loads(cp.stdout or b"[]")
    except ValueError:
        raise EngineError(f"podman --connection {name} images printed no JSON") from None
    out: list[dict[str, str | int]] = []
    for img in found if isinstance(found, list) else []:
        labels = img.get("Labels") or {}
        for tag in img.get("Names") or []:
            if str(tag).startswith(f"{REPO}/"):
                out.append({"tag": str(tag), "arch": str(labels.get(f"{LABEL}.arch", "?")), "size": int(img.get("Size") or 0),
                            "created": str(img.get("CreatedAt") or "")})
    return sorted(out, key=lambda r: str(r["created"]), reverse=True)


def remove_remote_image(name: str, tag: str, binary: str = "podman") -> bool:
    """``podman --connection NAME rmi TAG``, for podrepro's own tags only."""
    from podrepro.engine import process
    from podrepro.images.recipe import REPO

    if not tag.startswith(f"{REPO}/"):
        raise PodreproError(f"{tag} is not a podrepro image: not removed", hint=f"podrepro removes only {REPO}/... there")
    return process.run([binary, "--connection", name, "rmi", tag], timeout=300).returncode == 0


def open_remote(name: str) -> Remote:
    from podrepro.remote.connection import lookup

    conn = lookup(name)
    return Remote(conn, probe(conn))
