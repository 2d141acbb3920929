"""The engine's one-off podman calls against a stub podman, and the output helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from podrepro.engine import process
from podrepro.engine.podman import Podman

# ps: prints $STUB_PS; rm: ok; every call is logged
PODMAN = """#!/bin/sh
echo "$*" >> "$STUB_LOG"
case "$1" in
  ps) cat "$STUB_PS" ;;
  rm) exit 0 ;;
esac
"""


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "podman"
    exe.write_text(PODMAN)
    exe.chmod(0o755)
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "log"))
    monkeypatch.setenv("STUB_PS", str(tmp_path / "ps.json"))
    return exe


def _calls(stub: Path) -> list[str]:
    return (stub.parent / "log").read_text().splitlines()


def test_remove_containers_removes_what_pick_chooses_by_id(stub: Path) -> None:
    (stub.parent / "ps.json").write_text(json.dumps([
        {"Id": "aaa", "Names": ["podrepro-seed-1-x"], "Image": "i"},
        {"Id": "bbb", "Names": ["keep-me"], "Image": "i"},
    ]))
    removed = Podman(str(stub)).remove_containers(lambda c: c["Id"] == "aaa", filters=["name=^podrepro-seed-"])
    assert removed == ["podrepro-seed-1-x"]
    assert _calls(stub) == ["ps -a --filter name=^podrepro-seed- --format json", "rm -f aaa"]


def test_remove_containers_external_and_unreadable_output(stub: Path) -> None:
    (stub.parent / "ps.json").write_text("not json")
    assert Podman(str(stub)).remove_containers(lambda c: True, external=True) == []
    assert _calls(stub) == ["ps -a --external --format json"]


def test_last_line() -> None:
    out = b"I: retrieving\nE: Failed to fetch http://x\nI: cleaning up\n\n"
    assert process.last_line(out) == "I: cleaning up"
    assert process.last_line(out, errors_first=True) == "E: Failed to fetch http://x"
    assert process.last_line("  \n", "(no output)") == "(no output)"
    assert process.last_line("x" * 400) == "x" * 300


def test_owner_gone() -> None:
    assert process.owner_gone(f"{os.getpid()}-abc") is False
    assert process.owner_gone("999999999-abc") is True
    assert process.owner_gone("nopid") is False


def test_build_argv_puts_extra_options_before_the_context() -> None:
    from pathlib import Path

    from podrepro.engine import commands

    argv = commands.build_argv("podman", platform="linux/mipsle", containerfile=Path("/c/Containerfile"),
                               context=Path("/c"), tag="t", build_args={}, labels={},
                               extra=["--runtime", "/w/oci-wrapper-x"])
    assert argv[-3:] == ["--runtime", "/w/oci-wrapper-x", "/c"]


def test_the_bootstrap_hook_registers_a_private_handler_only_when_asked() -> None:
    from podrepro.engine import hostdpkg

    hook = hostdpkg.HOST_DPKG_HOOK
    assert 'if [ -n "${PODREPRO_BINFMT_REGISTER:-}" ]; then' in hook
    assert 'mount -t binfmt_misc binfmt_misc "$bm"' in hook
    assert hook.index("PODREPRO_BINFMT_REGISTER") < hook.index("hostdpkg --configure"), "before any script runs"
    assert hostdpkg.BINFMT_REGISTER_ENV == "PODREPRO_BINFMT_REGISTER"

