"""The container engine boundary: podman-py over a private service for queries (``service``), the
podman CLI for streaming imports, builds and interactive runs.

podman-py's two error trees (``APIError``, ``PodmanError``) are translated into PodreproError
here and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro import audit
from podrepro.engine import commands, process, storage
from podrepro.engine.commands import PODMAN
from podrepro.engine.service import PodmanService
from podrepro.errors import EngineError

log = logging.getLogger("podrepro.engine")



@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    size: int
    created: str
    architecture: str
    os: str

    @staticmethod
    def from_attrs(a: Mapping[str, Any]) -> ImageInfo:
        labels = a.get("Labels") or (a.get("Config") or {}).get("Labels") or {}
        tags = a.get("RepoTags") or a.get("Names") or []
        created = a.get("Created", "")
        if isinstance(created, int | float):
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        return ImageInfo(
            id=str(a.get("Id", "")).removeprefix("sha256:"),
            tags=tuple(tags),
            labels=dict(labels),
            size=int(a.get("Size") or a.get("VirtualSize") or 0),
            created=str(created),
            architecture=str(a.get("Architecture", "")),
            os=str(a.get("Os", "")),
        )


def _translate(e: Exception, what: str) -> EngineError:
    msg = getattr(e, "explanation", None) or str(e) or e.__class__.__name__
    return EngineError(f"podman: {what}: {str(msg).strip().splitlines()[0]}",
                       hint="run 'podrepro doctor' to check the host; -v shows every command")


class Podman:
    """The engine, created once per command and passed in. Query methods use podman-py; the rest
    build argv lists (pure, unit-tested) and run them through the chokepoint."""

    def __init__(self, binary: str = PODMAN) -> None:
        self.binary = binary
        self._svc = PodmanService(binary)

    def __enter__(self) -> Podman:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._svc.close()

    # ---- queries (podman-py) -----------------------------------------------------------------
    def _client(self, op: str, arg: str = "") -> Any:
        audit.record(["podman-api", op, arg], "api")  # the privilege audit sees API calls too
        return self._svc.client()

    def _fail(self, e: Exception, what: str) -> EngineError:
        err = _translate(e, what)
        if self._svc.died():
            err.message += f" (podrepro's API service stopped: {self._svc.stderr_tail() or 'no message'})"
        return err

    def image_exists(self, ref: str) -> bool:
        # the storage fast path answers without starting the service (a cache hit in ~1 ms)
        fast = storage.storage_lists_image(ref) if ref.startswith("localhost/") else None
        if fast is not None:
            return fast
        try:
            return bool(self._client("images.exists", ref).images.exists(ref))
        except Exception as e:
            raise self._fail(e, f"checking image {ref}") from None

    def inspect(self, ref: str) -> ImageInfo | None:
        from podman.errors import ImageNotFound

        try:
            img = self._client("images.get", ref).images.get(ref)
        except ImageNotFound:
            return None
        except Exception as e:
            raise self._fail(e, f"inspecting image {ref}") from None
        return ImageInfo.from_attrs(img.attrs)

    def list_images(self, label: str) -> list[ImageInfo]:
        try:
            imgs = self._client("images.list", label).images.list(filters={"label": label})
        except Exception as e:
            raise self._fail(e, "listing images") from None
        out = []
        for i in imgs:
            attrs = dict(i.attrs)
            if not attrs.get("Architecture"):
                info = self.inspect(attrs.get("Id", ""))
                if info is not None:
                    attrs["Architecture"], attrs["Os"] = info.architecture, info.os
            out.append(ImageInfo.from_attrs(attrs))
        return out

    def remove_image(self, ref: str, force: bool = False) -> bool:
        from podman.errors import ImageNotFound

        try:
            self._client("images.remove", ref).images.remove(ref, force=force)
            return True
        except ImageNotFound:
            return False
        except Exception as e:
            raise self._fail(e, f"removing image {ref}") from None

    def tag(self, ref: str, new: str) -> None:
        repo, _, tag = new.rpartition(":")
        try:
            img = self._client("images.tag", f"{ref} {new}").images.get(ref)
            if not img.tag(repo, tag):
                raise EngineError(f"podman: could not tag {ref} as {new}")
        except EngineError:
            raise
        except Exception as e:
            raise self._fail(e, f"tagging {ref} as {new}") from None

    def load(self, path: Path) -> list[str]:
        try:
            imgs = list(self._client("images.load", str(path)).images.load(file_path=path))
        except Exception as e:
            raise self._fail(e, f"loading {path}") from None
        return [str(i.id) for i in imgs]

    def load_archive(self, path: Path) -> None:
        """``podman load`` of an OCI or docker archive (the CLI: podman-py's load reads only the latter)."""
        cp = process.run([self.binary, "load", "-q", "-i", str(path)], timeout=3600)
        if cp.returncode != 0:
            raise EngineError(f"podman load failed: {process.last_line(cp.stderr, '(no output)')}")

    # ---- one-off commands (the CLI, through the chokepoint) ------------------------------------
    def inspect_id_cli(self, ref: str) -> str:
        """The image's ID (``podman image inspect``: for one question the CLI is cheaper than the service)."""
        cp = process.run([self.binary, "image", "inspect", "--format", "{{.Id}}", ref], timeout=120)
        if cp.returncode != 0:
            raise EngineError(f"podman image inspect {ref} failed: {process.last_line(cp.stderr)}")
        return cp.stdout.decode().strip()

    def image_exists_cli(self, ref: str) -> bool:
        """``podman image exists``: for one question the CLI is cheaper than starting the service."""
        return process.run([self.binary, "image", "exists", ref]).returncode == 0

    def run(self, image: str, command: Sequence[str], *, platform: str, timeout: float = 120,
            extra: Sequence[str] = ()) -> subprocess.CompletedProcess[bytes]:
        """``command`` in a throw-away container of ``image`` (no network), its output captured;
        ``extra``: options before the image (a private binfmt handler's, for one)."""
        return process.run(commands.run_argv(self.binary, image, command, platform=platform, extra=extra),
                           timeout=timeout)

    def create_container(self, image: str, name: str) -> subprocess.CompletedProcess[bytes]:
        """A container of ``image`` that is never started (its root filesystem is exported)."""
        return process.run([self.binary, "create", "--pull=never", "--name", name, image, "true"], timeout=120)

    def remove_container(self, container: str, timeout: float = 60) -> bool:
        return process.run([self.binary, "rm", "-f", container], timeout=timeout).returncode == 0

    def remove_containers(self, pick: Callable[[Mapping[str, Any]], bool], *, external: bool = False,
                          filters: Sequence[str] = ()) -> list[str]:
        """The clean-up of leftovers: ``podman ps -a`` (as JSON; ``external``: buildah's working
        containers too), then ``podman rm -f`` each container that ``pick`` chooses. The names of
        those removed."""
        argv = [self.binary, "ps", "-a", *(["--external"] if external else [])]
        for f in filters:
            argv += ["--filter", f]
        cp = process.run([*argv, "--format", "json"], timeout=60)
        try:
            found = json.loads(cp.stdout or b"[]") if cp.returncode == 0 else []
        except ValueError:
            return []
        removed = []
        for c in found if isinstance(found, list) else []:
            if isinstance(c, dict) and pick(c) and self.remove_container(str(c.get("Id", ""))):
                names = c.get("Names")
                removed.append(str(names[0] if isinstance(names, list) and names else names or c.get("Id", "")))
        return removed

    def save(self, tag: str, out: Path, *, oci: bool = False) -> None:
        """``tag`` as a docker-archive (or, ``oci``, an OCI archive with gzipped layers) at ``out``."""
        fmt = "oci-archive" if oci else "docker-archive"
        cp = process.run([self.binary, "save", "--format", fmt, "-o", str(out), tag], timeout=3600)
        if cp.returncode != 0:
            raise EngineError(f"podman save failed: {cp.stderr.decode(errors='replace').strip()[-300:]}")

    def push(self, tag: str, ref: str) -> None:
        cp = process.run(commands.push_argv(self.binary, tag, ref), timeout=3600)
        if cp.returncode != 0:
            raise EngineError(f"podman push to {ref} failed: {process.last_line(cp.stderr, '(no output)')}",
                              hint="check the registry address and 'podman login'")

    def pull(self, ref: str) -> None:
        cp = process.run(commands.pull_argv(self.binary, ref), timeout=3600)
        if cp.returncode != 0:
            raise EngineError(f"podman pull {ref} failed: {process.last_line(cp.stderr, '(no output)')}",
                              hint="check the reference and registry")


def remove_tree(d: Path, binary: str = PODMAN) -> None:
    """Remove ``d``; what the user cannot remove (files of subordinate ids, written inside a
    user namespace by mmdebstrap or a container) goes through ``podman unshare``."""
    shutil.rmtree(d, ignore_errors=True)
    if d.exists():
        process.run([binary, "unshare", "rm", "-rf", "--", str(d)], timeout=300)


def own_tmpdir(base: Path, name: str, binary: str = PODMAN, mode: int = 0o700) -> Path:
    """A new ``base/name-UID-PID-random``, made after removing those this user's podrepro
    processes left when they were killed (SIGKILL, power loss): the pid says whose it is."""
    import tempfile

    prefix = f"{name}-{os.getuid()}-"
    for old in base.glob(prefix + "*"):
        if process.owner_gone(old.name[len(prefix):]):
            remove_tree(old, binary)
    d = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))
    d.chmod(mode)
    return d


@contextlib.contextmanager
def podman_tmpdir(name: str, binary: str = PODMAN) -> Iterator[Path]:
    """The TMPDIR for one podman command that stages things in its temp dir ($TMPDIR, else
    /var/tmp), removed afterwards whatever happens: podman 4 leaves them there when it is
    interrupted (``import -`` its copy of standard input, up to a whole root filesystem's tar;
    ``build`` a RUN step's run directory)."""
    d = own_tmpdir(Path(os.environ.get("TMPDIR") or "/var/tmp"), f"podrepro-{name}", binary, 0o711)
    try:
        yield d
    finally:
        remove_tree(d, binary)


@contextlib.contextmanager
def engine() -> Iterator[Podman]:
    p = Podman()
    try:
        yield p
    finally:
        p.close()
