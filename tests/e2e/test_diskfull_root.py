"""A bootstrap whose package cache is on a nearly full filesystem (issue 6, item 8).

Rootless users cannot mount, so this test runs as root (marker ``root``): it mounts a small tmpfs,
fills most of it, hands it to the unprivileged test user (PODREPRO_TEST_USER) and runs the bootstrap
as that user with PODREPRO_CACHE_DIR on it. mmdebstrap's sync-out of the downloaded .debs into the
cache hits ENOSPC. mmdebstrap goes on without saving the cache (its sync-out is not fatal), so
podrepro must either finish and warn about the space in one line, or fail with one "no space"
line and tag nothing; in both cases no temporary image, container or temp dir is left.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import account_ids, temp_dirs_of

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.slow]

TMPFS_MB = 64
FILL_MB = 58
PROGRESS = re.compile(r"\d\d:\d\d:\d\d \[\d\d:\d\d\] ")


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str

    def env(self, **extra: str) -> list[str]:
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home, "USER": self.name,
             "LOGNAME": self.name, "XDG_RUNTIME_DIR": f"/run/user/{self.uid}", "LANG": "C.UTF-8",
             "PODREPRO_PROGRESS": "plain", "PODREPRO_AUDIT_LOG": os.environ.get("PODREPRO_AUDIT_LOG", "")}
        e.update(extra)
        return ["runuser", "-u", self.name, "--", "env", "-i", *(f"{k}={v}" for k, v in e.items())]

    def ids(self) -> set[int]:
        """uid and subordinate uids (mmdebstrap --mode=unshare's temp dirs belong to the latter)."""
        return account_ids(self.name)

    def mmdebstrap_dirs(self) -> set[str]:
        """mmdebstrap's and podrepro's temp dirs of this user (podrepro-mm-*, podrepro-svc-*, ...)."""
        return temp_dirs_of(self.ids())

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.env(), "podman", *args], capture_output=True, text=True, timeout=600,
                              cwd="/")


@pytest.fixture
def user() -> User:
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs: run it as root (scripts/test-all.sh does, with -m root)")
    name = os.environ.get("PODREPRO_TEST_USER")
    if not name:
        pytest.fail("PODREPRO_TEST_USER must name the unprivileged user whose podman store the test uses")
    pw = pwd.getpwnam(name)
    return User(name, pw.pw_uid, pw.pw_gid, pw.pw_dir)


@pytest.fixture
def full_fs(user: User) -> Iterator[Path]:
    mnt = Path(f"/var/tmp/podrepro-diskfull-{secrets.token_hex(4)}")
    mnt.mkdir(mode=0o755)
    mounted = False
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0755", "tmpfs", str(mnt)], check=True)
        mounted = True
        with open(mnt / "filler", "wb") as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(FILL_MB):
                f.write(chunk)
        os.chown(mnt, user.uid, user.gid)
        yield mnt
    finally:
        if mounted and subprocess.run(["umount", str(mnt)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)])
        shutil.rmtree(mnt, ignore_errors=True)
        assert not os.path.ismount(mnt)


def test_bootstrap_on_a_full_cache_fails_cleanly(user: User, full_fs: Path) -> None:
    python = os.environ.get("PODREPRO_TEST_PYTHON") or sys.executable
    src = str(Path(__file__).resolve().parents[2])
    state = Path(f"/var/tmp/podrepro-diskfull-state-{secrets.token_hex(4)}")
    state.mkdir()
    os.chown(state, user.uid, user.gid)

    def tags() -> list[str]:
        return user.podman("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.split("\n")

    before = tags()
    dirs_before = user.mmdebstrap_dirs()
    try:
        cp = subprocess.run(
            [*user.env(PODREPRO_CACHE_DIR=str(full_fs / "cache"), PODREPRO_STATE_DIR=str(state), PYTHONPATH=src),
             python, "-m", "podrepro", "image", "build", "arm", "--profile", "base", "--rebuild"],
            capture_output=True, text=True, timeout=3000, cwd="/")
        logs = sorted((state / "logs").glob("*.log"), key=lambda f: f.stat().st_mtime)
        tail = logs[-1].read_text(errors="replace")[-3000:] if logs else "(no build log)"
        print(f"exit {cp.returncode}\n{cp.stderr}\nbuild log tail:\n{tail}")
        errors = [ln for ln in cp.stderr.splitlines() if ln.startswith("error: ")]
        warnings = [ln for ln in cp.stderr.splitlines() if ln.startswith("warning: ")]
        others = [ln for ln in cp.stderr.splitlines()
                  if ln.strip() and not PROGRESS.match(ln) and ln not in errors + warnings]
        assert others == [] and "Traceback" not in cp.stderr, cp.stderr
        after = tags()
        assert [t for t in after if t.startswith("localhost/podrepro/tmp:")] == []
        # the bootstrap goes on when the .debs cannot be saved (the hook sends them while dpkg
        # configures, podrepro stores them): the image is built and verified, and podrepro says
        # so, one warning line for the .deb cache, and one for the index if that did not fit either
        assert cp.returncode == 0, cp.stderr
        assert errors == [] and len(warnings) in (1, 2), cp.stderr
        assert "no space left on device for the package cache" in warnings[0], cp.stderr
        assert all("could not update the image index" in w and "is built" in w for w in warnings[1:]), cp.stderr
        # and no half-written .deb is left in the cache under any name
        assert not [p.name for p in (full_fs / "cache").rglob("*") if ".part-" in p.name], cp.stderr
        assert cp.stdout.strip().startswith("localhost/podrepro/base:arm-"), cp.stdout
        assert cp.stdout.strip().split()[0] in "\n".join(after), "the built image is tagged"
        ps = user.podman("ps", "-a", "--external", "--format", "{{.ID}} {{.Image}}")
        assert [ln for ln in ps.stdout.splitlines() if "podrepro" in ln] == []
        assert user.mmdebstrap_dirs() - dirs_before == set()
        # --rebuild re-tags: the image it replaced is left untagged; remove it (we made it so)
        for line in before:
            old_id = line.split()[-1] if line.startswith("localhost/podrepro/base:arm-") else ""
            if old_id and f"<none>:<none> {old_id}" in after:
                user.podman("rmi", old_id)
    finally:
        shutil.rmtree(state, ignore_errors=True)
