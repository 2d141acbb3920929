"""``podrepro doctor --connection NAME [ARCH...]``: the remote side checked like the local one —
the connection, ssh without a password, the podman service behind it (rootless, cgroups), rsync
on both ends, and for each architecture whether it runs natively there, emulated by a handler
there, or not at all (with the fix)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from podrepro.arches import Arch
from podrepro.errors import PodreproError


@dataclass(frozen=True)
class Check:
    status: str        # ok | fail | info
    what: str
    detail: str
    fix: str = ""


def check(name: str, arches: Sequence[Arch]) -> list[Check]:
    from podrepro.engine import process
    from podrepro.remote.connection import lookup
    from podrepro.remote.session import Remote, probe

    out: list[Check] = []
    for tool in ("ssh", "rsync"):
        found = process.which(tool)
        out.append(Check("ok" if found else "fail", f"{tool} here", found or "not found",
                         "" if found else f"install {'openssh-client' if tool == 'ssh' else 'rsync'}"))
    try:
        conn = lookup(name)
    except PodreproError as e:
        return [*out, Check("fail", "connection", str(e), e.hint or "")]
    out.append(Check("ok", "connection", f"{name}: ssh://{conn.where()}{conn.socket}"
                     + (f", identity {conn.identity}" if conn.identity else "")))
    try:
        host = probe(conn)
    except PodreproError as e:
        return [*out, Check("fail", "ssh", str(e), e.hint or "")]
    out.append(Check("ok", "ssh", f"{conn.where()}: {host.machine}, kernel {host.kernel}, home {host.home}"))
    out.append(Check("ok" if host.rsync else "fail", "rsync there", "found" if host.rsync else "not found",
                     "" if host.rsync else "install rsync on that host"))
    cp = process.run(["podman", "--connection", name, "info", "--format", "json"], timeout=120)
    if cp.returncode != 0:
        out.append(Check("fail", "podman service", process.last_line(cp.stderr, f"exit {cp.returncode}"),
                         "on that host: systemctl --user enable --now podman.socket (or podman system service --time=0)"))
    else:
        out.append(_service(cp.stdout))
    rem = Remote(conn, host)
    for a in arches:
        try:
            out.append(Check("ok", a.alias, rem.check_arch(a)))
        except PodreproError as e:
            out.append(Check("fail", a.alias, str(e), e.hint or ""))
    return out


def _service(raw: bytes) -> Check:
    try:
        info: dict[str, Any] = json.loads(raw)
        h = info.get("host") or {}
        sec = h.get("security") or {}
        version = (info.get("version") or {}).get("Version", "?")
        rootless = bool(sec.get("rootless"))
        detail = (f"podman {version}, {'rootless' if rootless else 'ROOT'}, cgroups {h.get('cgroupVersion', '?')}, "
                  f"{h.get('arch', '?')}")
    except (ValueError, AttributeError):
        return Check("fail", "podman service", "podman info printed no JSON")
    if not rootless:
        return Check("fail", "podman service", detail, "connect to a rootless podman (the user's own socket, "
                     "/run/user/UID/podman/podman.sock), not root's")
    return Check("ok", "podman service", detail)


def ok(checks: Sequence[Check]) -> bool:
    return all(c.status != "fail" for c in checks)


def to_json(name: str, checks: Sequence[Check]) -> dict[str, Any]:
    return {"version": 1, "connection": name, "ok": ok(checks), "checks": [asdict(c) for c in checks]}
