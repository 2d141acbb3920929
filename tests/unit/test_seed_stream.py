"""SeedStream: the earlier base's export on a pipe, against a stub podman (create/export/rm).
The e2e suite runs it with the real podman; here its failure paths: a failed export, a hung
one, and a hook that never reads."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import podrepro.images.seed as seeding
from podrepro.engine.children import Children
from podrepro.engine.podman import ImageInfo, Podman

# create NAME: ok; export -o FILE NAME: $STUB_EXPORT = ok (writes $STUB_DATA), fail, or hang; rm -f NAME
PODMAN = """#!/bin/sh
echo "$*" >> "$STUB_LOG"
case "$1" in
  create) exit 0 ;;
  rm) exit 0 ;;
  export)
    case "$STUB_EXPORT" in
      ok) cp "$STUB_DATA" "$3" ;;
      fail) echo "Error: no such container" >&2; exit 125 ;;
      hang) exec sleep 600 ;;
    esac ;;
esac
"""


def _stream(tmp: Path, monkeypatch: pytest.MonkeyPatch, mode: str, data: bytes = b"") -> tuple[seeding.SeedStream, Path]:
    stub = tmp / "podman"
    stub.write_text(PODMAN)
    stub.chmod(0o755)
    log = tmp / "podman.log"
    (tmp / "data").write_bytes(data)
    monkeypatch.setenv("STUB_LOG", str(log))
    monkeypatch.setenv("STUB_EXPORT", mode)
    monkeypatch.setenv("STUB_DATA", str(tmp / "data"))
    work = tmp / "work"
    work.mkdir()
    seed = ImageInfo(id="f" * 64, tags=("localhost/podrepro/base:arm-aaaaaaaaaaaa",), labels={}, size=1,
                     created="", architecture="arm", os="linux")
    s = seeding.SeedStream(Podman(str(stub)), Children(), seed, work, open(tmp / "build.log", "ab"))  # noqa: SIM115 (the test's lifetime)
    assert s.start()
    return s, log


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def test_the_export_arrives_whole_then_the_container_and_file_are_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(300_000)  # more than a pipe holds: the feeder blocks until it is read
    s, log = _stream(tmp_path, monkeypatch, "ok", data)
    read_end = os.dup(s.fd)
    s.spawned()  # as after mmdebstrap's spawn: podrepro keeps no read end
    assert _read_all(read_end) == data
    os.close(read_end)
    s.finish()
    calls = log.read_text().splitlines()
    name = calls[0].split()[3]
    assert name.startswith(seeding.SEED_PREFIX + f"{os.getpid()}-")
    assert calls[0].startswith("create --pull=never --name ")
    assert calls[1] == f"export -o {s.file} {name}" and calls[-1] == f"rm -f {name}"
    assert not s.file.exists()


def test_a_failed_export_gives_the_hook_an_empty_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s, log = _stream(tmp_path, monkeypatch, "fail")
    read_end = os.dup(s.fd)
    s.spawned()
    assert _read_all(read_end) == b""  # the hook's tar fails on it: a full install
    os.close(read_end)
    s.finish()
    assert log.read_text().splitlines()[-1].startswith("rm -f ")


def test_a_hung_export_is_given_up_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seeding, "EXPORT_TIMEOUT", 1)
    s, _ = _stream(tmp_path, monkeypatch, "hang")
    read_end = os.dup(s.fd)
    s.spawned()
    t0 = time.monotonic()
    assert _read_all(read_end) == b""
    assert time.monotonic() - t0 < 30
    os.close(read_end)
    s.finish()
    assert s.export is not None and s.export.poll() is not None


def test_a_hook_that_never_reads_does_not_hang_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s, _ = _stream(tmp_path, monkeypatch, "ok", os.urandom(1_000_000))
    s.spawned()  # and nobody else holds a read end: mmdebstrap failed before its hook
    t0 = time.monotonic()
    s.finish()
    assert time.monotonic() - t0 < 30
    assert s.thread is not None and not s.thread.is_alive()
    assert not s.file.exists()
