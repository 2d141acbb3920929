"""Shared set-up for in-process CLI tests: no real subprocess, private podrepro dirs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podrepro.engine import process, storage


def isolate(mp: pytest.MonkeyPatch, root: Path, run: Callable[..., Any], popen: Callable[..., Any],
            exec_: Callable[..., Any], foreground: Callable[..., Any] | None = None) -> None:
    """Route the subprocess chokepoint to stubs and point every podrepro dir under ``root``.
    ``foreground`` (test's build and test runs) defaults to the ``exec_`` stub."""
    mp.setattr(process, "run", run)
    mp.setattr(process, "popen", popen)
    mp.setattr(process, "exec_", exec_)
    mp.setattr(process, "foreground", foreground or exec_)
    mp.setattr(storage, "storage_lists_image", lambda tag, environ=None: None)  # always ask "podman"
    for k in list(os.environ):
        if k.startswith("PODREPRO_"):
            mp.delenv(k)
    mp.setenv("PODREPRO_CACHE_DIR", str(root / "cache"))
    mp.setenv("PODREPRO_CONFIG_DIR", str(root / "config"))
    mp.setenv("PODREPRO_STATE_DIR", str(root / "state"))
    mp.setenv("GIT_CEILING_DIRECTORIES", str(root))
