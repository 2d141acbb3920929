"""Remote engines for real (issue 19): a second account's rootless podman over a real
``podman system connection`` (ssh to 127.0.0.1; nothing leaves this machine).

Root only to set up two accounts (marker ``root``): PODREPRO_PEER_USER runs its own sshd (as
itself, on a free port, with a host key and authorized key made here) and its own podman service
over a store that is empty at the start; PODREPRO_TEST_USER adds the connection and runs
podrepro. ``test arm --connection`` reproduces the example's failures there (image sent, tree
synced, results back), a matrix puts arm here and mips there, amd64 runs natively there, doctor
checks that side; nothing is left running and no container is left on either side.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import as_account, other_account

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "wordsize"




def _as(pw: pwd.struct_passwd, *argv: str, env: dict[str, str] | None = None, cwd: Path = Path("/"),
        timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    python = os.environ.get("PODREPRO_TEST_PYTHON") or sys.executable
    # /usr/sbin too: the peer's sshd
    e = {"PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin", **(env or {})}
    return subprocess.run([*as_account(pw, e), *argv], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Peer:
    name: str                    # the connection's name
    maker: pwd.struct_passwd
    peer: pwd.struct_passwd
    store_env: dict[str, str]

    def podrepro(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        python = os.environ.get("PODREPRO_TEST_PYTHON") or sys.executable
        return _as(self.maker, python, "-m", "podrepro", *args, cwd=cwd)

    def peer_podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _as(self.peer, "podman", *args, env=self.store_env)


@pytest.fixture
def peer() -> Iterator[Peer]:
    maker, other = other_account("PODREPRO_TEST_USER"), other_account("PODREPRO_PEER_USER")
    if not shutil.which("sshd", path="/usr/sbin:/usr/bin"):
        pytest.fail("sshd is missing: scripts/test-all.sh installs openssh-server")
    work = Path(tempfile.mkdtemp(prefix="podrepro-remote-e2e-", dir="/var/tmp"))
    work.chmod(0o755)
    name = f"podrepro-e2e-{secrets.token_hex(3)}"
    port = _free_port()
    Path(f"/run/user/{other.pw_uid}").mkdir(mode=0o700, exist_ok=True)
    shutil.chown(f"/run/user/{other.pw_uid}", other.pw_uid, other.pw_gid)
    sshd_dir, store, keys = work / "sshd", work / "store", work / "keys"
    for d in (sshd_dir, store / "data", store / "config" / "containers", keys):
        d.mkdir(parents=True)
    (store / "run").mkdir(mode=0o700)
    for f in Path(other.pw_dir, ".config", "containers").glob("*.conf"):
        shutil.copy(f, store / "config" / "containers" / f.name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(sshd_dir / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id")], check=True)
    shutil.copy(keys / "id.pub", sshd_dir / "authorized_keys")
    (sshd_dir / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {sshd_dir}/host_key\nAuthorizedKeysFile {sshd_dir}/authorized_keys\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"PidFile {sshd_dir}/sshd.pid\n")
    subprocess.run(["chown", "-R", f"{other.pw_uid}:{other.pw_gid}", str(sshd_dir), str(store)], check=True)
    subprocess.run(["chown", "-R", f"{maker.pw_uid}:{maker.pw_gid}", str(keys)], check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd insists on its privilege-separation dir
    store_env = {"XDG_DATA_HOME": f"{store}/data", "XDG_CONFIG_HOME": f"{store}/config", "XDG_RUNTIME_DIR": f"{store}/run"}
    # podman 4.3's `connection add` keeps a socket path under /run/user/UID as given (one under
    # /var/tmp came out as /run/podman.sock): the socket lives there, the store's state elsewhere
    sock_dir = Path(f"/run/user/{other.pw_uid}/{name}")
    sock_dir.mkdir(parents=True)
    shutil.chown(sock_dir, other.pw_uid, other.pw_gid)
    sock = f"{sock_dir}/podman.sock"
    sshd = _as(other, "/usr/sbin/sshd", "-f", str(sshd_dir / "sshd_config"), "-E", str(sshd_dir / "log"))
    assert sshd.returncode == 0, sshd.stderr
    python = os.environ.get("PODREPRO_TEST_PYTHON") or sys.executable
    service = subprocess.Popen(
        ["runuser", "-u", other.pw_name, "--", "env", "-i", f"PATH={Path(python).parent}:/usr/bin:/bin",
         f"HOME={other.pw_dir}", *(f"{k}={v}" for k, v in store_env.items()),
         "podman", "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    known = Path(maker.pw_dir, ".ssh", "known_hosts")
    known_before = known.read_bytes() if known.is_file() else None
    p = Peer(name, maker, other, store_env)
    try:
        for _ in range(100):
            if Path(sock).exists():
                break
            time.sleep(0.1)
        scan = subprocess.run(["ssh-keyscan", "-p", str(port), "127.0.0.1"], capture_output=True, text=True, timeout=30)
        assert scan.stdout.strip(), scan.stderr
        _as(maker, "sh", "-c", f"mkdir -p ~/.ssh && chmod 700 ~/.ssh && touch {known}", timeout=30)
        with open(known, "a") as kh:  # the account's own file (touched as that account)
            kh.write(scan.stdout)
        add = _as(maker, "podman", "system", "connection", "add", name, "--identity", str(keys / "id"),
                  f"ssh://{other.pw_name}@127.0.0.1:{port}{sock}")
        assert add.returncode == 0, add.stderr
        yield p
    finally:
        _as(maker, "podman", "system", "connection", "remove", name)
        if known_before is None:
            known.unlink(missing_ok=True)
        else:
            known.write_bytes(known_before)  # the account's known_hosts as it was
        p.peer_podman("system", "reset", "--force")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGTERM)  # runuser and the service: a session of their own
        with contextlib.suppress(subprocess.TimeoutExpired):
            service.wait(timeout=30)
        for pidfile in (sshd_dir / "sshd.pid", store / "run" / "libpod" / "tmp" / "pause.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(sock_dir, ignore_errors=True)
    for _ in range(50):  # sshd's and the service's exits take a moment
        leftover = subprocess.run(["pgrep", "-u", other.pw_name, "-a"], capture_output=True, text=True).stdout
        if not leftover:
            break
        time.sleep(0.2)
    assert leftover == "", f"left running as {other.pw_name}: {leftover}"


def _project(pw: pwd.struct_passwd) -> Path:
    proj = Path(tempfile.mkdtemp(prefix="podrepro-remote-proj-", dir="/var/tmp")) / "wordsize"
    shutil.copytree(EXAMPLE, proj, ignore=shutil.ignore_patterns("build-podrepro-*", ".podrepro"))
    (proj / ".git").mkdir()  # stands for a repository: never synced
    (proj / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(proj.parent)], check=True)
    return proj


def test_tests_run_on_a_second_accounts_podman_over_ssh(peer: Peer) -> None:
    proj = _project(peer.maker)
    try:
        d = peer.podrepro("doctor", "--connection", peer.name, "arm", "mips", "amd64", cwd=proj)
        assert d.returncode == 0 and f"{peer.name}: ready" in d.stdout, d.stdout + d.stderr
        assert "amd64 runs natively" in d.stdout and "rootless" in d.stdout
        assert peer.peer_podman("images", "-q").stdout.strip() == ""  # an empty store

        t = peer.podrepro("test", "arm", "--connection", peer.name, cwd=proj)
        assert t.returncode == 8, t.stdout + t.stderr
        assert "podrepro: 3 tests ran on arm, 2 failed: checksum, y2038" in t.stderr, t.stderr
        assert f"arm runs emulated on {peer.name}" in t.stderr and f"to {peer.name} (podman save |" in t.stderr
        there = Path(t.stderr.split(f"project synced to {peer.name}:", 1)[1].split(" ", 1)[0])
        assert there.is_relative_to(peer.peer.pw_dir), there
        assert (there / "src" / "checksum.c").read_bytes() == (proj / "src" / "checksum.c").read_bytes()
        assert not (there / ".git").exists() and (there / "build-podrepro-arm" / "build.ninja").is_file()
        junit = proj / "build-podrepro-arm" / "podrepro-junit.xml"  # the results came back
        assert junit.is_file() and 'name="checksum"' in junit.read_text()
        assert peer.peer_podman("images", "--format", "{{.Repository}}").stdout.split() == ["localhost/podrepro/generic"]

        m = peer.podrepro("test", "arm,mips", "--connection", f"local,{peer.name}", "--json", cwd=proj)
        assert m.returncode == 1, m.stdout + m.stderr
        got = {a["arch"]: a for a in json.loads(m.stdout)["arches"]}
        assert (got["arm"]["engine"], got["mips"]["engine"]) == ("local", peer.name)
        for a in ("arm", "mips"):
            assert got[a]["failed_tests"] == ["checksum", "y2038"], got[a]
        assert "mips runs emulated on" in Path(got["mips"]["log"]).read_text()
        assert "runs emulated on" not in Path(got["arm"]["log"]).read_text()

        n = peer.podrepro("run", "amd64", "--profile", "base", "--connection", peer.name, "--", "uname", "-m", cwd=proj)
        assert (n.returncode, n.stdout.strip()) == (0, "x86_64"), n.stderr
        assert f"amd64 runs natively on {peer.name} (x86_64): no emulation" in n.stderr
        e = peer.podrepro("run", "arm", "--profile", "base", "--connection", peer.name, "--", "sh", "-c", "exit 7",
                          cwd=proj)
        assert e.returncode == 7, e.stderr

        ls = peer.podrepro("image", "ls", "--connection", peer.name, "--json", cwd=proj)
        there_tags = {r["tag"]: r["arch"] for r in json.loads(ls.stdout)}
        base = next(t for t in there_tags if t.startswith("localhost/podrepro/base:amd64-"))
        assert there_tags[base] == "amd64" and any(t.startswith("localhost/podrepro/generic:mips-") for t in there_tags)
        rm = peer.podrepro("image", "rm", "--connection", peer.name, base, cwd=proj)
        assert rm.returncode == 0 and f"removed {base} from {peer.name}" in rm.stdout, rm.stderr
        assert base not in peer.peer_podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout

        assert peer.peer_podman("ps", "-a", "-q").stdout.strip() == ""
        assert _as(peer.maker, "podman", "ps", "-a", "-q", "--filter", "label=io.podrepro.run").stdout.strip() == ""
    finally:
        shutil.rmtree(proj.parent, ignore_errors=True)


def test_a_connection_that_does_not_exist_says_how_to_add_one() -> None:
    maker = other_account("PODREPRO_TEST_USER")
    python = os.environ.get("PODREPRO_TEST_PYTHON") or sys.executable
    r = _as(maker, python, "-m", "podrepro", "run", "arm", "--connection", "no-such-peer", "--", "true", cwd=Path("/tmp"))
    assert r.returncode == 1 and "no podman connection named 'no-such-peer'" in r.stderr, r.stderr
    assert "podman system connection add" in r.stderr
