"""User-scoped directories (platformdirs), each overridable by an environment variable.

PODREPRO_CACHE_DIR   images index, per-arch .deb package caches, ccache dirs (gets a CACHEDIR.TAG)
PODREPRO_CONFIG_DIR  the user config file (config.toml)
PODREPRO_STATE_DIR   logs of builds and bootstraps, locks
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP = "podrepro"

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by podrepro.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


@dataclass(frozen=True)
class Paths:
    cache: Path
    config: Path
    state: Path

    @property
    def config_file(self) -> Path:
        return self.config / "config.toml"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def locks(self) -> Path:
        return self.state / "locks"

    @property
    def index_file(self) -> Path:
        return self.cache / "images.json"

    def debs(self, debian_arch: str, suite: str) -> Path:
        return self.cache / "debs" / f"{suite}-{debian_arch}"

    def ccache(self, alias: str) -> Path:
        return self.cache / "ccache" / alias

    def ensure_cache(self) -> Path:
        self.cache.mkdir(parents=True, exist_ok=True)
        tag = self.cache / "CACHEDIR.TAG"
        if not tag.exists():
            tag.write_text(CACHEDIR_TAG)
        return self.cache


def _from_env(var: str, default: str) -> Path:
    v = os.environ.get(var)
    return Path(v).expanduser() if v else Path(default)


def get_paths() -> Paths:
    import platformdirs  # lazy: keeps --help fast

    return Paths(
        cache=_from_env("PODREPRO_CACHE_DIR", platformdirs.user_cache_dir(APP)),
        config=_from_env("PODREPRO_CONFIG_DIR", platformdirs.user_config_dir(APP)),
        state=_from_env("PODREPRO_STATE_DIR", platformdirs.user_state_dir(APP)),
    )
