"""Repro bundles for real (issue 20): made by one user, replayed by another with an empty store.

Root only to act as two accounts (marker ``root``): PODREPRO_TEST_USER makes the bundles in a
git clone of examples/wordsize with uncommitted and untracked changes, a secret in its
environment passed through with ``-e``; PODREPRO_PEER_USER (scripts/test-all.sh creates it)
replays them with a podman store, cache and state of its own, empty at the start: "reproduced"
with the same failing tests, then, in the rebuilt tree with the fix applied, "not reproduced".
No bundle holds the secret; no container is left on either side.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import as_account, other_account

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "wordsize"


@dataclass
class Account:
    pw: pwd.struct_passwd
    store: Path | None   # a podman store, cache and state of its own (None: the user's own)
    audit: str | None = None  # its own audit log (the suite's is another account's file)

    def env(self, **extra: str) -> list[str]:
        e = {"PODREPRO_AUDIT_LOG": self.audit} if self.audit is not None else {}
        if self.store is not None:
            s = self.store
            e |= {"XDG_DATA_HOME": f"{s}/data", "XDG_CONFIG_HOME": f"{s}/config", "XDG_RUNTIME_DIR": f"{s}/run",
                  "PODREPRO_CACHE_DIR": f"{s}/cache", "PODREPRO_STATE_DIR": f"{s}/state",
                  "PODREPRO_CONFIG_DIR": f"{s}/pconfig"}
        return as_account(self.pw, e | extra)

    def run(self, *argv: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.env(**extra), *argv], capture_output=True, text=True, timeout=1800, cwd=cwd)

    def podrepro(self, *args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        python = os.environ.get("PODREPRO_TEST_PYTHON") or sys.executable
        return self.run(python, "-m", "podrepro", *args, cwd=cwd, **extra)

    def containers(self) -> list[str]:
        return self.run("podman", "ps", "-a", "-q", cwd=Path("/")).stdout.split()




@pytest.fixture
def work() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="podrepro-bundle-e2e-", dir="/var/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def maker(work: Path) -> Account:
    return Account(other_account("PODREPRO_TEST_USER"), None)


@pytest.fixture
def peer(work: Path) -> Iterator[Account]:
    """The second account with an empty store of its own (its containers.conf and storage.conf
    come along: runc and overlay on this host)."""
    pw = other_account("PODREPRO_PEER_USER")
    store = work / "peer-store"
    (store / "config" / "containers").mkdir(parents=True)
    for f in Path(pw.pw_dir, ".config", "containers").glob("*.conf"):
        shutil.copy(f, store / "config" / "containers" / f.name)
    (store / "data").mkdir()
    (store / "run").mkdir(mode=0o700)
    audit = store / "audit.log"  # its commands are audited too: appended to the suite's log at the end
    audit.touch()
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(store)], check=True)
    acc = Account(pw, store, str(audit) if os.environ.get("PODREPRO_AUDIT_LOG") else None)
    try:
        yield acc
    finally:
        suite_log = os.environ.get("PODREPRO_AUDIT_LOG")
        if suite_log and audit.is_file():
            with open(suite_log, "a", encoding="utf-8") as log_f:
                log_f.write(audit.read_text())
        acc.run("podman", "system", "reset", "--force", cwd=Path("/"))
        pause = store / "run" / "libpod" / "tmp" / "pause.pid"  # this store's own pause process
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pause.read_text()), signal.SIGKILL)


def _project(work: Path, acc: Account) -> Path:
    proj = work / "proj"
    shutil.copytree(EXAMPLE, proj, ignore=shutil.ignore_patterns("build-podrepro-*", ".podrepro"))
    subprocess.run(["chown", "-R", f"{acc.pw.pw_uid}:{acc.pw.pw_gid}", str(proj)], check=True)
    for argv in (["git", "init", "-q"], ["git", "add", "-A"],
                 ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-qm", "wordsize"]):
        assert acc.run(*argv, cwd=proj).returncode == 0
    # not committed: a change to a tracked file and a new file, both part of the reproduction
    assert acc.run("sh", "-c", "echo '/* local edit */' >> src/dates.c && echo 'see dates.c' > NOTES.txt",
                   cwd=proj).returncode == 0
    return proj


def _members(bundle: Path) -> dict[str, bytes]:
    """Every member's bytes, gzipped ones (the tree) also unpacked."""
    out: dict[str, bytes] = {}
    with tarfile.open(bundle) as tf:
        for m in tf:
            f = tf.extractfile(m)
            assert f is not None, m.name
            out[m.name] = data = f.read()
            if m.name.endswith(".tar.gz"):
                with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as inner:
                    for im in inner:
                        g = inner.extractfile(im)
                        out[f"{m.name}:{im.name}"] = g.read() if g else b""
    return out


def test_a_bundle_replays_as_another_user_and_a_fix_is_not_reproduced(work: Path, maker: Account, peer: Account) -> None:
    proj = _project(work, maker)
    out = work / "out"
    out.mkdir()
    shutil.chown(out, maker.pw.pw_uid, maker.pw.pw_gid)
    nowhere = maker.podrepro("bundle", "arm", "-o", str(work / "b.tar"), "--", "test", cwd=proj)
    assert nowhere.returncode == 2 and "cannot write in" in nowhere.stderr and "checksum" not in nowhere.stdout
    secret = f"s3cret-{secrets.token_hex(8)}"
    before = set(maker.containers())
    bundle = out / "wordsize-arm.tar"
    b = maker.podrepro("bundle", "arm", "-o", str(bundle), "--", "test", "-e", "SECRET_TOKEN", cwd=proj,
                       SECRET_TOKEN=secret)
    assert b.returncode == 0, b.stdout + b.stderr
    assert "the run: exit 8, 2 failed: checksum, y2038" in b.stdout, b.stdout
    # the secret in the environment, in a run whose output shows it
    shown = out / "secret-run.tar"
    s = maker.podrepro("bundle", "arm", "-o", str(shown), "--no-image", "--", "run", "-e", "SECRET_TOKEN", "--",
                       "sh", "-c", 'echo "token=$SECRET_TOKEN"; exit 3', cwd=proj, SECRET_TOKEN=secret)
    assert s.returncode == 0 and f"token={secret}" in s.stdout, s.stdout + s.stderr
    assert "the run: exit 3" in s.stdout
    for path in (bundle, shown):
        members = _members(path)
        assert {"manifest.json", "result/log.txt", "tree.diff", "tree.tar.gz"} <= set(members), members.keys()
        leaks = [name for name, data in members.items() if secret.encode() in data]
        assert not leaks, f"{path.name}: the secret is in {leaks}"
        assert b"SECRET_TOKEN" in members["manifest.json"]
    assert b"token=<$SECRET_TOKEN>" in _members(shown)["result/log.txt"]
    assert "image.oci.tar" in _members(bundle) and "image.oci.tar" not in _members(shown)
    assert set(maker.containers()) == before
    status = maker.run("git", "status", "--porcelain", cwd=proj).stdout.splitlines()
    assert status == [" M src/dates.c", "?? NOTES.txt", "?? build-podrepro-arm/"], status  # the bundle is not in it

    # the second account: nothing in its store
    assert peer.run("podman", "images", "-q", cwd=Path("/")).stdout.strip() == ""
    bundle.chmod(0o644)
    home = work / "peer-home"
    home.mkdir()
    shutil.chown(home, peer.pw.pw_uid, peer.pw.pw_gid)
    r = peer.podrepro("replay", str(bundle), cwd=home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "replay: reproduced: the same 2 failing test(s): checksum, y2038" in r.stdout, r.stdout
    assert "loading the bundled image" in r.stderr and "SECRET_TOKEN was passed through" in r.stderr
    tree = Path(re.search(r"^tree: (\S+);", r.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert (tree / "NOTES.txt").read_text() == "see dates.c\n"
    assert (tree / "src" / "dates.c").read_text().endswith("/* local edit */\n")
    ids = peer.run("podman", "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "--no-trunc", cwd=Path("/"))
    assert re.search(r"localhost/podrepro/generic:arm-\w+ (sha256:)?[0-9a-f]{64}", ids.stdout), ids.stdout

    # the fix, in the replayed tree: 64-bit types, and 64-bit time_t
    fix = ("sed -i 's/unsigned long/uint64_t/g' src/checksum.c src/wordsize.h && "
           "sed -i 's/^project(wordsize C)$/project(wordsize C)\\nadd_compile_definitions(_FILE_OFFSET_BITS=64 _TIME_BITS=64)/' "
           "CMakeLists.txt")
    assert peer.run("sh", "-c", fix, cwd=tree).returncode == 0
    f = peer.podrepro("replay", str(bundle), "--in", str(tree), cwd=home)
    assert f.returncode == 1, f.stdout + f.stderr
    assert "replay: not reproduced: it passes here (exit 0, 3 tests ran, all passed)" in f.stdout, f.stdout
    assert "replaying in" in f.stderr and "as it is" in f.stderr
    assert peer.containers() == [] and set(maker.containers()) == before
    for acc in (maker, peer):  # nor a private podman API service (podrepro-svc-*) of either account
        left = subprocess.run(["pgrep", "-u", acc.pw.pw_name, "-af", "podrepro-svc-"], capture_output=True, text=True)
        assert left.stdout == "", f"left running as {acc.pw.pw_name}: {left.stdout}"
