"""Seeding: a host-dpkg bootstrap of a new base recipe starts from the root filesystem of an
earlier base whose packages are a subset of the new set (see hostdpkg.HOST_DPKG_HOOK), so only
the packages it lacks are installed."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from podrepro.engine import bootstrap, commands, hostdpkg, process
from podrepro.engine.children import Children
from podrepro.engine.podman import ImageInfo, Podman
from podrepro.errors import PodreproError
from podrepro.images.recipe import LABEL, Recipe, recipe_label

SEED_PREFIX = "podrepro-seed-"
# a base exports in seconds; past this the bootstrap stops waiting for it and installs everything
EXPORT_TIMEOUT = 180


def choose_seed(images: list[ImageInfo], recipe: Recipe,
                built_here: Callable[[ImageInfo], bool] = lambda img: True) -> ImageInfo | None:
    """The earlier base a host-dpkg bootstrap of ``recipe`` starts from (see hostdpkg.HOST_DPKG_HOOK).

    Candidates: tagged podrepro bases of the same Debian architecture and suite that mmdebstrap
    bootstrapped with the host-dpkg installer, whose variant's package patterns and included
    packages (a profile's package base) are all among ``recipe``'s (so its packages are likely a
    subset; the hook checks the real sets). The one with the most wins (the most packages
    already configured), then the newest."""
    if recipe.kind != "base" or recipe.data.get("source") != "mmdebstrap" or recipe.data.get("installer") != "host-dpkg":
        return None
    variant = set(bootstrap.VARIANT_PACKAGES.get(recipe.variant, ()))
    if not variant:
        return None
    # a profile's package base (``include``) starts from the plain base, or from another
    # package base whose packages it also wants
    wanted = variant | set(recipe.data.get("include", ()))
    best: tuple[int, str] | None = None
    chosen = None
    for img in images:
        data = recipe_label(img.labels)
        if not data or not img.tags or recipe.tag in img.tags or not built_here(img):
            continue
        if (data.get("kind"), data.get("source"), data.get("installer")) != ("base", "mmdebstrap", "host-dpkg"):
            continue
        if data.get("debian_arch") != recipe.arch.debian or data.get("suite") != recipe.suite:
            continue
        patterns = set(bootstrap.VARIANT_PACKAGES.get(str(data.get("variant")), ()))
        include = data.get("include", [])
        if not patterns or not isinstance(include, list):
            continue
        patterns |= {str(x) for x in include}
        if not patterns <= wanted:
            continue
        rank = (len(patterns), img.created)
        if best is None or rank > best:
            best, chosen = rank, img
    return chosen


def open_seed(engine: Podman, children: Children, recipe: Recipe, workdir: Path, lf: IO[bytes],
              built: set[str] | None = None) -> SeedStream | None:
    """Start exporting the earlier base that ``recipe``'s bootstrap can start from, if any.
    ``built``: the tags this user's podrepro built (the index says so); an imported or pulled
    base, someone else's root filesystem, is never a seed."""
    try:
        remove_stale_seed_containers(engine)
        image = choose_seed(engine.list_images(f"{LABEL}.kind=base"), recipe,
                            built_here=lambda img: bool(built is not None and built & set(img.tags)))
    except PodreproError:
        return None
    if image is None:
        return None
    stream = SeedStream(engine, children, image, workdir, lf)
    return stream if stream.start() else None


class SeedStream:
    """An earlier base's root filesystem on a pipe, for the bootstrap hook's seeding.

    ``podman export`` writes it to a file in mmdebstrap's temp dir while mmdebstrap updates,
    downloads and extracts (off the critical path); a thread then copies the file into the pipe,
    so the hook, which blocks on the pipe, reads a complete tar or (a failed export) an empty one.
    A hook that does not read it (mmdebstrap failed earlier) just breaks the pipe."""

    def __init__(self, engine: Podman, children: Children, image: ImageInfo, workdir: Path, lf: IO[bytes]) -> None:
        self.engine = engine
        self.children = children
        self.image = image
        self.file = workdir / "seed.tar"
        self.lf = lf
        self.container: str | None = None
        self.export: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        self.fd = -1
        self._write = -1

    def start(self) -> bool:
        name = f"{SEED_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        cp = self.engine.create_container(self.image.id, name)
        if cp.returncode != 0:
            self.lf.write(b"seed not used, podman create failed: " + cp.stderr[-500:] + b"\n")
            return False
        self.container = name
        self.fd, self._write = os.pipe()
        self.lf.write(f"seed: {self.image.tags[0]} ({self.image.id[:12]}) via container {name}\n".encode())
        self.lf.flush()
        with process.private_files():  # another base's whole root filesystem: the user's alone
            self.export = self.children.spawn(commands.export_argv(self.engine.binary, name, self.file),
                                              stdout=self.lf, stderr=self.lf)
        self.thread = threading.Thread(target=self._feed, name="podrepro-seed", daemon=True)
        self.thread.start()
        return True

    def spawned(self) -> None:
        """mmdebstrap has the read end now: drop ours, so a hook that exits breaks the pipe."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -2

    def _feed(self) -> None:
        assert self.export is not None
        try:
            try:
                rc = self.export.wait(timeout=EXPORT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.lf.write(f"seed not used: podman export took over {EXPORT_TIMEOUT}s\n".encode())
                self.export.kill()
                self.export.wait()
                rc = -1
            if rc != 0:
                return
            with open(self.file, "rb") as f:
                size, offset = os.fstat(f.fileno()).st_size, 0
                while offset < size:
                    sent = os.sendfile(self._write, f.fileno(), offset, size - offset)
                    if sent == 0:
                        break
                    offset += sent
        except OSError:
            pass  # a broken pipe: the hook did not want it
        finally:
            os.close(self._write)
            self._write = -1

    def finish(self) -> None:
        """After mmdebstrap: stop the export if it still runs, drop its container and file."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -2
        if self.export is not None and self.export.poll() is None:
            self.export.terminate()
        if self.thread is not None:
            self.thread.join(timeout=60)
        if self.container is not None:
            self.engine.remove_container(self.container, timeout=120)
            self.container = None
        with contextlib.suppress(OSError):
            self.file.unlink()


def remove_stale_seed_containers(engine: Podman) -> list[str]:
    """Remove the export containers of seeded bootstraps whose podrepro is gone (killed: their
    names carry its pid); they would keep their image from being pruned. Returns their names."""
    def stale(c: Mapping[str, Any]) -> bool:
        names = c.get("Names") or []
        return any(str(n).startswith(SEED_PREFIX) and process.owner_gone(str(n)[len(SEED_PREFIX):])
                   for n in (names if isinstance(names, list) else [names]))

    return engine.remove_containers(stale, filters=[f"name=^{SEED_PREFIX}"])


def hook_seeded(log: Path, start: int = 0) -> bool:
    """Whether the bootstrap hook seeded the root filesystem, as the log says after ``start``
    (where this attempt's output begins: an earlier attempt's verdict does not count)."""
    try:
        with open(log, "rb") as f:
            f.seek(start)
            return hostdpkg.SEEDED.encode() in f.read()
    except OSError:
        return False
