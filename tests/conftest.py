"""Test selection: e2e tests (real podman + qemu) run only with --e2e, and then they must not skip
silently: under ``CI=true`` a skipped e2e test fails the session (a host that cannot run a test is
a CI failure, not a pass). ``PODREPRO_RAN_LOG`` (a file) collects the id of every test that ran, so
CI can check that the e2e stages together ran every e2e test (nothing deselected by accident)."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--e2e", action="store_true", help="run the end-to-end tests (real podman + qemu)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--e2e"):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for it in items:
        (drop if it.get_closest_marker("e2e") or it.get_closest_marker("root") else keep).append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(f"{report.nodeid}: {report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr}")
    log = os.environ.get("PODREPRO_RAN_LOG")
    if log and (report.when == "call" or (report.when == "setup" and not report.passed)):
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{report.nodeid}\t{report.outcome}\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.getoption("--e2e") and in_ci() and _skipped:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"FAILED: {len(_skipped)} e2e test(s) skipped under CI=true (a skip is not a pass):",
                 *(f"  {s}" for s in _skipped)]
        if tr is not None:
            tr.ensure_newline()
            for ln in lines:
                tr.write_line(ln)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
