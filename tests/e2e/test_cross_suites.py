"""The cross-toolchain table (podrepro.cross.CROSS_SUITES, and the README's sentence built on it)
against the Debian archive itself: for every architecture and suite, `--cross` is offered exactly
when the suite's amd64 archive has crossbuild-essential-<debarch> and the suite is released for
<debarch> (multiarch needs the target's own libc6:<debarch> from the same archive). Reads the
suite's Release file and its amd64 Packages index from the mirror the machine's apt uses."""

from __future__ import annotations

import lzma
import re
import urllib.request

import pytest

from podrepro.arches import lookup
from podrepro.cross import CROSS_SUITES
from podrepro.engine.bootstrap import host_debian_mirror

pytestmark = pytest.mark.e2e

SUITES = ("bookworm", "trixie")


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as r:
        data: bytes = r.read()
        return data


@pytest.fixture(scope="module")
def archive() -> dict[str, tuple[set[str], set[str]]]:
    """Per suite: its release architectures, and the crossbuild-essential-* packages for amd64."""
    mirror = host_debian_mirror()
    if mirror is None:
        pytest.fail("this test reads the Debian mirror of the machine's apt sources, and there is none")
    out = {}
    for suite in SUITES:
        release = _fetch(f"{mirror}/dists/{suite}/Release").decode()
        m = re.search(r"^Architectures: (.*)$", release, re.MULTILINE)
        assert m is not None, release[:500]
        packages = lzma.decompress(_fetch(f"{mirror}/dists/{suite}/main/binary-amd64/Packages.xz")).decode()
        cross = set(re.findall(r"^Package: crossbuild-essential-(\S+)$", packages, re.MULTILINE))
        out[suite] = (set(m[1].split()), cross)
    return out


def test_cross_suites_match_the_archive(archive: dict[str, tuple[set[str], set[str]]]) -> None:
    wrong = []
    for alias in CROSS_SUITES:
        debarch = lookup(alias).debian
        for suite in SUITES:
            released, cross = archive[suite]
            has = debarch in released and debarch in cross
            if has != (suite in CROSS_SUITES[alias]):
                wrong.append(f"{alias} ({debarch}) in {suite}: the archive says {has}")
    assert not wrong, wrong
    # and the table knows every architecture podrepro emulates that has a toolchain somewhere
    for suite in SUITES:
        released, cross = archive[suite]
        assert {"armhf", "arm64", "s390x"} <= released & cross
