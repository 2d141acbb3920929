"""The subprocess chokepoint writes one audit record per external command (issue 6, item 7).

The privilege audit (tests/e2e/test_zz_audit.py) is only as good as these records: every way of
starting a command (run, popen, exec_) must append one, with the argv, the effective uid and how.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podrepro.engine import process
from podrepro.errors import PodreproError

REPO = Path(__file__).resolve().parents[2]


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_and_popen_append_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("PODREPRO_AUDIT_LOG", str(log))
    cp = process.run(["true", "a b", "--privileged"])
    assert cp.returncode == 0
    p = process.popen(["sh", "-c", "exit 3"])
    assert p.wait() == 3
    recs = _records(log)
    assert [r["how"] for r in recs] == ["run", "popen"]
    assert recs[0]["argv"] == ["true", "a b", "--privileged"]
    assert recs[1]["argv"] == ["sh", "-c", "exit 3"]
    assert all(r["euid"] == os.geteuid() and r["pid"] == os.getpid() for r in recs)


def test_missing_command_is_still_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("PODREPRO_AUDIT_LOG", str(log))
    with pytest.raises(PodreproError):
        process.run(["podrepro-no-such-command-xyz"])
    assert _records(log)[0]["argv"] == ["podrepro-no-such-command-xyz"]


def test_exec_appends_a_record_before_replacing_the_process(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    code = "from podrepro.engine import process; process.exec_(['sh', '-c', 'echo replaced; exit 4'])"
    env = dict(os.environ, PODREPRO_AUDIT_LOG=str(log), PYTHONPATH=str(REPO))
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert cp.returncode == 4 and cp.stdout == "replaced\n", cp.stderr
    (rec,) = _records(log)
    assert rec["how"] == "exec" and rec["argv"] == ["sh", "-c", "echo replaced; exit 4"]
    assert rec["euid"] == os.geteuid()


def test_no_log_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODREPRO_AUDIT_LOG", raising=False)
    monkeypatch.chdir(tmp_path)
    process.run(["true"])
    assert list(tmp_path.iterdir()) == []


def test_records_from_concurrent_processes_stay_whole(tmp_path: Path) -> None:
    """Several podrepro processes append to one log (the e2e concurrency tests): lines never interleave."""
    log = tmp_path / "audit.jsonl"
    code = ("from podrepro.engine import process\n"
            "for i in range(40): process.run(['true', 'x' * 2000, str(i)])\n")
    env = dict(os.environ, PODREPRO_AUDIT_LOG=str(log), PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    recs = _records(log)  # every line parses
    assert len(recs) == 160
    assert all(r["argv"][1] == "x" * 2000 for r in recs)  # type: ignore[index]
