"""The debugger's image: gdb-multiarch for the host's architecture, so nothing has to be
installed on the host (Fedora, for one, ships no gdb-multiarch). An amd64 Debian base of the
target's suite with the package bootstrapped in (``recipe.base_recipe``'s ``include``), seeded
from the cached amd64 base like any profile's package base: about 20 s the first time."""

from __future__ import annotations

from podrepro.arches import HOST
from podrepro.config import Config
from podrepro.images.recipe import BaseSource, Recipe, base_recipe, resolve_mirror

PROFILE = "tools"
PACKAGES = ("gdb-multiarch",)


def recipe(cfg: Config, suite: str) -> Recipe:
    return base_recipe(HOST, suite, cfg["variant"], BaseSource(), cfg["installer"],
                       resolve_mirror(cfg["mirror"])[0], PACKAGES, PROFILE)

HOST_PLATFORM = HOST.oci_platform
