from __future__ import annotations

from typing import Annotated

import typer

config_app = typer.Typer(help="Show podrepro's settings and where each value comes from.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show")
def show(
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every setting with its value and source (default < user file < podrepro.toml < env < flag)."""
    from podrepro import config
    from podrepro.cli.output import echo, emit_json, table
    from podrepro.paths import get_paths

    cfg = config.resolve()
    p = get_paths()
    from podrepro.cli.output import info

    for line in cfg.notices:  # what the project file asked for and does not get, and why
        info(f"podrepro: {line}")
    if json_:
        emit_json({
            "settings": {k: {"value": v.value, "source": v.source} for k, v in cfg.values.items()},
            "project_root": str(cfg.project_root),
            "project_file": str(cfg.project_file) if cfg.project_file else None,
            "user_file": str(cfg.user_file),
            "dirs": {"cache": str(p.cache), "config": str(p.config), "state": str(p.state)},
            "profiles": sorted(_profile_names(cfg)),
        })
        return
    rows = [(k, _fmt(v.value), v.source) for k, v in cfg.values.items()]
    rows += [
        ("cache_dir", str(p.cache), "env PODREPRO_CACHE_DIR" if _env("PODREPRO_CACHE_DIR") else "platformdirs"),
        ("config_dir", str(p.config), "env PODREPRO_CONFIG_DIR" if _env("PODREPRO_CONFIG_DIR") else "platformdirs"),
        ("state_dir", str(p.state), "env PODREPRO_STATE_DIR" if _env("PODREPRO_STATE_DIR") else "platformdirs"),
        ("project_root", str(cfg.project_root), str(cfg.project_file or "git top level / working directory")),
    ]
    echo(table(["setting", "value", "source"], rows))


def _env(name: str) -> bool:
    import os

    return bool(os.environ.get(name))


def _profile_names(cfg: object) -> set[str]:
    from podrepro.profiles import builtin_names

    return set(builtin_names()) | set(getattr(cfg, "profiles", {}))


def _fmt(v: object) -> str:
    if isinstance(v, list):
        return ",".join(v) if v else "(none)"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if v != "" else "(empty)"
