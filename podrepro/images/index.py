"""The cache index: images.json in the cache dir, and the per-image last-use stamps."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podrepro.paths import Paths

if TYPE_CHECKING:
    from podrepro.engine.podman import ImageInfo


def timestamp(t: float | None = None) -> str:
    """UTC, as the index records times (now, or the time ``t``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Index:
    """images.json in the cache dir: recipe, size, created, last used — per image tag.

    Written atomically (temp file + rename) under a lock; a corrupted file is set aside
    (``images.json.corrupt``) and rebuilt from the images' labels, never a crash."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.file = paths.index_file
        self.warning: str | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock

        self.paths.ensure_cache()
        with FileLock(str(self.file) + ".lock", timeout=60):
            yield

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.file.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
                raise ValueError("not an index")
            return data
        except FileNotFoundError:
            return {"version": 1, "images": {}}
        except (ValueError, OSError, UnicodeDecodeError):
            with contextlib.suppress(OSError):
                self.file.replace(self.file.with_suffix(".json.corrupt"))
            self.warning = f"the image index {self.file} was corrupted; it was set aside and rebuilt"
            return {"version": 1, "images": {}}

    def rebuild(self, images: list[ImageInfo]) -> dict[str, dict[str, Any]]:
        """Write the index anew from what the images' own labels say (after a corrupted one was
        set aside): every podrepro tag with its recipe, hash, arch, profile, kind, size and id.
        Returns the entries (last-use times come back from the stamp files)."""
        from podrepro.images.recipe import LABEL, REPO, TMP_REPO, recipe_label

        entries: dict[str, dict[str, Any]] = {}
        for info in images:
            lb = info.labels
            for tag in info.tags:
                if not tag.startswith(REPO + "/") or tag.startswith(TMP_REPO + ":"):
                    continue
                entries[tag] = {"hash": lb.get(f"{LABEL}.hash"), "arch": lb.get(f"{LABEL}.arch"),
                                "profile": lb.get(f"{LABEL}.profile"), "kind": lb.get(f"{LABEL}.kind"),
                                "recipe": recipe_label(lb) or None, "size": info.size,
                                "created": info.created, "id": info.id, "rebuilt_from_labels": True}
        with self._locked():
            data = self._read()
            for tag, rec in entries.items():
                data["images"].setdefault(tag, {}).update({k: v for k, v in rec.items()
                                                           if k not in data["images"].get(tag, {})})
            self._write(data)
        return self.all()

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.file)

    def all(self) -> dict[str, dict[str, Any]]:
        with self._locked():
            images: dict[str, dict[str, Any]] = self._read()["images"]
        # runs only touch a stamp file (no lock, no JSON rewrite on the hot path)
        for tag, rec in images.items():
            try:
                used = timestamp(self.stamp(tag).stat().st_mtime)
            except OSError:
                continue
            if used > str(rec.get("last_used") or ""):
                rec["last_used"] = used
        return images

    def stamp(self, tag: str) -> Path:
        return self.paths.cache / "used" / hashlib.sha256(tag.encode()).hexdigest()[:24]

    def touch(self, tag: str) -> None:
        """Record a use of ``tag`` cheaply: the mtime of a per-tag stamp file."""
        p = self.stamp(tag)
        try:
            os.utime(p)
        except FileNotFoundError:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()

    def update(self, tag: str, **fields: Any) -> None:
        with self._locked():
            data = self._read()
            data["images"].setdefault(tag, {}).update(fields)
            self._write(data)

    def remove(self, tag: str) -> None:
        with self._locked():
            data = self._read()
            if data["images"].pop(tag, None) is not None:
                self._write(data)
