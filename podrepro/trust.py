"""Approval of a project's podrepro.toml for the settings that widen what a container sees.

A repository's podrepro.toml is someone else's file. It may choose what runs inside the
container, but these requests widen what the container (or an image build) sees, so they are
honoured only after the user approved that exact file, the way ``direnv allow`` and ``mise
trust`` work:

- host variables passed through by name (``env = ["GITHUB_TOKEN"]``, top level or in a profile);
- ``network = true``;
- ``mirror`` (where packages come from);
- a profile's ``containerfile`` (its RUN steps run with the network, in its own build context)
  and ``packages`` (and ``cross_packages``).

Until then those keys are ignored, and one line says so and how to approve. An approval is
stored per file path with the file's sha256 in the user's state dir (``trusted.json``): any edit
of the file needs a new one. ``NAME=VALUE`` literals and every other key stay allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro.paths import Paths

STORE = "trusted.json"


@dataclass(frozen=True)
class Request:
    """One widening request of a project file: where (``network``, ``profile.x.env``) and what."""

    key: str
    what: str

    def __str__(self) -> str:
        return f"{self.key} ({self.what})"


def _passthrough(items: Any) -> list[str]:
    return [i for i in items if isinstance(i, str) and "=" not in i] if isinstance(items, list) else []


def requests(values: Mapping[str, Any], profiles: Mapping[str, Mapping[str, Any]]) -> list[Request]:
    """What in a project file's (checked) top-level values and profiles needs approval."""
    out = []
    names = _passthrough(values.get("env"))
    if names:
        out.append(Request("env", "host variables " + ", ".join(names)))
    if values.get("network") is True:
        out.append(Request("network", "a network for the container"))
    if values.get("mirror") not in (None, "", "auto"):
        out.append(Request("mirror", str(values["mirror"])))
    for name, body in profiles.items():
        names = _passthrough(body.get("env"))
        if names:
            out.append(Request(f"profile.{name}.env", "host variables " + ", ".join(names)))
        if "containerfile" in body:
            out.append(Request(f"profile.{name}.containerfile", os.path.basename(str(body["containerfile"]))))
        for key in ("packages", "cross_packages"):
            if body.get(key):
                out.append(Request(f"profile.{name}.{key}", ", ".join(body[key])))
    return out


def strip(values: dict[str, Any], profiles: dict[str, dict[str, Any]]) -> None:
    """Remove every widening request, in place (what an unapproved file is left with)."""
    if "env" in values:
        values["env"] = [i for i in values["env"] if "=" in i]
    if values.get("network") is True:
        del values["network"]
    values.pop("mirror", None)
    for body in profiles.values():
        if "env" in body:
            body["env"] = [i for i in body["env"] if "=" in i]
        body.pop("containerfile", None)
        body.pop("packages", None)
        body.pop("cross_packages", None)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _store(paths: Paths) -> Path:
    return paths.state / STORE


def _load(paths: Paths) -> dict[str, str]:
    try:
        data = json.loads(_store(paths).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def is_trusted(paths: Paths, pfile: Path) -> bool:
    try:
        return _load(paths).get(str(pfile.resolve())) == digest(pfile)
    except OSError:
        return False


def approve(paths: Paths, pfile: Path) -> str:
    """Record ``pfile`` as it is now; returns the digest approved."""
    data = _load(paths)
    d = digest(pfile)
    data[str(pfile.resolve())] = d
    _write(paths, data)
    return d


def revoke(paths: Paths, pfile: Path) -> bool:
    data = _load(paths)
    gone = data.pop(str(pfile.resolve()), None) is not None
    if gone:
        _write(paths, data)
    return gone


def _write(paths: Paths, data: Mapping[str, str]) -> None:
    paths.state.mkdir(parents=True, exist_ok=True)
    f = _store(paths)
    tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(data), indent=1, sort_keys=True) + "\n")
    tmp.chmod(0o600)
    os.replace(tmp, f)


def notice(pfile: Path, ignored: list[Request]) -> str:
    """The one line an unapproved file gets."""
    asks = "; ".join(str(r) for r in ignored)
    return (f"{pfile} asks for {asks}: ignored until you approve this file with "
            f"'podrepro trust' (run in {pfile.parent})")
