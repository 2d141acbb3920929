"""A matrix's summary table, JUnit XML (one testsuite per architecture) and JSON."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podrepro import __version__
from podrepro.matrix.runner import Job


def result_of(j: Job) -> str:
    if j.returncode is None:
        return "not run"
    return "passed" if j.returncode == 0 else j.phase


def table(jobs: Sequence[Job], show: Any = str) -> list[str]:
    rows = [["arch", "result", "time", "failed tests", "log"]]
    for j in jobs:
        res = result_of(j) + (f" (exit {j.returncode})" if j.returncode not in (0, None) else "")
        rows.append([j.arch.alias + (f" on {j.engine}" if j.engine else ""), res, f"{j.seconds:.1f} s" if j.started else "-", ", ".join(j.failed_tests) or "-",
                     show(j.log)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def exit_code(jobs: Sequence[Job]) -> int:
    """0 when every architecture passed, 1 otherwise (README, "Matrix runs")."""
    return 0 if jobs and all(j.returncode == 0 for j in jobs) else 1


def to_json(mode: str, jobs: Sequence[Job]) -> dict[str, Any]:
    return {"version": 1, "podrepro": __version__, "mode": mode, "exit_code": exit_code(jobs),
            "arches": [{"arch": j.arch.alias, "result": result_of(j), "exit_code": j.returncode,
                        "seconds": round(j.seconds, 3), "started_at": round(j.started_at, 3) or None,
                        "ended_at": round(j.ended_at, 3) or None, "tests_ran": j.ran, "failed_tests": j.failed_tests,
                        "log": str(j.log), "engine": j.engine or "local"} for j in jobs]}


def junit(jobs: Sequence[Job], results: dict[str, Path | None]) -> bytes:
    """One ``<testsuite name=ARCH>`` per architecture: its harness's own JUnit file when the
    profile writes one (test cases renamed ``ARCH.NAME`` so tools keep them apart), else one
    test case for the run."""
    root = ET.Element("testsuites", name="podrepro matrix")
    for j in jobs:
        path = results.get(j.arch.alias)
        suites: list[ET.Element] = []
        if path is not None and path.is_file():
            try:
                got = ET.parse(path).getroot()
                suites = [got] if got.tag == "testsuite" else list(got.iter("testsuite"))
            except ET.ParseError:
                suites = []
        if not suites:
            s = ET.Element("testsuite", name=j.arch.alias, tests="1",
                           failures="0" if j.returncode == 0 else "1")
            case = ET.SubElement(s, "testcase", name=j.arch.alias, classname=j.arch.alias, time=f"{j.seconds:.3f}")
            if j.returncode != 0:
                ET.SubElement(case, "failure", message=f"{result_of(j)} (exit {j.returncode})")
            suites = [s]
        for s in suites:
            s.set("name", j.arch.alias)
            for case in s.iter("testcase"):
                case.set("classname", j.arch.alias)
            root.append(s)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out
