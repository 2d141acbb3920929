"""Issue 19 end to end: several architectures at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.conftest import no_leftover_containers, podrepro

pytestmark = pytest.mark.e2e


def test_arm_and_mips_at_once_with_summary_junit_and_exit_code(project: Path, tmp_path: Path) -> None:
    junit = tmp_path / "results.xml"
    r = podrepro("test", "arm,mips", "--junit", str(junit), "--json", cwd=project)
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    by = {a["arch"]: a for a in doc["arches"]}
    assert set(by) == {"arm", "mips"} and doc["exit_code"] == 1
    for arch in ("arm", "mips"):
        assert by[arch]["result"] == "failed" and by[arch]["failed_tests"] == ["checksum", "y2038"], by[arch]
        assert by[arch]["tests_ran"] == 3
        log = Path(by[arch]["log"])
        assert log.is_file() and f"3 tests ran on {arch}, 2 failed" in log.read_text()
    # at once: each started before the other ended
    a, m = by["arm"], by["mips"]
    assert a["started_at"] < m["ended_at"] and m["started_at"] < a["ended_at"], (a, m)
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"arm", "mips"}
    for s in suites.values():
        failed = {c.get("name") for c in s.iter("testcase") if c.find("failure") is not None}
        assert failed == {"checksum", "y2038"}, ET.tostring(s)[:500]
    assert no_leftover_containers() == []


def test_a_matrix_that_passes_exits_zero_with_a_table(project: Path) -> None:
    r = podrepro("test", "arm,mips", "--filter", "wire", cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["arch", "result", "time", "failed"]
    assert [ln.split()[:2] for ln in lines[1:]] == [["arm", "passed"], ["mips", "passed"]]
    # without a terminal: plain lines as each architecture changes phase
    assert "podrepro: arm " in r.stderr and "podrepro: mips " in r.stderr


@pytest.mark.parametrize("how", ["group", "parent"])
def test_interrupting_a_matrix_leaves_nothing(project: Path, how: str) -> None:
    """Ctrl-C from a terminal reaches the whole process group; a SIGINT to podrepro alone is
    passed on to the children as SIGTERM. Either way every container goes."""
    p = subprocess.Popen([sys.executable, "-m", "podrepro", "run", "arm,mips", "--", "sleep", "60"], cwd=project,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                         env={**os.environ, "PODREPRO_PROGRESS": "plain"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # both containers up
        cp = subprocess.run(["podman", "ps", "--filter", "label=io.podrepro.run=1", "--format", "{{.Names}}"],
                            capture_output=True, text=True)
        if len(cp.stdout.split()) >= 2:
            break
        time.sleep(0.5)
    else:
        p.kill()
        pytest.fail("the two containers never ran")
    t0 = time.monotonic()
    if how == "group":
        os.killpg(p.pid, signal.SIGINT)
    else:
        p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert time.monotonic() - t0 < 45  # stopped, not waited out (the command sleeps 60 s)
    assert no_leftover_containers() == []
