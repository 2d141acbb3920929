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

    def check_private(self) -> None:
        """The cache dir holds what podrepro later trusts (run plans it unmarshals and execs, the
        compiled binfmt shim, the image index): refuse one that is another user's or that others
        may write to. A missing dir is fine (podrepro makes it, 0700 by the umask of most users)."""
        check_private_dir(self.cache, "PODREPRO_CACHE_DIR")

    def ensure_cache(self) -> Path:
        self.check_private()
        self.cache.mkdir(parents=True, exist_ok=True)
        tag = self.cache / "CACHEDIR.TAG"
        if not tag.exists():
            tag.write_text(CACHEDIR_TAG)
        return self.cache

    @property
    def index_file(self) -> Path:
        return self.cache / "images.json"

    def debs(self, debian_arch: str, suite: str, containerfile: Path | None = None) -> Path:
        """The .deb cache of one suite and architecture. Shared by bootstraps and podrepro's own
        profile layers (where only apt, from the signed archive, writes to it); a project's own
        Containerfile gets one of its own (``containerfile`` given): apt takes a cached .deb of
        the right name and size without checking its hash, so a RUN step that could write to the
        shared cache could plant a package that another project's image then installs."""
        if containerfile is None:
            return self.cache / "debs" / f"{suite}-{debian_arch}"
        import hashlib

        key = hashlib.sha256(str(containerfile.resolve()).encode()).hexdigest()[:16]
        return self.cache / "debs-project" / key / f"{suite}-{debian_arch}"

    def ccache(self, alias: str, project: Path | None = None) -> Path:
        """Per architecture and, given ``project``, per project: one project's build cannot plant
        a cache entry (an object for another's source) that a second project then links."""
        d = self.cache / "ccache" / alias
        if project is None:
            return d
        import hashlib

        return d / hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:16]

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def locks(self) -> Path:
        return self.state / "locks"


def private_dir_problem(path: Path | str) -> str | None:
    """Why ``path`` (a directory podrepro trusts) is not private to this user, or None."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"cannot be checked ({e.strerror})"
    if st.st_uid != os.getuid():
        return f"belongs to uid {st.st_uid}, not to you (uid {os.getuid()})"
    if st.st_mode & 0o022:
        return f"is writable by {'others' if st.st_mode & 0o002 else 'its group'} (mode {st.st_mode & 0o777:o})"
    return None


def check_private_dir(path: Path, var: str) -> None:
    why = private_dir_problem(path)
    if why is not None:
        from podrepro.errors import PodreproError

        raise PodreproError(f"podrepro's directory {path} {why}",
                            hint=f"chmod go-w {path} if it is yours, or point {var} at a directory of your own")


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
