"""The README's reference of profile keys and placeholders is complete: every key podrepro.toml
accepts in a profile table and every placeholder a command can use has its row or its mention."""

from __future__ import annotations

import re
from pathlib import Path

from podrepro import config, hybrid, runner
from podrepro.arches import lookup
from podrepro.cross import toolchain
from podrepro.profiles import BUILTINS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_profile_key_has_a_row() -> None:
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", README, re.M))
    missing = sorted(config.PROFILE_KEYS - rows)
    assert missing == [], f"profile keys without a row in the README's reference table: {missing}"


def test_every_placeholder_is_mentioned(tmp_path: Path) -> None:
    vals = runner.placeholders(lookup("arm"), BUILTINS["generic"], tmp_path, 4.0)
    vals |= hybrid.placeholders(toolchain(lookup("arm"), "bookworm"), tmp_path)
    missing = sorted(k for k in vals if f"`{{{k}}}`" not in README)
    assert missing == [], f"placeholders the README does not mention: {missing}"


def test_every_setting_has_a_row() -> None:
    rows = set(re.findall(r"^\| `([a-z_]+)`", README, re.M))
    missing = sorted(s.name for s in config.SETTINGS if s.name not in rows)
    assert missing == [], f"settings without a row in the README's configuration table: {missing}"
