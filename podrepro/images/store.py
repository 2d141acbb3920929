"""The images podrepro has: listing them with their status, removing and pruning them."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from podrepro.arches import ARCHES
from podrepro.config import Config
from podrepro.engine import process
from podrepro.engine.podman import Podman
from podrepro.errors import EngineError, PodreproError, UsageError
from podrepro.images.index import Index
from podrepro.images.recipe import (
    LABEL,
    REPO,
    TMP_REPO,
    base_recipe,
    content_hash,
    profile_recipes,
    recipe_label,
    resolve_mirror,
    resolve_suite,
)
from podrepro.images.seed import remove_stale_seed_containers
from podrepro.images.target import cross_target
from podrepro.paths import Paths
from podrepro.reporting import Notify


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
    origin: str = "?"     # built (here) | imported | pulled | ? (before podrepro recorded it)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def current_tags(cfg: Config) -> set[str]:
    """Tags the current configuration would use: every arch's base, and its profile image."""
    from podrepro.profiles import builtin_names, resolve_profile

    out: set[str] = set()
    names = set(builtin_names()) | set(cfg.profiles)
    for arch in ARCHES:
        try:
            base = base_recipe(arch, resolve_suite(arch, cfg["suite"]), cfg["variant"],
                               installer=cfg["installer"], mirror=resolve_mirror(cfg["mirror"])[0])
        except PodreproError:
            continue
        out.add(base.tag)
        for n in names:
            with contextlib.suppress(PodreproError):
                prof = resolve_profile(n, cfg.profiles)
                out |= {r.tag for r in profile_recipes(base, prof)}
                # hybrid builds: the amd64 base of the suite and the profile's cross image
                host_base, cross = cross_target(cfg, arch, prof, base.suite)
                out |= {host_base.tag, cross.tag}
    return out


def list_rows(cfg: Config, engine: Podman, paths: Paths, warn: Notify | None = None) -> list[Row]:
    """Every podrepro image with its status:
    current — what the current configuration uses; custom — built from --from-rootfs/--base
    (or on such a base), kept by ``prune`` unless ``--all``; stale — an older recipe.
    A corrupted index is set aside and rebuilt from the images' labels (``warn`` says so)."""
    index = Index(paths)
    idx = index.all()
    current = current_tags(cfg)
    infos = [i for i in engine.list_images(f"{LABEL}.hash")]
    if index.warning is not None:
        idx = index.rebuild(infos)
        if warn is not None:
            warn(index.warning)
    custom_bases: set[str] = set()
    for info in infos:
        rec = recipe_label(info.labels)
        if rec.get("kind") == "base" and rec.get("source") in ("rootfs", "ref"):
            custom_bases.add(content_hash(rec))
    rows: list[Row] = []
    for info in infos:
        rec = recipe_label(info.labels)
        for tag in info.tags:
            if not tag.startswith(REPO + "/") or tag.startswith(TMP_REPO + ":"):
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
                tag=tag, arch=lb.get(f"{LABEL}.arch", "?"), profile=lb.get(f"{LABEL}.profile", "?"),
                kind=lb.get(f"{LABEL}.kind", "?"), hash=lb.get(f"{LABEL}.hash", "?"),
                size=info.size, created=entry.get("created") or info.created, last_used=entry.get("last_used", ""),
                status=status, id=info.id[:12], origin=str(entry.get("origin") or "?"),
            ))
    rows.sort(key=lambda r: (r.arch, r.profile, r.tag))
    return rows


def resolve_ref(cfg: Config, ref: str, profile: str | None) -> str:
    """A full tag as is; an architecture name → the current recipe's tag for it."""
    if "/" in ref or ":" in ref:
        return ref
    from podrepro.images.target import target

    return target(cfg, ref, profile).recipe.tag


def remove(engine: Podman, paths: Paths, tag: str) -> bool:
    if not tag.startswith(REPO + "/"):
        raise UsageError(f"{tag} is not a podrepro image", hint="podrepro only removes images under localhost/podrepro/")
    gone = engine.remove_image(tag)
    Index(paths).remove(tag)
    return gone


def prune(cfg: Config, engine: Podman, paths: Paths, dry_run: bool = False, all_: bool = False,
          warn: Notify | None = None) -> tuple[list[str], list[str]]:
    """Remove stale images (all podrepro images with ``all_``), leftover temporary ones and
    untagged podrepro images.

    Never forced: an image a running container uses is kept (and reported), so a prune can't
    break a run in progress."""
    removed, kept = [], []
    if not dry_run:  # a killed seeded bootstrap's export container would keep its image
        removed += [f"container {n}" for n in remove_stale_seed_containers(engine)]
    for r in list_rows(cfg, engine, paths, warn):
        if r.status in ("current", "custom") and not all_:
            continue
        if dry_run:
            removed.append(r.tag)
            continue
        try:
            engine.remove_image(r.tag)
            Index(paths).remove(r.tag)
            removed.append(r.tag)
        except EngineError as e:
            kept.append(f"{r.tag} ({e.message})")
    for info in engine.list_images(f"{LABEL}.hash"):
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
            if tag.startswith(TMP_REPO + ":") and _tmp_is_orphaned(tag):
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
