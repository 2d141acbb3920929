"""binfmt registration on the real kernel, as root (CI runs it as root; elsewhere it skips).

Only the mips64el handler is ever touched: Debian's ``qemu-mips64el`` is disabled for the duration
(other work on the same host uses arm and mips containers) and restored afterwards, and the whole
binfmt_misc directory is compared before/after so nothing else can have changed.

    sudo /tmp/venv/bin/pytest --e2e -m root tests/e2e/test_binfmt_root.py
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from podrepro import elfprobe
from podrepro.arches import lookup
from tests.conftest import in_ci
from tests.e2e.conftest import podrepro
from tests.e2e.test_probe import _image_tar  # one file "probe", mode 0755

pytestmark = pytest.mark.root

BINFMT = Path("/proc/sys/fs/binfmt_misc")
DEBIAN_ENTRY = BINFMT / "qemu-mips64el"
OURS = BINFMT / "podrepro-mips64el"
ARCH = lookup("mips64el")


def snapshot() -> dict[str, str]:
    """Every entry's full text (mtimes change on enable/disable, so contents are what we compare)."""
    return {p.name: p.read_text() for p in sorted(BINFMT.iterdir()) if p.name != "register"}


def _update_binfmts(*args: str) -> None:
    subprocess.run(["/usr/sbin/update-binfmts", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def mips64el_state() -> Iterator[None]:
    """The state these tests start from, made rather than hoped for: Debian's qemu-mips64el entry
    loaded (loaded here if it is not, unloaded again after) and no podrepro-mips64el entry (one
    left by an aborted run is removed under CI; elsewhere the test refuses to disturb it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: it disables and re-enables a host binfmt_misc handler")
    if OURS.exists():
        if not in_ci():
            pytest.skip("podrepro-mips64el is already registered here; refusing to disturb it (CI removes it)")
        OURS.write_text("-1")
    loaded_here = False
    if not DEBIAN_ENTRY.exists():
        if not Path("/var/lib/binfmts/qemu-mips64el").exists():
            pytest.skip("no Debian qemu-mips64el handler on this host (install qemu-user-static)")
        _update_binfmts("--enable", "qemu-mips64el")
        loaded_here = True
    try:
        yield
    finally:
        if loaded_here and DEBIAN_ENTRY.exists():
            _update_binfmts("--disable", "qemu-mips64el")


@pytest.fixture
def debian_mips64el_disabled(mips64el_state: None, tmp_path: Path) -> Iterator[dict[str, str]]:
    before = snapshot()
    was_enabled = DEBIAN_ENTRY.read_text().startswith("enabled")
    DEBIAN_ENTRY.write_text("0")
    try:
        yield before
    finally:
        if OURS.exists():  # a failed test must not leave our entry behind
            OURS.write_text("-1")
        DEBIAN_ENTRY.write_text("1" if was_enabled else "0")
    assert snapshot() == before, "binfmt_misc differs from before the test"


def _env(binfmt_d: Path) -> dict[str, str]:
    return {"PODREPRO_BINFMT_D": str(binfmt_d), "PODREPRO_BINFMT_DIR": str(BINFMT)}


def _run_probe_on_host(tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    exe = tmp_path / "probe-mips64el"
    exe.write_bytes(elfprobe.build(ARCH, exit_code=5))
    exe.chmod(0o755)
    return subprocess.run([str(exe)], capture_output=True, timeout=60)


def _as_user(user: str, *argv: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    uid = subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True).stdout.strip()
    return subprocess.run(["runuser", "-u", user, "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}", *argv],
                          capture_output=True, input=input, timeout=300, cwd="/")


def test_register_only_when_needed_and_unregister_exactly(
        debian_mips64el_disabled: dict[str, str], tmp_path: Path) -> None:
    binfmt_d = tmp_path / "binfmt.d"
    env = _env(binfmt_d)
    disabled = snapshot()
    assert disabled["qemu-mips64el"].startswith("disabled")

    # 1. doctor says it is unusable and what to run
    r = podrepro("doctor", "mips64el", "--json", env=env)
    assert r.returncode == 1, r.stderr
    d = json.loads(r.stdout)
    assert d["version"] == 1 and d["arches"]["mips64el"]["usable"] is False
    fails = [c for c in d["checks"] if c["arch"] == "mips64el" and c["severity"] == "fail"]
    assert fails and fails[0]["fix"] == "podrepro binfmt register mips64el"
    assert "Traceback" not in r.stderr

    # 2. register creates podrepro-mips64el with F and C, plus the binfmt.d file
    r = podrepro("binfmt", "register", "mips64el", "--yes", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "probe: ok" in r.stdout
    text = OURS.read_text()
    flags = next(ln for ln in text.splitlines() if ln.startswith("flags:")).split(":", 1)[1].strip()
    assert "F" in flags and "C" in flags
    assert "interpreter /usr/bin/qemu-mips64el-static" in text
    conf = binfmt_d / "zz-podrepro-mips64el.conf"
    lines = [ln for ln in conf.read_text().splitlines() if not ln.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith(":podrepro-mips64el:M:0:\\x7f\\x45\\x4c\\x46\\x02")
    assert set(snapshot()) - set(disabled) == {"podrepro-mips64el"}
    assert snapshot()["qemu-mips64el"] == disabled["qemu-mips64el"]  # Debian's untouched

    # 3. a mips64el binary really runs on the host
    cp = _run_probe_on_host(tmp_path)
    assert (cp.returncode, cp.stdout) == (5, b"podrepro-probe mips64el\n"), cp.stderr

    r = podrepro("doctor", "mips64el", "--json", env=env)
    d = json.loads(r.stdout)
    m = d["arches"]["mips64el"]
    assert m["usable"] is True and m["entry"]["name"] == "podrepro-mips64el" and m["probe"] == "ok"

    # 4. ... and in a rootless container of the unprivileged test user (CI sets PODREPRO_TEST_USER;
    # without it, CI fails here instead of quietly leaving this step out)
    user = os.environ.get("PODREPRO_TEST_USER")
    if not user and in_ci():
        pytest.fail("PODREPRO_TEST_USER is not set: step 4 (a rootless container) cannot run")
    if user:
        image = f"localhost/podrepro-test/binfmt-{uuid.uuid4().hex[:10]}:mips64el"
        try:
            imp = _as_user(user, "podman", "import", "--arch", "mips64le", "--os", "linux", "-", image,
                           input=_image_tar(elfprobe.build(ARCH)))
            assert imp.returncode == 0, imp.stderr.decode()
            run = _as_user(user, "podman", "run", "--rm", "--pull=never", "--network=none",
                           "--platform", "linux/mips64le", image, "/probe")
            assert (run.returncode, run.stdout) == (0, b"podrepro-probe mips64el\n"), run.stderr.decode()
        finally:
            _as_user(user, "podman", "rmi", "-f", image)

    # 5. registering again changes nothing, and says so
    registered = snapshot()
    conf_text = conf.read_text()
    r = podrepro("binfmt", "register", "mips64el", "--yes", env=env)
    assert r.returncode == 0 and "no change made" in r.stdout, r.stdout + r.stderr
    assert "podrepro-mips64el is already registered and usable" in r.stdout
    assert snapshot() == registered and conf.read_text() == conf_text

    # 6. unregister removes exactly what register created
    r = podrepro("binfmt", "unregister", "mips64el", "--yes", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not OURS.exists() and not conf.exists()
    assert snapshot() == disabled
    r = podrepro("binfmt", "unregister", "mips64el", "--yes", env=env)
    assert r.returncode == 0 and "no change made" in r.stdout


def test_register_refuses_without_tty_and_yes(debian_mips64el_disabled: dict[str, str], tmp_path: Path) -> None:
    r = podrepro("binfmt", "register", "mips64el", env=_env(tmp_path / "binfmt.d"), input="")
    assert r.returncode == 1
    assert "refusing to register without confirmation: stdin is not a terminal" in r.stderr
    assert not OURS.exists() and not (tmp_path / "binfmt.d").exists()
