"""Listing, removing, pruning, exporting, importing, pushing and pulling podrepro images.

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
from typing import Any

from podrepro import images
from podrepro.arches import ARCHES, Arch, lookup
from podrepro.config import Config
from podrepro.engine import process
from podrepro.engine.podman import ImageInfo, Podman
from podrepro.errors import EngineError, PodreproError, UsageError
from podrepro.paths import Paths


@dataclass(frozen=True)
class Row:
    tag: str
    arch: str
    profile: str
    kind: str
    hash: str
    size: int
    created: str
    last_used: str
    status: str           # current | custom | stale
    id: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def current_tags(cfg: Config) -> set[str]:
    """Tags the current configuration would use: every arch's base, and its profile image."""
    from podrepro.profiles import builtin_names, resolve_profile

    out: set[str] = set()
    names = set(builtin_names()) | set(cfg.profiles)
    for arch in ARCHES:
        try:
            base = images.base_recipe(arch, images.resolve_suite(arch, cfg["suite"]), cfg["variant"],
                                      installer=cfg["installer"])
        except PodreproError:
            continue
        out.add(base.tag)
        for n in names:
            with contextlib.suppress(PodreproError):
                out.add(images.profile_recipe(base, resolve_profile(n, cfg.profiles)).tag)
    return out


def list_rows(cfg: Config, engine: Podman, paths: Paths) -> list[Row]:
    """Every podrepro image with its status:
    current — what the current configuration uses; custom — built from --from-rootfs/--base
    (or on such a base), kept by ``prune`` unless ``--all``; stale — an older recipe."""
    idx = images.Index(paths).all()
    current = current_tags(cfg)
    infos = [i for i in engine.list_images(f"{images.LABEL}.hash")]
    custom_bases: set[str] = set()
    for info in infos:
        rec = _recipe(info)
        if rec.get("kind") == "base" and rec.get("source") in ("rootfs", "ref"):
            blob = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
            custom_bases.add(hashlib.sha256(blob).hexdigest())
    rows: list[Row] = []
    for info in infos:
        rec = _recipe(info)
        for tag in info.tags:
            if not tag.startswith(images.REPO + "/") or tag.startswith(images.TMP_REPO + ":"):
                continue
            if tag in current:
                status = "current"
            elif rec.get("source") in ("rootfs", "ref") or rec.get("base") in custom_bases:
                status = "custom"
            else:
                status = "stale"
            entry = idx.get(tag, {})
            lb = info.labels
            rows.append(Row(
                tag=tag, arch=lb.get(f"{images.LABEL}.arch", "?"), profile=lb.get(f"{images.LABEL}.profile", "?"),
                kind=lb.get(f"{images.LABEL}.kind", "?"), hash=lb.get(f"{images.LABEL}.hash", "?"),
                size=info.size, created=entry.get("created") or info.created, last_used=entry.get("last_used", ""),
                status=status, id=info.id[:12],
            ))
    rows.sort(key=lambda r: (r.arch, r.profile, r.tag))
    return rows


def _recipe(info: ImageInfo) -> dict[str, Any]:
    try:
        rec = json.loads(info.labels.get(f"{images.LABEL}.recipe", "{}"))
        return rec if isinstance(rec, dict) else {}
    except ValueError:
        return {}


def resolve_ref(cfg: Config, ref: str, profile: str | None) -> str:
    """A full tag as is; an architecture name → the current recipe's tag for it."""
    if "/" in ref or ":" in ref:
        return ref
    from podrepro.workflows import target

    return target(cfg, ref, profile).recipe.tag


def remove(engine: Podman, paths: Paths, tag: str) -> bool:
    if not tag.startswith(images.REPO + "/"):
        raise UsageError(f"{tag} is not a podrepro image", hint="podrepro only removes images under localhost/podrepro/")
    gone = engine.remove_image(tag)
    images.Index(paths).remove(tag)
    return gone


def prune(cfg: Config, engine: Podman, paths: Paths, dry_run: bool = False, all_: bool = False) -> tuple[list[str], list[str]]:
    """Remove stale images (all podrepro images with ``all_``), leftover temporary ones and
    untagged podrepro images.

    Never forced: an image a running container uses is kept (and reported), so a prune can't
    break a run in progress."""
    removed, kept = [], []
    if not dry_run:  # a killed seeded bootstrap's export container would keep its image
        removed += [f"container {n}" for n in images.remove_stale_seed_containers(engine)]
    for r in list_rows(cfg, engine, paths):
        if r.status in ("current", "custom") and not all_:
            continue
        if dry_run:
            removed.append(r.tag)
            continue
        try:
            engine.remove_image(r.tag)
            images.Index(paths).remove(r.tag)
            removed.append(r.tag)
        except EngineError as e:
            kept.append(f"{r.tag} ({e.message})")
    for info in engine.list_images(f"{images.LABEL}.hash"):
        if not info.tags:
            # a podrepro image whose tag moved on (a --rebuild while it had children or was in
            # use): nothing can name it any more; removed once nothing uses it
            if dry_run:
                removed.append(f"untagged {info.id[:12]}")
                continue
            with contextlib.suppress(EngineError):
                if engine.remove_image(info.id, force=False):
                    removed.append(f"untagged {info.id[:12]}")
            continue
        for tag in info.tags:
            if tag.startswith(images.TMP_REPO + ":") and _tmp_is_orphaned(tag):
                if not dry_run:
                    with contextlib.suppress(EngineError):
                        engine.remove_image(tag, force=False)
                removed.append(tag)
    return removed, kept


def _tmp_is_orphaned(tag: str) -> bool:
    """tmp tags are ``<hash>-<pid>-<rand>``: orphaned when that pid is gone (or it has none)."""
    parts = tag.rsplit(":", 1)[-1].split("-", 1)
    if len(parts) < 2 or not parts[1].split("-")[0].isdigit():
        return True
    return process.owner_gone(parts[1])


# ---- export / import ----------------------------------------------------------------------------

def export(engine: Podman, tag: str, out: Path) -> Path:
    if engine.inspect(tag) is None:
        raise UsageError(f"image {tag} does not exist", hint="build it first: podrepro image build ARCH")
    if out.exists() and out.is_dir():
        raise UsageError(f"-o {out}: is a directory")
    tmp = out.with_name(f".{out.name}.part")
    try:
        engine.save(tag, tmp)
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


def read_archive(path: Path) -> ArchiveMeta:
    """Manifest + image config of a docker-archive, without loading it (and fully checksummed:
    a truncated file fails here)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        with tarfile.open(path, mode="r:*") as tf:
            members = {m.name: m for m in tf}  # walks the whole archive: catches truncation
            mf = tf.extractfile(members["manifest.json"]) if "manifest.json" in members else None
            if mf is None:
                raise PodreproError(f"{path} is not a podrepro export (no manifest.json)",
                                    hint="create one with 'podrepro image export ARCH -o FILE'")
            manifest = json.loads(mf.read())
            if not isinstance(manifest, list) or len(manifest) != 1:
                raise PodreproError(f"{path} must hold exactly one image")
            cfg_name = manifest[0]["Config"]
            cf = tf.extractfile(members[cfg_name])
            if cf is None:
                raise PodreproError(f"{path}: image config missing")
            raw = cf.read()
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
    L = images.LABEL
    need = [f"{L}.recipe", f"{L}.hash", f"{L}.arch", f"{L}.profile", f"{L}.kind"]
    if any(k not in labels for k in need):
        raise PodreproError(f"{where} is not a podrepro image (no recipe labels)",
                            hint="only images made by 'podrepro image export/push' can be imported")
    try:
        recipe = json.loads(labels[f"{L}.recipe"])
    except ValueError:
        raise PodreproError(f"{where}: the recipe label is not JSON") from None
    blob = json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()
    if hashlib.sha256(blob).hexdigest()[:12] != labels[f"{L}.hash"]:
        raise PodreproError(f"{where}: the recipe does not match its hash (edited or corrupted)")
    try:
        arch = lookup(labels[f"{L}.arch"])
    except UsageError:
        raise PodreproError(f"{where}: unknown architecture {labels[f'{L}.arch']!r} in the recipe") from None
    if recipe.get("arch") not in (None, arch.alias) or architecture != arch.oci_arch:
        raise PodreproError(f"{where}: the recipe says {labels[f'{L}.arch']} ({arch.oci_arch}) "
                            f"but the image is {architecture or 'unknown'}",
                            hint="the archive was tampered with or mislabelled; export it again")
    repo = "base" if labels[f"{L}.kind"] == "base" else labels[f"{L}.profile"]
    return arch, f"{images.REPO}/{repo}:{arch.alias}-{labels[f'{L}.hash']}"


def import_archive(engine: Podman, builder: images.Builder, path: Path) -> str:
    meta = read_archive(path)
    arch, tag = check_labels(meta.labels, meta.architecture, str(path))
    if meta.tags and tag not in meta.tags:
        raise PodreproError(f"{path}: archive is tagged {', '.join(meta.tags)}, its recipe says {tag}")
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
    _index(builder.paths, tag, meta.labels, info)
    return tag


def _index(paths: Paths, tag: str, labels: dict[str, str], info: ImageInfo | None) -> None:
    L = images.LABEL
    images.Index(paths).update(tag, hash=labels.get(f"{L}.hash"), arch=labels.get(f"{L}.arch"),
                               profile=labels.get(f"{L}.profile"), kind=labels.get(f"{L}.kind"),
                               recipe=json.loads(labels.get(f"{L}.recipe", "{}")),
                               size=info.size if info else 0, created=images._now(), last_used=images._now(),
                               id=info.id if info else "")


def push(engine: Podman, tag: str, ref: str) -> None:
    if engine.inspect(tag) is None:
        raise UsageError(f"image {tag} does not exist", hint="build it first: podrepro image build ARCH")
    engine.push(tag, ref)


def pull(engine: Podman, builder: images.Builder, ref: str) -> str:
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
        _index(builder.paths, tag, dict(info.labels), engine.inspect(tag))
        return tag
    finally:
        with contextlib.suppress(Exception):
            engine.remove_image(ref)  # untag the registry name; the content tag keeps the image
