"""What ``reproduce`` does differently on a remote engine (``--connection NAME``): check the
architecture runs there, send the image, sync the tree, run through the connection, bring the
build directory back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from podrepro.arches import Arch
from podrepro.errors import UsageError
from podrepro.remote.session import Remote
from podrepro.reporting import Notify


def start(name: str, arch: Arch, unsupported: Mapping[str, bool], say: Notify) -> Remote:
    """The remote engine for this run, after refusing what a remote run cannot do and checking
    ``arch`` runs there (one line says how)."""
    from podrepro.remote.session import open_remote

    for option, given in unsupported.items():
        if given:
            raise UsageError(f"{option} with --connection: not supported (it needs files or images of this host)",
                             hint=f"run it here (drop --connection {name}), or drop {option}")
    rem = open_remote(name)
    say(rem.check_arch(arch))
    return rem


def ensure_image(rem: Remote, binary: str, tag: str, present_here: bool, build_here: Callable[[], None],
                 say: Notify) -> None:
    """``tag`` on the remote engine: built here when this host lacks it too, then streamed."""
    if rem.has_image(binary, tag):
        return
    if not present_here:
        build_here()
    say(f"sending {tag} to {rem.conn.name} (podman save | podman --connection {rem.conn.name} load)")
    rem.send_image(binary, tag)


def upload(rem: Remote, root: Path, build_dirs: list[str], keep: str | None, say: Notify) -> None:
    dest = rem.upload(root, build_dirs, keep)
    say(f"project synced to {rem.conn.name}:{dest} (rsync; .git, .podrepro and build directories left out)")


def after(rem: Remote, root: Path, build_dir: str | None, say: Notify) -> Callable[[], None]:
    """What runs once the remote command ended: its build directory back here."""
    def back() -> None:
        if build_dir:
            rem.download(root, build_dir)
            say(f"{build_dir} brought back from {rem.conn.name}")
    return back
