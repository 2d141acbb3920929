"""The image a configuration asks for: an architecture, a profile and a base source, resolved
into the recipes of the base and of the profile's layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from podrepro.arches import Arch, lookup
from podrepro.config import Config
from podrepro.errors import UsageError
from podrepro.images.recipe import (
    BaseSource,
    Recipe,
    base_recipe,
    cross_recipe,
    profile_recipes,
    resolve_mirror,
    resolve_suite,
    sha256_file,
)
from podrepro.profiles import Profile, resolve_profile


@dataclass(frozen=True)
class Target:
    arch: Arch
    profile: Profile
    base: Recipe
    recipe: Recipe
    source: BaseSource
    start: Recipe | None = None   # what the profile's layer goes on: its package base, or ``base``

    @property
    def layer_base(self) -> Recipe:
        return self.start or self.base


def target(cfg: Config, arch_name: str, profile_name: str | None = None,
           source: BaseSource = BaseSource()) -> Target:
    arch = lookup(arch_name)
    prof = resolve_profile(profile_name or cfg["profile"], cfg.profiles)
    suite = resolve_suite(arch, cfg["suite"])
    if arch.alias in ("mips", "mips64el") and suite not in ("bookworm", "bullseye", "buster"):
        raise UsageError(f"Debian {suite} has no {arch.debian} port; bookworm is the last suite with it",
                         hint="use --suite bookworm (the default for this architecture)")
    base = base_recipe(arch, suite, cfg["variant"], source, cfg["installer"], resolve_mirror(cfg["mirror"])[0])
    start, image = profile_recipes(base, prof)
    return Target(arch, prof, base, image, source, start)


def cross_target(cfg: Config, arch: Arch, profile: Profile, suite: str) -> tuple[Recipe, Recipe]:
    """(the amd64 base, the cross image) that builds ``profile`` for ``arch`` natively:
    an amd64 Debian of the target's suite, Debian's cross toolchain for it, the profile's tools
    natively and its libraries for the target (``podrepro.cross``). A one-line error when Debian
    has no cross toolchain for the architecture in that suite."""
    from podrepro import cross
    from podrepro.arches import HOST

    tc = cross.toolchain(arch, suite)
    native, for_target = cross.split_packages([*profile.cross_packages, *profile.packages], arch.debian)
    host_base = base_recipe(HOST, suite, cfg["variant"], BaseSource(), cfg["installer"],
                            resolve_mirror(cfg["mirror"])[0])
    return host_base, cross_recipe(host_base, arch, profile, native, (*tc.packages, *for_target))


def rootfs_source(path: Path) -> BaseSource:
    if not path.is_file():
        raise UsageError(f"--from-rootfs {path}: no such file")
    return BaseSource("rootfs", str(path.resolve()), sha256_file(path))
