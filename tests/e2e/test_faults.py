"""Network faults during a real bootstrap (issue 6, item 6).

A fault-injecting HTTP front (faultproxy.py) sits between mmdebstrap and the host's Debian mirror;
the bootstrap gets a private, empty package cache so every .deb really crosses the proxy. podrepro
must either get through (apt's Acquire::Retries, then its own retries of the whole bootstrap) or
stop with one clear line — and in both cases leave no temporary image, container or temp dir.

Slow: one emulated bootstrap (minutes) per fault mode.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import no_leftover_containers, podrepro
from tests.e2e.faultproxy import FaultProxy
from tests.e2e.test_reliability import assert_clean, my_temp_dirs, tags

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROGRESS = re.compile(r"\d\d:\d\d:\d\d \[\d\d:\d\d\] ")


def _mirror() -> str:
    from podrepro.engine.bootstrap import host_debian_mirror

    m = host_debian_mirror()
    if not m or not m.startswith("http://"):
        pytest.fail("these tests front the host's plain-http Debian mirror; the host's apt sources have none")
    return m


def _bootstrap_through(proxy: FaultProxy, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], str | None]:
    """An 'essential' arm base (small; uname is in coreutils), built through the proxy."""
    env = dict(os.environ, PODREPRO_PROGRESS="plain", PODREPRO_VARIANT="essential",
               PODREPRO_CACHE_DIR=str(tmp_path / "cache"))
    cp = subprocess.run([sys.executable, "-m", "podrepro", "image", "build", "arm", "--profile", "base",
                         "--rebuild", "--mirror", proxy.url, "--json"], capture_output=True, text=True, env=env,
                        cwd=tmp_path, timeout=3000)
    tag = json.loads(cp.stdout)["tag"] if cp.returncode == 0 else None
    return cp, tag


@pytest.mark.parametrize("mode", ["drop-or-stall-30pct", "503-first-2"])
def test_bootstrap_through_a_faulty_mirror(tmp_path: Path, mode: str) -> None:
    before_tmp = my_temp_dirs()
    before_tags = set(tags())
    if mode == "drop-or-stall-30pct":
        proxy = FaultProxy(_mirror(), drop_rate=0.15, stall_rate=0.15, stall_seconds=8, lifetime=2400)
    else:
        # apt does not retry a 503 within one run: each failed bootstrap costs one request, and
        # podrepro's own retries (3 attempts by default) must get through the third time
        proxy = FaultProxy(_mirror(), fail_first=2, lifetime=2400)
    tag = None
    try:
        with proxy:
            cp, tag = _bootstrap_through(proxy, tmp_path)
        st = proxy.stats
        print(f"{mode}: exit {cp.returncode}; proxy: {st.connections} connections, {st.forwarded} forwarded, "
              f"{st.dropped} dropped, {st.stalled} stalled, {st.failed_503} x 503")
        assert st.faults > 0, "faults were injected"
        assert "Traceback" not in cp.stderr
        if mode.startswith("503"):
            # deterministic: two 503s cost two attempts, the third gets through
            assert cp.returncode == 0, cp.stderr
        if cp.returncode == 0:
            assert st.forwarded > 10, "the bootstrap really went through the proxy"
            if mode.startswith("503"):
                assert st.failed_503 == 2 and "retry" in cp.stderr, cp.stderr
            assert tag and tag in tags(), cp.stderr
            r = subprocess.run(["podman", "run", "--rm", "--pull=never", "--platform", "linux/arm/v7", "--network",
                                "none", tag, "uname", "-m"], capture_output=True, text=True, timeout=300)
            assert r.stdout.strip() == "armv7l", r.stderr
        else:
            errors = [ln for ln in cp.stderr.splitlines() if ln.startswith("error: ")]
            others = [ln for ln in cp.stderr.splitlines() if ln.strip() and not PROGRESS.match(ln)
                      and not ln.startswith("error: ")]
            assert cp.returncode == 1 and len(errors) == 1 and others == [], cp.stderr
            assert "bootstrap" in errors[0] or "mmdebstrap" in errors[0], errors[0]
        assert_clean(before_tmp)
        assert no_leftover_containers() == []
    finally:
        if tag and tag not in before_tags:
            podrepro("image", "rm", tag)
