"""podrepro.matrix: which arches, the children's options, their status and the reports."""

from __future__ import annotations

import io
import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from podrepro.arches import lookup
from podrepro.errors import UsageError
from podrepro.matrix import plan, report, runner
from podrepro.matrix.runner import Job


def test_arches_for_lists_and_all() -> None:
    assert [a.alias for a in plan.arches_for("arm,mipsel,armhf")] == ["arm", "mips"]
    assert [a.alias for a in plan.arches_for("all", ["s390x", "arm"])] == ["s390x", "arm"]
    assert len(plan.arches_for("all")) >= 9
    assert plan.is_matrix("arm,mips") and plan.is_matrix("all") and not plan.is_matrix("arm")
    with pytest.raises(UsageError):
        plan.arches_for("arm,sparc")
    with pytest.raises(UsageError):
        plan.arches_for(",")


def test_child_options_pass_on_what_was_set() -> None:
    opts = plan.child_options({"profile": "generic", "filter_": "wire", "env": ["A=1", "B"], "network": False,
                               "cross": False, "native_harness": None, "core": True, "repeat": 3,
                               "until_fail": False, "suite": None, "jobs": 4, "junit": Path("x")})
    assert opts == ["--profile", "generic", "--filter", "wire", "--repeat", "3", "--env", "A=1", "--env", "B",
                    "--core", "--no-network", "--emulated"]
    argv = plan.child_argv("test", "arm", ["--filter", "wire"], ["-V"])
    assert argv == [sys.executable, "-m", "podrepro", "test", "arm", "--filter", "wire", "--", "-V"]


CTEST = """\
podrepro: building first with the generic profile's build command (--no-build to skip)
[3/10] Building C object CMakeFiles/x.dir/a.c.o
Test project /p/build-podrepro-arm
    Start 1: checksum
1/3 Test #1: checksum .........................***Failed    0.03 sec
    Start 2: y2038
2/3 Test #2: y2038 ............................   Passed    0.02 sec
"""


def test_job_reads_phase_and_progress_then_the_summary(tmp_path: Path) -> None:
    j = Job(lookup("arm"), ["x"], tmp_path / "arm.log")
    j.log.write_text(CTEST)
    j.started = time.monotonic()
    j.read()
    assert (j.phase, j.done, j.failed_now) == ("testing", 2, 1)
    assert "arm" in j.status() and "tests 2 done, 1 failed" in j.status()
    j.log.write_text(CTEST + "podrepro: 3 tests ran on arm, 2 failed: checksum, y2038\n")
    j.finish(8)
    assert (j.phase, j.ran, j.failed_tests, j.returncode) == ("failed", 3, ["checksum", "y2038"], 8)
    k = Job(lookup("mips"), ["x"], tmp_path / "mips.log")
    k.log.write_text("podrepro: 1 test ran on mips, all passed\n")
    k.finish(0)
    assert (k.phase, k.ran, k.failed_tests) == ("passed", 1, [])


def test_run_bounds_concurrency_and_reports_each(tmp_path: Path) -> None:
    code = "import sys, time; time.sleep(0.3); print('podrepro: 1 test ran on x, all passed'); sys.exit(int(sys.argv[1]))"
    jobs = [Job(lookup(a), [sys.executable, "-c", code, rc], tmp_path / f"{a}.log")
            for a, rc in (("arm", "0"), ("mips", "8"), ("s390x", "0"))]
    most = []

    def show(js: list[Job]) -> None:
        most.append(sum(1 for j in js if j.returncode is None and j.started))

    runner.run(jobs, 2, show, tick=0.05)
    assert max(most) <= 2
    assert [j.returncode for j in jobs] == [0, 8, 0]
    assert report.exit_code(jobs) == 1
    lines = report.table(jobs)
    assert lines[0].split()[:3] == ["arch", "result", "time"]
    assert lines[2].startswith("mips") and "failed (exit 8)" in lines[2]
    doc = report.to_json("test", jobs)
    assert doc["exit_code"] == 1 and [a["result"] for a in doc["arches"]] == ["passed", "failed", "passed"]
    json.dumps(doc)


def test_junit_has_one_testsuite_per_arch(tmp_path: Path) -> None:
    ctest = tmp_path / "arm.xml"
    ctest.write_text('<?xml version="1.0"?><testsuite name="Linux-c++" tests="2" failures="1">'
                     '<testcase name="checksum" classname="checksum"><failure message="Failed"/></testcase>'
                     '<testcase name="wire" classname="wire"/></testsuite>')
    arm, mips = Job(lookup("arm"), [], tmp_path / "a"), Job(lookup("mips"), [], tmp_path / "m")
    arm.returncode, mips.returncode = 8, 0
    root = ET.fromstring(report.junit([arm, mips], {"arm": ctest, "mips": None}))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["arm", "mips"]
    assert [c.get("classname") for c in suites[0].iter("testcase")] == ["arm", "arm"]
    assert suites[0].find("testcase/failure") is not None
    assert suites[1].get("failures") == "0" and len(list(suites[1].iter("testcase"))) == 1


def test_status_view_plain_prints_changes_only() -> None:
    from podrepro.cli.matrix import StatusView

    out = io.StringIO()
    view = StatusView(False, out)
    j = Job(lookup("arm"), [], Path("/nonexistent"))
    j.phase, j.started = "building", time.monotonic()
    view([j])
    view([j])
    j.phase = "testing"
    view([j])
    assert out.getvalue().count("podrepro: arm") == 2
    tty = io.StringIO()
    StatusView(True, tty)([j, j])
    assert tty.getvalue().count("\x1b[2K") == 2


def test_matrix_cli_refuses_image_and_jobs_on_single_build(tmp_path: Path) -> None:
    from podrepro.cli.main import run_cli

    assert run_cli(["test", "arm,mips", "--image", "x"]) == 2
    assert run_cli(["build", "arm", "--jobs", "2"]) == 2


def test_the_run_fast_path_leaves_a_matrix_to_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    from podrepro.cli import entry, main

    seen: list[list[str] | None] = []
    monkeypatch.setattr(entry, "_fast_run", lambda arch, cmd: pytest.fail("fast path for a matrix"))
    def cli(argv: list[str] | None = None) -> int:
        seen.append(argv)
        return 0

    monkeypatch.setattr(main, "run_cli", cli)
    for spec in ("arm,mips", "all"):
        with pytest.raises(SystemExit):
            entry.main(["run", spec, "--", "true"])
    assert seen == [["run", "arm,mips", "--", "true"], ["run", "all", "--", "true"]]


def test_the_fast_path_returns_what_a_run_that_did_not_exec_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    """run ARCH -- CMD usually execs podman; when it cannot (a remote engine, output read for
    artefacts), the command's exit status is podrepro's."""
    from podrepro import workflows
    from podrepro.cli import entry

    monkeypatch.setattr(workflows, "reproduce", lambda *a, **kw: 7)
    assert entry._fast_run("arm", ["false"]) == 7
