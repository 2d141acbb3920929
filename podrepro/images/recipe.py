"""Recipes and their content hashes: what decides an image's content, and the tag it names."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro import __version__
from podrepro.arches import Arch
from podrepro.engine import bootstrap
from podrepro.errors import UsageError
from podrepro.profiles import Profile

RECIPE_VERSION = 1
REPO = "localhost/podrepro"
TMP_REPO = f"{REPO}/tmp"
LABEL = "io.podrepro"


def canonical_json(data: Mapping[str, Any]) -> str:
    """A recipe as it is hashed and as its label carries it: sorted keys, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def content_hash(data: Mapping[str, Any]) -> str:
    """The SHA-256 of a recipe's canonical JSON: the hash that names its image."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def image_tag(kind: str, profile: str, alias: str, hash12: str) -> str:
    """``localhost/podrepro/<base|profile|cross-profile>:<arch>-<hash12>`` (a cross image is
    named after the architecture it builds for, though it runs natively; a base bootstrapped
    with a profile's packages is named after the profile)."""
    repo = f"cross-{profile}" if kind == "cross" else profile
    return f"{REPO}/{repo}:{alias}-{hash12}"


def recipe_label(labels: Mapping[str, str]) -> dict[str, Any]:
    """The recipe an image's labels carry; {} when it has none (or not a JSON object)."""
    try:
        data = json.loads(labels.get(f"{LABEL}.recipe", "{}"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Recipe:
    kind: str                   # "base" or "profile"
    arch: Arch
    suite: str
    variant: str
    profile: str
    data: Mapping[str, Any]     # the hashed content
    target: Arch | None = None  # kind "cross": the architecture it builds for (``arch`` is the host)

    @property
    def digest(self) -> str:
        return content_hash(self.data)

    @property
    def hash12(self) -> str:
        return self.digest[:12]

    @property
    def tag(self) -> str:
        return image_tag(self.kind, self.profile, (self.target or self.arch).alias, self.hash12)

    def labels(self) -> dict[str, str]:
        return {
            f"{LABEL}.recipe": canonical_json(self.data),
            f"{LABEL}.hash": self.hash12,
            f"{LABEL}.arch": (self.target or self.arch).alias,
            f"{LABEL}.platform": self.arch.oci_platform,
            f"{LABEL}.profile": self.profile,
            f"{LABEL}.kind": self.kind,
            f"{LABEL}.suite": self.suite,
            f"{LABEL}.podrepro-version": __version__,
        }


@dataclass(frozen=True)
class BaseSource:
    """Where the base comes from: mmdebstrap (default), a rootfs tarball, or a registry ref."""

    kind: str = "mmdebstrap"         # "mmdebstrap" | "rootfs" | "ref"
    value: str | None = None         # rootfs path or image ref
    digest: str | None = None        # sha256 of the rootfs tarball


def base_recipe(arch: Arch, suite: str, variant: str, source: BaseSource = BaseSource(),
                installer: str = "host-dpkg", mirror: str | None = None, include: tuple[str, ...] = (),
                profile: str = "base") -> Recipe:
    """``mirror``: where the packages come from (None: mmdebstrap's default); part of the hash, so
    a base from another mirror never shares a tag with this one. ``include``: a profile's packages,
    bootstrapped into the base (installed like the base's own: see ``packages_recipe``)."""
    data: dict[str, Any] = {
        "kind": "base", "recipe_version": RECIPE_VERSION, "arch": arch.alias, "debian_arch": arch.debian,
        "platform": arch.oci_platform, "suite": suite, "variant": variant, "source": source.kind,
    }
    if source.kind == "mmdebstrap":
        data["installer"] = installer  # how mmdebstrap's packages get installed (bootstrap.INSTALLERS)
        data["mirror"] = mirror or "mmdebstrap-default"
        if installer == "host-dpkg" and variant in bootstrap.VARIANT_PACKAGES and bootstrap.merged_usr(suite):
            data["merged_usr"] = "usr-is-merged"  # set up before extraction, not converted by usrmerge
    elif source.kind == "rootfs":
        data["rootfs_sha256"] = source.digest
    elif source.kind == "ref":
        data["ref"] = source.value
    if include:
        data["include"] = sorted(set(include))
        data["profile"] = profile
    return Recipe("base", arch, suite, variant, profile if include else "base", data)


def _bootstrap(base: Recipe, include: tuple[str, ...] = (), profile: str = "base") -> Recipe:
    """A bootstrapped base like ``base`` (arch, suite, variant, installer, mirror), with ``include``."""
    mirror = base.data.get("mirror")
    return base_recipe(base.arch, base.suite, base.variant, BaseSource(), str(base.data.get("installer", "host-dpkg")),
                       None if mirror in (None, "mmdebstrap-default") else str(mirror), include, profile)


def plain_base(recipe: Recipe) -> Recipe:
    """The base a profile's package base (``packages_recipe``) was made from: what seeds it."""
    return _bootstrap(recipe)


def packages_recipe(base: Recipe, profile: Profile) -> Recipe | None:
    """The profile's apt packages (its built-in list and its ``packages``) bootstrapped into the
    base the same way as the base's own: one resolution and download by mmdebstrap, the host's
    dpkg unpacking (installer ``host-dpkg``; only maintainer scripts and triggers emulated), and
    seeded from the cached base, so a profile never installs the base again. None when the
    profile has no packages or the base was not bootstrapped (a rootfs or a pulled base: its
    packages go into a Containerfile layer instead)."""
    pkgs = profile.all_packages
    if not pkgs or base.data.get("source") != "mmdebstrap" or base.data.get("include"):
        return None
    return _bootstrap(base, pkgs, profile.name)


def profile_recipes(base: Recipe, profile: Profile) -> tuple[Recipe, Recipe]:
    """(start, image) of a profile: ``start`` is the profile's package base (or ``base`` when it
    has none), ``image`` the profile's image: ``start`` itself, or its Containerfile layered on it."""
    start = packages_recipe(base, profile)
    # packages not bootstrapped (a rootfs or pulled base) are installed by a layer
    layer_packages = profile.all_packages if start is None else ()
    start = start or Recipe("base", base.arch, base.suite, base.variant, "base", base.data)
    cf = profile.containerfile_path()
    if cf is None and layer_packages:
        from podrepro.profiles import containerfiles_dir

        cf = containerfiles_dir() / PACKAGES_CONTAINERFILE
    if cf is None:
        return start, start
    if not cf.is_file():
        raise UsageError(f"profile {profile.name!r}: Containerfile {profile.containerfile!r} not found",
                         hint="fix 'containerfile' in podrepro.toml")
    data = {
        "kind": "profile", "recipe_version": RECIPE_VERSION, "base": start.digest, "profile": profile.name,
        "containerfile_sha256": hashlib.sha256(cf.read_bytes()).hexdigest(),
        "packages": sorted(layer_packages),
    }
    return start, Recipe("profile", base.arch, base.suite, base.variant, profile.name, data)


def profile_recipe(base: Recipe, profile: Profile) -> Recipe:
    return profile_recipes(base, profile)[1]


PACKAGES_CONTAINERFILE = "packages.Containerfile"


CROSS_CONTAINERFILE = "cross.Containerfile"


def cross_recipe(host_base: Recipe, target: Arch, profile: Profile, native: tuple[str, ...],
                 for_target: tuple[str, ...]) -> Recipe:
    """The cross image of ``profile`` for ``target``: ``host_base`` (an amd64 base of the target's
    suite) with the cross toolchain, the build tools (``native``) and the target's libraries
    through multiarch (``for_target``, qualified ``:<debarch>``)."""
    from podrepro.profiles import containerfiles_dir

    cf = containerfiles_dir() / CROSS_CONTAINERFILE
    data = {
        "kind": "cross", "recipe_version": RECIPE_VERSION, "base": host_base.digest, "profile": profile.name,
        "target": target.alias, "target_debian_arch": target.debian,
        "containerfile_sha256": hashlib.sha256(cf.read_bytes()).hexdigest(),
        "native_packages": sorted(native), "target_packages": sorted(for_target),
    }
    return Recipe("cross", host_base.arch, host_base.suite, host_base.variant, profile.name, data, target=target)


def resolve_suite(arch: Arch, configured: str) -> str:
    return arch.suite if configured in ("", "auto") else configured


def resolve_mirror(configured: str) -> tuple[str | None, str]:
    """(mirror or None for mmdebstrap's default, where it came from)."""
    if configured not in ("", "auto"):
        return configured, "configured"
    host = bootstrap.host_debian_mirror()
    if host:
        return host, "host apt sources"
    return None, "mmdebstrap default"


def sha256_file(path: Path, cb: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            if cb:
                cb(len(chunk))
    return h.hexdigest()
