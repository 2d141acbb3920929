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
    profile_recipe,
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


def target(cfg: Config, arch_name: str, profile_name: str | None = None,
           source: BaseSource = BaseSource()) -> Target:
    arch = lookup(arch_name)
    prof = resolve_profile(profile_name or cfg["profile"], cfg.profiles)
    suite = resolve_suite(arch, cfg["suite"])
    if arch.alias in ("mips", "mips64el") and suite not in ("bookworm", "bullseye", "buster"):
        raise UsageError(f"Debian {suite} has no {arch.debian} port; bookworm is the last suite with it",
                         hint="use --suite bookworm (the default for this architecture)")
    base = base_recipe(arch, suite, cfg["variant"], source, cfg["installer"], resolve_mirror(cfg["mirror"])[0])
    return Target(arch, prof, base, profile_recipe(base, prof), source)


def rootfs_source(path: Path) -> BaseSource:
    if not path.is_file():
        raise UsageError(f"--from-rootfs {path}: no such file")
    return BaseSource("rootfs", str(path.resolve()), sha256_file(path))
