"""Settings and their precedence: defaults < user config file < project podrepro.toml
< PODREPRO_* environment variables < command-line flags.

``resolve`` returns every setting with its value *and* the source that set it, so
``podrepro config show`` can explain itself. A project's podrepro.toml is untrusted input (it
comes with a checkout someone else wrote): it may choose profiles, packages and commands that run
*inside* the container, but never widen what the container may touch on the host — see
``PROJECT_FORBIDDEN``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podrepro.errors import ConfigError, UsageError
from podrepro.settings import BY_NAME, SETTINGS, Setting

__all__ = ["BY_NAME", "SETTINGS", "Config", "Setting", "resolve"]

PROJECT_FILE = "podrepro.toml"
MAX_CONFIG_BYTES = 256 * 1024
# suite and mirror end up as mmdebstrap's positional arguments, and mmdebstrap parses options
# anywhere on its command line: a value starting with '-' (e.g. --customize-hook=...) would run
# a command on the host. Only plain names and URLs get through.
SUITE_RE = re.compile(r"(auto|[a-z][a-z0-9.+-]{0,63})?")
# http(s) URLs, or an absolute file:/// local mirror (not from a project file); never a path:
# mmdebstrap reads an existing file named by its mirror argument as a sources.list, which could
# carry [trusted=yes]
MIRROR_RE = re.compile(r"auto|https?://[^\s\[\]]+|file:///[^\s\[\]]+")



# Keys a project file may never set; they widen host access. Only CLI flags can.
PROJECT_FORBIDDEN = frozenset({
    "privileged", "cap_add", "capabilities", "security_opt", "userns", "volumes", "mounts",
    "devices", "network_mode", "host_network", "pid", "ipc",
    "connection",  # where the project is copied to and run: the user's choice, never a repository's
})
PROFILE_KEYS = frozenset({
    "containerfile", "packages", "build", "test", "filter_option", "build_dir", "env", "ccache",
    "extends", "description", "timeout_env", "timeout_option", "shell", "timeout_base", "results",
    "cross_build", "cross_packages", "build_mode", "test_mode",
})


@dataclass(frozen=True)
class Value:
    value: Any
    source: str


@dataclass(frozen=True)
class Config:
    values: Mapping[str, Value]
    project_root: Path
    project_file: Path | None
    user_file: Path
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # what the project file asked for and did not get (not approved with `podrepro trust`)
    notices: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Any:
        return self.values[name].value

    def source(self, name: str) -> str:
        return self.values[name].source


def _line_of(err: tomllib.TOMLDecodeError) -> int:
    m = re.search(r"line (\d+)", str(err))
    return int(m.group(1)) if m else 1


def _key_line(text: str, key: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line) or re.match(rf"\s*\[.*\b{re.escape(key)}\b.*\]", line):
            return i
    return 1


def load_toml(path: Path, display: str) -> tuple[dict[str, Any], str]:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{display}:1: file is {size} bytes; the limit is {MAX_CONFIG_BYTES}",
                              hint="a podrepro config is a few lines of TOML")
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{display}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{display}:1: not UTF-8 text", hint="save the file as UTF-8") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        msg = re.sub(r"\s*\(at end of document\)", "", msg)
        raise ConfigError(f"{display}:{_line_of(e)}: {msg}", hint="fix the TOML syntax") from None


def coerce(name: str, raw: Any, where: str) -> Any:
    s = BY_NAME[name]
    if s.kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: '{name}' must be true or false, not {raw!r}")
    if s.kind is float:
        if isinstance(raw, bool):
            raise ConfigError(f"{where}: '{name}' must be a number, not {raw!r}")
        try:
            v = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: '{name}' must be a number, not {raw!r}") from None
        if not (0 < v <= 1000):
            raise ConfigError(f"{where}: '{name}' must be between 0 and 1000, not {raw!r}")
        return v
    if s.kind is list:
        if isinstance(raw, str):
            raw = [x for x in re.split(r"[,\s]+", raw) if x]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{where}: '{name}' must be a list of strings")
        return list(raw)
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: '{name}' must be a string, not {raw!r}")
    if len(raw) > 4096 or "\0" in raw:
        raise ConfigError(f"{where}: '{name}' is not a sensible value")
    if s.choices and raw not in s.choices:
        raise ConfigError(f"{where}: '{name}' must be one of {', '.join(s.choices)}, not {raw!r}")
    if name == "suite" and not SUITE_RE.fullmatch(raw):
        raise ConfigError(f"{where}: 'suite' must be a Debian suite name such as bookworm, not {raw!r}")
    if name == "mirror" and raw and not MIRROR_RE.fullmatch(raw):
        raise ConfigError(f"{where}: 'mirror' must be an http://, https:// or file:/// URL, not {raw!r}")
    return raw


def _check_table(data: dict[str, Any], text: str, display: str, project: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in data.items():
        where = f"{display}:{_key_line(text, key)}"
        if key == "profile" and isinstance(raw, dict):
            continue  # [profile.NAME] tables; `profile = "NAME"` is the setting
        if key == "default_profile":
            # TOML cannot have both `profile = "x"` and [profile.x] tables: this spelling can
            key = "profile"
        if project and key in PROJECT_FORBIDDEN:
            raise ConfigError(
                f"{where}: '{key}' is not allowed in a project file",
                hint="options that widen host access are command-line flags only",
            )
        if key not in BY_NAME:
            raise ConfigError(f"{where}: unknown key '{key}'",
                              hint=f"known keys: {', '.join(BY_NAME)}, [profile.NAME]")
        if project and key == "mirror" and isinstance(raw, str) and raw.startswith("file:"):
            raise ConfigError(f"{where}: a project file may name only an http(s) mirror",
                              hint="a local file:/// mirror is for your own config or --mirror")
        if project and key == "network" and isinstance(raw, str) and raw == "host":
            raise ConfigError(f"{where}: network = 'host' is not allowed in a project file",
                              hint="pass --network host on the command line")
        out[key] = coerce(key, raw, where)
    return out


def _check_profiles(data: dict[str, Any], text: str, display: str, base: Path,
                    project: bool = False) -> dict[str, dict[str, Any]]:
    profs = data.get("profile", {})
    if not isinstance(profs, dict):
        return {}  # `profile = "NAME"`: the setting, checked by _check_table
    out: dict[str, dict[str, Any]] = {}
    for name, body in profs.items():
        where = f"{display}:{_key_line(text, name)}"
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", name):
            raise ConfigError(f"{where}: profile name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: [profile.{name}] must be a table")
        for k, v in body.items():
            kw = f"{display}:{_key_line(text, k)}"
            if k in PROJECT_FORBIDDEN:
                raise ConfigError(f"{kw}: '{k}' is not allowed in a profile",
                                  hint="options that widen host access are command-line flags only")
            if k not in PROFILE_KEYS:
                raise ConfigError(f"{kw}: unknown profile key '{k}'", hint=f"known: {', '.join(sorted(PROFILE_KEYS))}")
            if k in ("packages", "env", "cross_packages") and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise ConfigError(f"{kw}: '{k}' must be a list of strings")
            if k in ("build", "test", "cross_build") and not (
                isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            ):
                raise ConfigError(f"{kw}: '{k}' must be a command: a string or a list of strings")
            if k in ("containerfile", "filter_option", "build_dir", "extends", "description",
                     "timeout_env", "timeout_option", "shell", "results", "build_mode", "test_mode") and not isinstance(v, str):
                raise ConfigError(f"{kw}: '{k}' must be a string")
            if k == "timeout_base" and (isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 10**6):
                raise ConfigError(f"{kw}: 'timeout_base' must be a whole number of seconds")
            if k == "ccache" and not isinstance(v, bool):
                raise ConfigError(f"{kw}: 'ccache' must be true or false")
        body = dict(body)
        if "results" in body:
            from podrepro import results

            kind, _, rpath = body["results"].partition(":")
            if kind not in results.KINDS or not rpath or Path(rpath).is_absolute() or ".." in Path(rpath).parts:
                raise ConfigError(f"{display}:{_key_line(text, 'results')}: results must be KIND:PATH with KIND one of "
                                  f"{', '.join(results.KINDS)} and PATH inside the project",
                                  hint='e.g. results = "junit:{build_dir}/report.xml"')
        if "containerfile" in body:
            cf = (base / body["containerfile"]).resolve()
            if not cf.is_file():
                raise ConfigError(f"{display}:{_key_line(text, 'containerfile')}: "
                                  f"profile '{name}': Containerfile {body['containerfile']!r} not found",
                                  hint=f"create it or fix the path (relative to {base})")
            if project and not cf.is_relative_to(base.resolve()):
                # its directory becomes the build context: a project may not send host files there
                raise ConfigError(f"{display}:{_key_line(text, 'containerfile')}: "
                                  f"profile '{name}': Containerfile {body['containerfile']!r} is outside the project",
                                  hint="keep the Containerfile inside the project directory")
            if project:
                from podrepro.containerfile import problem

                why = problem(cf.read_text(errors="replace"))
                if why:
                    raise ConfigError(f"{display}:{_key_line(text, 'containerfile')}: profile '{name}': {why}",
                                      hint="install with RUN steps; build the project's own files with 'podrepro build'")
            body["containerfile"] = str(cf)
        if "build_dir" in body and (Path(body["build_dir"]).is_absolute() or ".." in Path(body["build_dir"]).parts):
            raise ConfigError(f"{display}:{_key_line(text, 'build_dir')}: build_dir must stay inside the project")
        out[name] = body
    return out


def _ceilings(environ: Mapping[str, str]) -> set[Path]:
    """GIT_CEILING_DIRECTORIES, as git reads it: the upward search stops below these."""
    return {Path(p) for p in environ.get("GIT_CEILING_DIRECTORIES", "").split(":") if p}


def _search_dirs(start: Path, environ: Mapping[str, str]) -> list[Path]:
    """``start`` and its parents, up to the git top level (the first directory with a ``.git``)
    or a GIT_CEILING_DIRECTORIES entry, whichever comes first; to ``/`` outside a repository."""
    ceilings = _ceilings(environ)
    out = []
    for d in (start, *start.parents):
        if d in ceilings:
            break
        out.append(d)
        if (d / ".git").exists():
            break
    return out


def trusted_owner(path: Path) -> bool:
    """A project file counts only if it belongs to this user (or root): a podrepro.toml that
    another local user planted in a shared directory (/tmp/podrepro.toml) must not configure
    everyone's runs below it."""
    try:
        uid = path.stat().st_uid
    except OSError:
        return False
    return uid in (os.getuid(), 0)


def check_project_table(data: dict[str, Any], text: str, display: str) -> dict[str, Any]:
    """A project file's top-level settings, checked as ``resolve`` checks them."""
    return _check_table(data, text, display, project=True)


def check_project_profiles(data: dict[str, Any], text: str, display: str, base: Path) -> dict[str, dict[str, Any]]:
    return _check_profiles(data, text, display, base, project=True)


def find_project_root(start: Path, environ: Mapping[str, str] | None = None) -> tuple[Path, Path | None]:
    """The directory holding podrepro.toml (walking up, but never above the git top level, and
    only a file of this user's), else the git top level, else ``start``."""
    start = start.resolve()
    dirs = _search_dirs(start, os.environ if environ is None else environ)
    for d in dirs:
        f = d / PROJECT_FILE
        if f.is_file() and trusted_owner(f):
            return d, f
    if dirs and (dirs[-1] / ".git").exists():
        return dirs[-1], None
    return start, None


def discovery_paths(start: Path, pfile: Path | None) -> list[Path]:
    """The paths whose presence decided ``find_project_root``: ``podrepro.toml`` and ``.git`` in
    each directory from ``start`` up to the one holding the file (or the git top level). Run
    plans fingerprint these."""
    out: list[Path] = []
    for d in _search_dirs(start.resolve(), os.environ):
        out += [d / PROJECT_FILE, d / ".git"]
        if pfile is not None and d == pfile.parent:
            break
    return out


def resolve(
    cli: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    user_file: Path | None = None,
    src: Path | None = None,
) -> Config:
    environ = os.environ if environ is None else environ
    if user_file is None:
        from podrepro.paths import get_paths

        user_file = get_paths().config_file
    if src is not None:
        try:
            exists, is_dir = src.exists(), src.is_dir()
        except OSError as e:  # name too long, symlink loop, no permission
            raise UsageError(f"--src {str(src)[:120]}: {e.strerror}") from None
        if not exists:
            raise UsageError(f"--src {src}: no such directory")
        if not is_dir:
            raise UsageError(f"--src {src}: not a directory")
        root, pfile = src.resolve(), (src / PROJECT_FILE if (src / PROJECT_FILE).is_file() else None)
    else:
        root, pfile = find_project_root(cwd or Path.cwd())

    values: dict[str, Value] = {s.name: Value(s.default, "default") for s in SETTINGS}
    profiles: dict[str, dict[str, Any]] = {}

    if user_file.is_file():
        data, text = load_toml(user_file, str(user_file))
        for k, v in _check_table(data, text, str(user_file), project=False).items():
            values[k] = Value(v, f"user config {user_file}")
        profiles.update(_check_profiles(data, text, str(user_file), user_file.parent))
    notices: list[str] = []
    if pfile is not None:
        disp = str(pfile.relative_to(root)) if pfile.is_relative_to(root) else str(pfile)
        data, text = load_toml(pfile, disp)
        pvalues = _check_table(data, text, disp, project=True)
        pprofiles = _check_profiles(data, text, disp, pfile.parent, project=True)
        from podrepro import trust
        from podrepro.paths import get_paths

        asked = trust.requests(pvalues, pprofiles)
        if asked and not trust.is_trusted(get_paths(), pfile):
            trust.strip(pvalues, pprofiles)
            notices.append(trust.notice(pfile, asked))
        for k, v in pvalues.items():
            values[k] = Value(v, f"project {pfile}")
        profiles.update(pprofiles)
    for s in SETTINGS:
        var = "PODREPRO_" + s.name.upper()
        if var in environ and environ[var] != "":
            values[s.name] = Value(coerce(s.name, environ[var], f"environment {var}"), f"env {var}")
    for k, v in (cli or {}).items():
        if v is not None:
            values[k] = Value(coerce(k, v, f"--{k.replace('_', '-')}"), f"flag --{k.replace('_', '-')}")
    return Config(values=values, project_root=root, project_file=pfile,
                  user_file=user_file, profiles=profiles, notices=tuple(notices))
