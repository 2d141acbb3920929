"""podrepro's private ``podman system service``, for podman-py's queries.

podman-py talks to a private ``podman system service`` that podrepro starts on a unique socket in
a private directory and stops itself (ENVIRONMENT.md: a reused socket path can be deleted under a
newer service by an old one timing out).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from podrepro.engine import process
from podrepro.engine.commands import PODMAN
from podrepro.errors import EngineError, HostNotReady

log = logging.getLogger("podrepro.engine")


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

    def __init__(self, binary: str = PODMAN) -> None:
        self.binary = binary
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
        if process.which(self.binary) is None:
            raise HostNotReady("podman is not installed", hint="run 'podrepro doctor' for the install command")
        # podrepro-svc-UID-PID-*: one a killed podrepro left is removed by the next start
        from podrepro.engine.podman import own_tmpdir

        self._dir = str(own_tmpdir(Path(tempfile.gettempdir()), "podrepro-svc", self.binary))
        sock = os.path.join(self._dir, "api.sock")
        # the service's stderr goes to a file, not a pipe: nobody reads a pipe while the service
        # runs, and a full one would block it; the file says why it stopped, if it does
        self._err = os.path.join(self._dir, "service.err")
        with open(self._err, "wb") as err:
            self._proc = process.popen([self.binary, "system", "service", "--time=0", f"unix://{sock}"],
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
            return process.last_line(Path(err).read_bytes()) if err else ""
        except OSError:
            return ""

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
