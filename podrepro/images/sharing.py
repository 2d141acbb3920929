"""Sharing images: export to / import from a tarball, push to / pull from a registry.

An exported tarball is a docker-archive (``podman save``) whose image config carries the recipe
labels. ``import`` reads the archive's manifest and config *before* loading anything, so a
truncated, foreign or mislabelled tarball is refused without touching the user's images.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from podrepro.arches import Arch, lookup
from podrepro.engine import process
from podrepro.engine.podman import ImageInfo, Podman
from podrepro.errors import EngineError, PodreproError, UsageError
from podrepro.images.index import Index, timestamp
from podrepro.images.recipe import LABEL, content_hash, image_tag, recipe_label
from podrepro.paths import Paths

if TYPE_CHECKING:
    from podrepro.images.build import Builder


def export(engine: Podman, tag: str, out: Path) -> Path:
    if engine.inspect(tag) is None:
        raise UsageError(f"image {tag} does not exist", hint="build it first: podrepro image build ARCH")
    if out.exists() and out.is_dir():
        raise UsageError(f"-o {out}: is a directory")
    tmp = out.with_name(f".{out.name}.part")
    try:
        with process.private_files():  # the partial archive is the user's alone
            engine.save(tag, tmp)
        tmp.chmod(0o666 & ~process.current_umask())  # the finished one: as the user's umask says
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


@dataclass(frozen=True)
class ArchiveMeta:
    tags: tuple[str, ...]
    labels: dict[str, str]
    architecture: str
    variant: str
    os: str


# limits for archives from elsewhere: a decompression bomb or a giant JSON file stops here
MAX_ARCHIVE_BYTES = 64 * 1024**3   # what all members may add up to, uncompressed
MAX_JSON_BYTES = 4 * 1024**2       # manifest.json and the image config


def _read_json_member(tf: tarfile.TarFile, m: tarfile.TarInfo, path: Path) -> bytes:
    f = tf.extractfile(m)
    if f is None:
        raise PodreproError(f"{path}: {m.name} is not a file")
    raw = f.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise PodreproError(f"{path}: {m.name} is over {MAX_JSON_BYTES // 1024**2} MiB: not a podrepro export")
    return raw


def read_archive(path: Path) -> ArchiveMeta:
    """Manifest + image config of a docker-archive, without loading it (and fully checksummed:
    a truncated file fails here). Refused: an archive whose members add up to more than
    MAX_ARCHIVE_BYTES, a JSON member over MAX_JSON_BYTES, and duplicate names (Python would read
    the last ``manifest.json`` of two, podman the first)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        with tarfile.open(path, mode="r:*") as tf:
            members: dict[str, tarfile.TarInfo] = {}
            total = 0
            for m in tf:  # walks the whole archive: catches truncation
                if m.name in members:
                    raise PodreproError(f"{path}: {m.name} appears twice in the archive (refused: readers "
                                        "disagree on which one counts)")
                members[m.name] = m
                total += m.size
                if total > MAX_ARCHIVE_BYTES:
                    raise PodreproError(f"{path} unpacks to more than {MAX_ARCHIVE_BYTES // 1024**3} GiB: refused")
            mf = members.get("manifest.json")
            if mf is None:
                raise PodreproError(f"{path} is not a podrepro export (no manifest.json)",
                                    hint="create one with 'podrepro image export ARCH -o FILE'")
            manifest = json.loads(_read_json_member(tf, mf, path))
            if not isinstance(manifest, list) or len(manifest) != 1:
                raise PodreproError(f"{path} must hold exactly one image")
            cfg_name = manifest[0]["Config"]
            raw = _read_json_member(tf, members[cfg_name], path)
            digest_ok = cfg_name.removesuffix(".json").rsplit("/", 1)[-1]
            if len(digest_ok) == 64 and hashlib.sha256(raw).hexdigest() != digest_ok:
                raise PodreproError(f"{path}: image config does not match its digest (corrupted)")
            conf = json.loads(raw)
    except (tarfile.TarError, EOFError, OSError, KeyError, ValueError, TypeError) as e:
        raise PodreproError(f"{path} is truncated or not an image archive ({e.__class__.__name__}: {e})",
                            hint="export it again with 'podrepro image export'") from None
    labels = (conf.get("config") or {}).get("Labels") or {}
    return ArchiveMeta(tuple(manifest[0].get("RepoTags") or ()), dict(labels),
                       str(conf.get("architecture", "")), str(conf.get("variant", "")), str(conf.get("os", "")))


def check_labels(labels: dict[str, str], architecture: str, where: str) -> tuple[Arch, str]:
    """Recipe labels are present, self-consistent and agree with the image's platform.
    Returns (arch, content-hash tag)."""
    L = LABEL
    need = [f"{L}.recipe", f"{L}.hash", f"{L}.arch", f"{L}.profile", f"{L}.kind"]
    if any(k not in labels for k in need):
        raise PodreproError(f"{where} is not a podrepro image (no recipe labels)",
                            hint="only images made by 'podrepro image export/push' can be imported")
    try:
        recipe = json.loads(labels[f"{L}.recipe"])
    except ValueError:
        raise PodreproError(f"{where}: the recipe label is not JSON") from None
    if content_hash(recipe)[:12] != labels[f"{L}.hash"]:
        raise PodreproError(f"{where}: the recipe does not match its hash (edited or corrupted)")
    try:
        arch = lookup(labels[f"{L}.arch"])
    except UsageError:
        raise PodreproError(f"{where}: unknown architecture {labels[f'{L}.arch']!r} in the recipe") from None
    if recipe.get("arch") not in (None, arch.alias) or architecture != arch.oci_arch:
        raise PodreproError(f"{where}: the recipe says {labels[f'{L}.arch']} ({arch.oci_arch}) "
                            f"but the image is {architecture or 'unknown'}",
                            hint="the archive was tampered with or mislabelled; export it again")
    return arch, image_tag(labels[f"{L}.kind"], labels[f"{L}.profile"], arch.alias, labels[f"{L}.hash"])


def import_archive(engine: Podman, builder: Builder, path: Path) -> str:
    meta = read_archive(path)
    arch, tag = check_labels(meta.labels, meta.architecture, str(path))
    if meta.tags and tag not in meta.tags:
        raise PodreproError(f"{path}: archive is tagged {', '.join(meta.tags)}, its recipe says {tag}")
    others = [t for t in meta.tags if t != tag]
    if others:
        # loading them would re-point those names (docker.io/library/debian:bookworm, say) at
        # this image for every later podman user of the store
        raise PodreproError(f"{path}: the archive also names {', '.join(others)}; podrepro imports only {tag}",
                            hint="export it again with 'podrepro image export' (one name per archive)")
    existing = engine.inspect(tag)
    if existing is not None:
        return tag  # same content hash: already here, nothing to do
    ids = engine.load(path)
    try:
        builder.verify(tag, arch)
    except BaseException:
        for i in ids:
            with contextlib.suppress(Exception):
                engine.remove_image(i, force=True)
        with contextlib.suppress(Exception):
            engine.remove_image(tag, force=True)
        raise
    info = engine.inspect(tag)
    _index(builder.paths, tag, meta.labels, info, "imported")
    return tag


def record_imported(paths: Paths, tag: str, labels: dict[str, str], info: ImageInfo | None) -> None:
    """An image loaded from a repro bundle, in the index like an imported one."""
    _index(paths, tag, labels, info, "imported")


def _index(paths: Paths, tag: str, labels: dict[str, str], info: ImageInfo | None, origin: str) -> None:
    """``origin``: imported or pulled. Such an image is never a seed for a local bootstrap (its
    root filesystem is someone else's), and `image ls` says where it came from."""
    L = LABEL
    Index(paths).update(tag, origin=origin, hash=labels.get(f"{L}.hash"), arch=labels.get(f"{L}.arch"),
                        profile=labels.get(f"{L}.profile"), kind=labels.get(f"{L}.kind"),
                        recipe=recipe_label(labels), size=info.size if info else 0, created=timestamp(),
                        last_used=timestamp(), id=info.id if info else "")


def push(engine: Podman, tag: str, ref: str) -> None:
    if engine.inspect(tag) is None:
        raise UsageError(f"image {tag} does not exist", hint="build it first: podrepro image build ARCH")
    engine.push(tag, ref)


def pull(engine: Podman, builder: Builder, ref: str) -> str:
    # what the user already had under that name stays theirs, whatever the pull brings
    had = engine.inspect(ref)
    engine.pull(ref)
    info = engine.inspect(ref)
    try:
        if info is None:
            raise EngineError(f"{ref} vanished after the pull")
        arch, tag = check_labels(dict(info.labels), info.architecture, ref)
        if engine.inspect(tag) is None:
            engine.tag(ref, tag)
            try:
                builder.verify(tag, arch)
            except BaseException:
                engine.remove_image(tag, force=True)
                raise
        _index(builder.paths, tag, dict(info.labels), engine.inspect(tag), "pulled")
        return tag
    finally:
        with contextlib.suppress(Exception):
            if had is not None:
                if info is None or info.id != had.id:
                    engine.tag(had.id, ref)  # the name points at the user's image again
            else:
                engine.remove_image(ref)  # untag the registry name; the content tag keeps the image
