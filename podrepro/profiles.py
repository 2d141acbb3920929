"""Profiles: what to install and what to run for a kind of project (filled in by the run issue)."""

from __future__ import annotations


def builtin_names() -> list[str]:
    return ["base", "generic", "jsc"]
