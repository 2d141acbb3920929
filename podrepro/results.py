"""What a test run ran: counted from the results file its harness writes.

A profile names its harness's results file with ``results = "KIND:PATH"`` (PATH relative to the
project root, placeholders allowed):

- ``junit:PATH`` — a JUnit XML file (ctest ``--output-junit``, ``meson test``, pytest
  ``--junitxml``, ...): every ``<testcase>`` that was not skipped or disabled counts as run,
  those with a ``<failure>``/``<error>`` (or ctest's ``status="fail"``) as failed.
- ``jsc-json:PATH`` — run-javascriptcore-tests' ``--json-output``: the file must exist after the
  run; its ``*Failures`` lists name the failed tests.
- ``automake:PATH`` — the ``test-suite.log`` of automake's parallel test harness (``make check``):
  its ``# TOTAL:`` less ``# SKIP:`` ran; its ``FAIL:``/``XPASS:``/``ERROR:`` sections name the
  failed tests. (A recursive build has one per directory: name the one whose tests matter.)

podrepro removes the file before the run, so a result left from an earlier run never counts.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from podrepro.errors import UsageError

KINDS = ("junit", "jsc-json", "automake")


@dataclass(frozen=True)
class Counted:
    ran: int | None               # None: the harness says tests ran but not how many
    failed: tuple[str, ...] = ()
    found: bool = True            # the results file existed


def parse_spec(spec: str) -> tuple[str, str]:
    kind, sep, path = spec.partition(":")
    if not sep or kind not in KINDS or not path:
        raise UsageError(f"results = {spec!r}: expected KIND:PATH with KIND one of {', '.join(KINDS)}",
                         hint='e.g. results = "junit:{build_dir}/report.xml"')
    return kind, path


def clear(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def count(kind: str, path: Path) -> Counted:
    if not path.is_file():
        return Counted(ran=0, found=False)
    if kind == "junit":
        return _junit(path)
    if kind == "automake":
        return _automake(path)
    return _jsc(path)


def _junit(path: Path) -> Counted:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return Counted(ran=0, found=False)
    ran = 0
    failed = []
    for case in root.iter("testcase"):
        status = (case.get("status") or "").lower()
        if status in ("notrun", "disabled", "skipped") or case.find("skipped") is not None:
            continue
        ran += 1
        if status == "fail" or case.find("failure") is not None or case.find("error") is not None:
            failed.append(case.get("name") or "?")
    return Counted(ran=ran, failed=tuple(failed))


def _jsc(path: Path) -> Counted:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return Counted(ran=0, found=False)
    if not isinstance(data, dict) or not data:
        return Counted(ran=0, found=False)
    failed: list[str] = []
    for key, value in data.items():
        if key.endswith("Failures") and isinstance(value, list):
            failed += [str(v) for v in value]
        elif key.startswith("all") and key.endswith("Passed") and value is False:
            failed.append(key[3:-len("Passed")])
    return Counted(ran=None, failed=tuple(failed))


_AM_COUNT = re.compile(r"^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):\s+(\d+)\s*$", re.MULTILINE)
_AM_FAILED = re.compile(r"(FAIL|XPASS|ERROR): (\S.*)")


def _automake(path: Path) -> Counted:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return Counted(ran=0, found=False)
    numbers = {k: int(v) for k, v in _AM_COUNT.findall(text)}
    if "TOTAL" not in numbers:
        return Counted(ran=0, found=False)
    lines = text.splitlines()
    # a failed test's section: "FAIL: NAME" underlined with "="
    failed = [m[2] for i, line in enumerate(lines[:-1])
              if (m := _AM_FAILED.fullmatch(line)) and lines[i + 1] and set(lines[i + 1]) == {"="}]
    expected = sum(numbers.get(k, 0) for k in ("FAIL", "XPASS", "ERROR"))
    failed += ["?"] * (expected - len(failed))
    return Counted(ran=numbers["TOTAL"] - numbers.get("SKIP", 0), failed=tuple(failed[:expected]))
