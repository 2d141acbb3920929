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
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro import audit
from podrepro.engine import process, storage
from podrepro.engine.service import PodmanService
from podrepro.errors import EngineError

log = logging.getLogger("podrepro.engine")

PODMAN = os.environ.get("PODREPRO_PODMAN", "podman")


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

    def containers_using(self, label: str) -> list[str]:
        cp = process.run([self.binary, "ps", "-a", "--filter", f"label={label}", "--format", "{{.ID}}"])
        return cp.stdout.decode().split() if cp.returncode == 0 else []

    def info(self) -> dict[str, Any]:
        cp = process.run([self.binary, "info", "--format", "json"], timeout=60)
        if cp.returncode != 0:
            raise EngineError("podman info failed: " + cp.stderr.decode(errors="replace").strip()[-300:])
        data: dict[str, Any] = json.loads(cp.stdout)
        return data

    # ---- argv builders (pure) ------------------------------------------------------------------
    def import_argv(self, oci_arch: str, variant: str | None, ref: str,
                    labels: Mapping[str, str], cmd: str = "/bin/bash") -> list[str]:
        argv = [self.binary, "import", "--os", "linux", "--arch", oci_arch]
        if variant:
            argv += ["--variant", variant]
        for k, v in sorted(labels.items()):
            # podman import's --change parser strips quotes but keeps backslash escapes, so a
            # quoted JSON value would arrive mangled: values go unquoted (and so may not hold spaces)
            if any(c.isspace() for c in k + v):
                raise EngineError(f"label {k}={v!r} contains white space, which podman import cannot carry")
            argv += ["--change", f"LABEL {k}={v}"]
        argv += ["--change", f'CMD ["{cmd}"]', "-", ref]
        return argv

    def build_argv(self, *, platform: str, containerfile: Path, context: Path, tag: str,
                   build_args: Mapping[str, str], labels: Mapping[str, str],
                   volumes: Sequence[str] = (), network: bool = True, no_cache: bool = False) -> list[str]:
        argv = [self.binary, "build", "--platform", platform, "--pull=never", "--layers", "--force-rm",
                "-f", str(containerfile), "-t", tag]
        if no_cache:
            argv.append("--no-cache")  # --rebuild: run every step again (new packages from the mirror)
        for k, v in sorted(build_args.items()):
            argv += ["--build-arg", f"{k}={v}"]
        for k, v in sorted(labels.items()):
            argv += ["--label", f"{k}={v}"]
        for v in volumes:
            argv += ["--volume", v]
        if not network:
            argv += ["--network", "none"]
        argv.append(str(context))
        return argv

    def run_argv(
        self,
        image: str,
        command: Sequence[str],
        *,
        platform: str,
        interactive: bool = False,
        tty: bool = False,
        network: str = "none",
        workdir: str | None = None,
        mounts: Sequence[tuple[str, str, str]] = (),
        env: Mapping[str, str] | None = None,
        keep_id: bool = True,
        labels: Mapping[str, str] | None = None,
        name: str | None = None,
        selinux_label_disable: bool = False,
        extra: Sequence[str] = (),
    ) -> list[str]:
        """``podman run`` argv. ``--pull=never`` so a platform mismatch fails fast instead of trying
        a registry called 'localhost'; ``--rm`` so nothing is left behind."""
        argv = [self.binary, "run", "--rm", "--pull=never", "--platform", platform]
        if interactive:
            argv.append("-i")
        if tty:
            argv.append("-t")
        argv += ["--network", network]
        if keep_id:
            argv.append("--userns=keep-id")
        if selinux_label_disable:
            # bind-mounted sources keep their labels; only this container's confinement is relaxed
            argv += ["--security-opt", "label=disable"]
        if name:
            argv += ["--name", name]
        for k, v in sorted((labels or {}).items()):
            argv += ["--label", f"{k}={v}"]
        for src, dst, opts in mounts:
            argv += ["--volume", f"{src}:{dst}" + (f":{opts}" if opts else "")]
        for k, v in (env or {}).items():
            argv += ["--env", f"{k}={v}"]
        if workdir:
            argv += ["--workdir", workdir]
        argv += list(extra)
        argv.append(image)
        argv += list(command)
        return argv

    def run_capture(self, argv: Sequence[str], timeout: float | None = 300) -> subprocess.CompletedProcess[bytes]:
        return process.run(argv, timeout=timeout)


@contextlib.contextmanager
def engine() -> Iterator[Podman]:
    p = Podman()
    try:
        yield p
    finally:
        p.close()
