"""A small, bounded HTTP front for a Debian mirror that injects faults (issue 6, item 6).

It listens on 127.0.0.1 only, forwards each request to the real mirror (whose address the test
reads from the host's apt sources at run time), and misbehaves on purpose:

- ``drop_rate``: that share of connections is closed at once, without an answer;
- ``stall_rate``: that share is held open without an answer for ``stall_seconds``, then closed;
- ``fail_first``: the first N requests get ``503 Service Unavailable``.

One request per connection (the answer carries ``Connection: close``), so every package download
is its own connection and its own roll of the dice. Bounded: it serves at most
``max_connections`` and stops by itself after ``lifetime`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Stats:
    connections: int = 0
    forwarded: int = 0
    dropped: int = 0
    stalled: int = 0
    failed_503: int = 0
    upstream_errors: int = 0
    paths: list[str] = field(default_factory=list)

    @property
    def faults(self) -> int:
        return self.dropped + self.stalled + self.failed_503


class FaultProxy:
    def __init__(self, upstream: str, *, drop_rate: float = 0.0, stall_rate: float = 0.0,
                 stall_seconds: float = 8.0, fail_first: int = 0, seed: int = 6,
                 max_connections: int = 20_000, lifetime: float = 1800.0) -> None:
        u = urlsplit(upstream)
        if u.scheme != "http" or not u.hostname:
            raise ValueError("the fault proxy fronts a plain http:// mirror")
        self.host, self.port = u.hostname, u.port or 80
        self.path = u.path.rstrip("/")
        self.drop_rate, self.stall_rate, self.stall_seconds = drop_rate, stall_rate, stall_seconds
        self.fail_first = fail_first
        self.rng = random.Random(seed)
        self.max_connections, self.lifetime = max_connections, lifetime
        self.stats = Stats()
        self.listen_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- public ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The mirror URL to give podrepro: same path as the real mirror, on the proxy."""
        return f"http://127.0.0.1:{self.listen_port}{self.path}"

    def __enter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- server ---------------------------------------------------------------------------------
    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.listen_port = server.sockets[0].getsockname()[1]
        self._ready.set()
        deadline = time.monotonic() + self.lifetime
        async with server:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=max(0.0, deadline - time.monotonic()))
            server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            if self.stats.connections > self.max_connections:
                return
            roll = self.rng.random()
            if roll < self.drop_rate:
                self.stats.dropped += 1
                return
            if roll < self.drop_rate + self.stall_rate:
                self.stats.stalled += 1
                await asyncio.sleep(self.stall_seconds)
                return
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
            if self.stats.failed_503 < self.fail_first:
                self.stats.failed_503 += 1
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            await self._forward(head, writer)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    async def _forward(self, head: bytes, writer: asyncio.StreamWriter) -> None:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = ([*lines[0].split(" ", 2), "", ""])[:3]
        self.stats.paths.append(target)
        keep = [ln for ln in lines[1:] if ln and not ln.lower().startswith(("host:", "connection:", "keep-alive:"))]
        req = (f"{method} {target} {version}\r\nHost: {self.host}\r\n" + "".join(f"{h}\r\n" for h in keep)
               + "Connection: close\r\n\r\n")
        try:
            up_r, up_w = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout=30)
        except (TimeoutError, OSError):
            self.stats.upstream_errors += 1
            return
        try:
            up_w.write(req.encode("latin-1"))
            await up_w.drain()
            while chunk := await asyncio.wait_for(up_r.read(65536), timeout=60):
                writer.write(chunk)
                await writer.drain()
            self.stats.forwarded += 1
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                up_w.close()
