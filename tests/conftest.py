"""Test selection: e2e tests (real podman + qemu) run only with --e2e, and then they must not skip
silently: a host that cannot run them fails the session instead."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--e2e", action="store_true", help="run the end-to-end tests (real podman + qemu)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--e2e"):
        return
    keep, drop = [], []
    for it in items:
        (drop if it.get_closest_marker("e2e") or it.get_closest_marker("root") else keep).append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
