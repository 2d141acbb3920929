"""The private API service: ready means it answers a ping (not that its socket file exists), and
a service that exits before answering is started again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podrepro.engine import process, service

FAKE = r'''
import os, socket, sys, time
path, delay = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.bind(path)              # the socket file exists from here on...
time.sleep(delay)         # ...but nothing listens yet
s.listen(8)
while True:
    c, _ = s.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK")
    c.close()
'''


def _fake_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plan: list[str]) -> list[list[str]]:
    """process.popen runs, per call, the next of ``plan``: "exit" (dies at once, with a message)
    or "slow" (binds, waits 0.5 s, then answers pings)."""
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    calls: list[list[str]] = []

    def popen(argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        calls.append(list(argv))
        kind = plan[len(calls) - 1]
        sock = argv[-1].removeprefix("unix://")
        if kind == "exit":
            return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit('Error: cannot join namespace')"], **kw)
        return subprocess.Popen([sys.executable, str(script), sock, "0.5"], **kw)

    monkeypatch.setattr(process, "popen", popen)
    monkeypatch.setattr(process, "which", lambda name: "/usr/bin/podman")
    return calls


def test_ready_means_it_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_service(tmp_path, monkeypatch, ["slow"])
    svc = service.PodmanService()
    try:
        url = svc._start_retrying()
        assert service._pings(url.removeprefix("unix://")), "returned before the service answered"
    finally:
        svc.close()


def test_a_service_that_exits_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_service(tmp_path, monkeypatch, ["exit", "slow"])
    svc = service.PodmanService()
    try:
        url = svc._start_retrying()
        assert len(calls) == 2 and service._pings(url.removeprefix("unix://"))
    finally:
        svc.close()


def test_a_service_that_keeps_exiting_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_service(tmp_path, monkeypatch, ["exit", "exit", "exit"])
    svc = service.PodmanService()
    with pytest.raises(service.ServiceExited, match="failed to start: Error: cannot join namespace"):
        svc._start_retrying()
    assert len(calls) == 3
