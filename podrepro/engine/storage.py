"""containers/storage read directly: is an image in the local store? (the run hot path's question)"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path


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
