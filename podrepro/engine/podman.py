"""The container engine boundary: podman-py over a private service for queries, the podman CLI
for streaming imports, builds and interactive runs.

podman-py talks to a private ``podman system service`` that podrepro starts on a unique socket in
a private directory and stops itself (ENVIRONMENT.md: a reused socket path can be deleted under a
newer service by an old one timing out). podman-py's two error trees (``APIError``,
``PodmanError``) are translated into PodreproError here and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro import audit
from podrepro.engine import process
from podrepro.errors import EngineError, HostNotReady

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


class ServiceExited(EngineError):
    """The private API service exited before it answered a ping."""


def _pings(sock: str) -> bool:
    """The API service at ``sock`` answers ``GET /_ping``."""
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(sock)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return False
    return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]


class PodmanService:
    """A private ``podman system service`` on a unique socket, started lazily, stopped on close."""

    def __init__(self) -> None:
        self._dir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None
        self._err: str | None = None

    def client(self) -> Any:
        if self._client is not None:
            return self._client
        existing = os.environ.get("PODREPRO_PODMAN_SOCKET")
        if existing:
            url = existing if "://" in existing else f"unix://{existing}"
        else:
            url = self._start_retrying()
        try:
            from podman import PodmanClient
        except ImportError as e:  # pragma: no cover - dependency missing
            raise EngineError("podman-py is not installed", hint="pip install podman") from e
        self._client = PodmanClient(base_url=url)
        return self._client

    def _start_retrying(self, attempts: int = 3) -> str:
        """A service that exits before it answers (rootless podman 4.3 starting next to another
        podman process that is busy with the same store) gets another try: socket readiness is
        what may flake here, never the user's command."""
        for n in range(1, attempts + 1):
            try:
                return self._start()
            except ServiceExited as e:
                log.info("podman system service exited before answering (attempt %d): %s", n, e.message)
                if n == attempts:
                    raise
                time.sleep(0.2 * n)
        raise AssertionError("unreachable")

    def _start(self) -> str:
        if process.which(PODMAN) is None:
            raise HostNotReady("podman is not installed", hint="run 'podrepro doctor' for the install command")
        self._dir = tempfile.mkdtemp(prefix="podrepro-svc-")
        sock = os.path.join(self._dir, "api.sock")
        # the service's stderr goes to a file, not a pipe: nobody reads a pipe while the service
        # runs, and a full one would block it; the file says why it stopped, if it does
        self._err = os.path.join(self._dir, "service.err")
        with open(self._err, "wb") as err:
            self._proc = process.popen([PODMAN, "system", "service", "--time=0", f"unix://{sock}"],
                                       stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 15.0
        delay = 0.005
        # ready = answers a ping. The socket file appears at bind(), before listen() and before
        # the API server runs: a client that connects in between gets "connection refused",
        # which podman-py reports as "GET operation failed" (seen with two builds at once, when
        # the service starts on a busy machine)
        while not _pings(sock):
            if self._proc.poll() is not None:
                last = self.stderr_tail()
                self.close()
                raise ServiceExited(f"podman system service failed to start: {last}".rstrip(": "),
                                    hint="run 'podrepro doctor'")
            if time.monotonic() > deadline:
                self.close()
                raise EngineError("podman system service did not become ready in 15 s")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        return f"unix://{sock}"

    def stderr_tail(self) -> str:
        """The service's last stderr line (why it stopped), or ''."""
        err = self._err
        try:
            text = Path(err).read_bytes().decode(errors="replace") if err else ""
            lines = [ln for ln in text.splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    def died(self) -> bool:
        return self._proc is not None and self._proc.poll() is not None

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class Podman:
    """The engine, created once per command and passed in. Query methods use podman-py; the rest
    build argv lists (pure, unit-tested) and run them through the chokepoint."""

    def __init__(self, binary: str = PODMAN) -> None:
        self.binary = binary
        self._svc = PodmanService()

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
        fast = storage_lists_image(ref) if ref.startswith("localhost/") else None
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


def storage_files(environ: Mapping[str, str] | None = None) -> tuple[Path, list[Path]] | None:
    """The files of the default rootless containers/storage that say which images exist: its
    storage.conf and each driver's images.json; None when the store is elsewhere or unknown
    (root, CONTAINERS_STORAGE_CONF, a graphroot in the user's storage.conf)."""
    env = os.environ if environ is None else environ
    if os.geteuid() == 0 or env.get("CONTAINERS_STORAGE_CONF"):
        return None
    conf_home = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    conf = conf_home / "containers" / "storage.conf"
    try:
        if conf.is_file() and any(ln.strip().startswith(("graphroot", "rootless_storage_path"))
                                  for ln in conf.read_text().splitlines()):
            return None
    except OSError:
        return None
    root = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "containers" / "storage"
    return conf, [root / f"{driver}-images" / "images.json" for driver in ("overlay", "vfs")]


def storage_lists_image(tag: str, environ: Mapping[str, str] | None = None) -> bool | None:
    """Fast path for "is this image in the local store?" on every run: read containers/storage's
    image list directly (~1 ms) instead of asking podman (~50-100 ms).

    Returns True/False when the default rootless store answers, None when it cannot (another
    graphroot configured, root, unknown layout): then the caller asks podman."""
    files = storage_files(environ)
    if files is None:
        return None
    found_any = False
    for f in files[1]:
        try:
            data = json.loads(f.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None
        found_any = True
        if isinstance(data, list) and any(tag in (img.get("names") or []) for img in data if isinstance(img, dict)):
            return True
    return False if found_any else None


@contextlib.contextmanager
def engine() -> Iterator[Podman]:
    p = Podman()
    try:
        yield p
    finally:
        p.close()
