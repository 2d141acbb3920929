"""A podman system connection: where it points (ssh user, host, port, socket, identity) and the
ssh argv that reaches the same account (for rsync and the host probe).

podrepro rides ``podman system connection`` rather than an agent of its own: the connection is
added once with ``podman system connection add NAME ssh://USER@HOST[:PORT]/run/user/UID/podman/podman.sock
--identity KEY``, and podrepro reads it back with ``podman system connection list --format json``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from podrepro.errors import EngineError, PodreproError, UsageError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LOCAL = "local"


@dataclass(frozen=True)
class Connection:
    name: str
    user: str
    host: str
    port: int
    socket: str
    identity: str | None

    def ssh_options(self) -> list[str]:
        """ssh's options for this account: never a password prompt, the user's own known_hosts."""
        return ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-p", str(self.port),
                *(["-i", self.identity] if self.identity else [])]

    def ssh_argv(self, command: str) -> list[str]:
        return ["ssh", *self.ssh_options(), f"{self.user}@{self.host}", command]

    def rsync_shell(self) -> str:
        """rsync's ``-e``: the same ssh."""
        return shlex.join(["ssh", *self.ssh_options()])

    def where(self) -> str:
        return f"{self.user}@{self.host}" + (f":{self.port}" if self.port != 22 else "")


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"--connection {name!r}: not a connection name", hint="see 'podman system connection list'")
    return name


def parse(name: str, uri: str, identity: str | None) -> Connection:
    """A connection from podman's listing; only ssh ones reach another account's podman."""
    u = urlsplit(uri)
    if u.scheme != "ssh" or not u.hostname:
        raise UsageError(f"podman connection {name} is {u.scheme or 'not a URL'}://, not ssh://",
                         hint="podrepro syncs the project over ssh: add an ssh connection")
    return Connection(name, unquote(u.username or ""), u.hostname, u.port or 22, u.path or "",
                      identity or None)


def parse_listing(text: str) -> dict[str, tuple[str, str | None]]:
    """``podman system connection list --format json`` → {name: (uri, identity)}."""
    try:
        data = json.loads(text or "[]")
    except ValueError:
        raise EngineError("podman system connection list printed no JSON") from None
    out: dict[str, tuple[str, str | None]] = {}
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and isinstance(item.get("Name"), str) and isinstance(item.get("URI"), str):
            out[item["Name"]] = (item["URI"], item.get("Identity") or None)
    return out


def lookup(name: str) -> Connection:
    from podrepro.engine import process

    check_name(name)
    cp = process.run(["podman", "system", "connection", "list", "--format", "json"], timeout=60)
    if cp.returncode != 0:
        raise EngineError(f"podman system connection list failed: {process.last_line(cp.stderr)}")
    known = parse_listing(cp.stdout.decode(errors="replace"))
    if name not in known:
        raise PodreproError(f"no podman connection named {name!r}" + (f" (there are: {', '.join(sorted(known))})" if known else ""),
                            hint="add it: podman system connection add NAME ssh://USER@HOST/run/user/UID/podman/podman.sock "
                            "--identity ~/.ssh/KEY")
    uri, identity = known[name]
    return parse(name, uri, identity)


def spread(spec: str, n: int) -> list[str | None]:
    """``--connection a,b,local`` over ``n`` architectures, in turn (None: this host)."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("--connection: no connection named", hint="e.g. --connection peer or --connection local,peer")
    for s in names:
        if s != LOCAL:
            check_name(s)
    return [None if names[i % len(names)] == LOCAL else names[i % len(names)] for i in range(n)]
