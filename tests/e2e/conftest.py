"""Fixtures for the end-to-end tests: podrepro and podman run for real, rootless.

The e2e suite runs as an unprivileged user (scripts/test-all.sh creates ``podrepro-ci``) except
the tests marked ``root`` (binfmt registration), which CI runs as root with PODREPRO_TEST_USER
naming the unprivileged user for their container checks.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def podrepro(*args: str, env: dict[str, str] | None = None, cwd: Path | str | None = None,
             timeout: float = 1800, input: str | None = None) -> Result:
    e = dict(os.environ)
    e.setdefault("PODREPRO_PROGRESS", "plain")
    e.update(env or {})
    cp = subprocess.run([sys.executable, "-m", "podrepro", *args], capture_output=True, text=True,
                        env=e, cwd=str(cwd) if cwd else None, timeout=timeout, input=input)
    return Result(cp.returncode, cp.stdout, cp.stderr)


def approve(project: Path, env: dict[str, str] | None = None) -> None:
    """`podrepro trust` in ``project``: what its podrepro.toml asks for (a Containerfile,
    packages, ...) counts from now on."""
    r = podrepro("trust", cwd=project, env=env)
    assert r.returncode == 0 and r.stdout.startswith("approved "), r.stdout + r.stderr


def podman(*args: str, timeout: float = 600, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["podman", *args], capture_output=True, timeout=timeout, input=input)


@pytest.fixture(scope="session", autouse=True)
def _rootless_banner(request: pytest.FixtureRequest) -> None:
    """Say (and check) how the e2e suite runs: which user, runtime and storage driver."""
    if not request.config.getoption("--e2e"):
        return
    if os.geteuid() == 0:
        return  # the root-marked binfmt tests; their container checks use PODREPRO_TEST_USER
    cp = podman("info", "--format", "json", timeout=120)
    if cp.returncode != 0:
        pytest.exit(f"podman info failed as {os.environ.get('USER')}: {cp.stderr.decode()[-500:]}", returncode=3)
    info = json.loads(cp.stdout)
    rootless = info["host"]["security"]["rootless"]
    line = (f"e2e: user={os.environ.get('USER') or os.getuid()} uid={os.getuid()} rootless={rootless} "
            f"runtime={info['host']['ociRuntime']['name']} storage={info['store']['graphDriverName']} "
            f"cgroups={info['host'].get('cgroupVersion')} podman={info['version']['Version']}")
    print("\n" + line, file=sys.stderr)
    with open(os.environ.get("PODREPRO_E2E_BANNER", "/dev/null"), "a") as f:
        f.write(line + "\n")
    if not rootless:
        pytest.exit("the e2e suite must run rootless (as an unprivileged user)", returncode=3)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def scratch_image(unique: str) -> Iterator[str]:
    """A unique image name that is removed afterwards."""
    name = f"localhost/podrepro-test/{unique}:latest"
    yield name
    podman("rmi", "-f", name)


def example(name: str, tmp_path: Path) -> Path:
    """A copy of ``examples/NAME`` in a fresh directory: never what a developer's own runs left
    in it (build trees made for another path, .podrepro/)."""
    dst = tmp_path / name
    shutil.copytree(REPO / "examples" / name, dst,
                    ignore=shutil.ignore_patterns("build-podrepro-*", "build", ".podrepro"))
    return dst


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the bundled example project in a fresh directory."""
    return example("wordsize", tmp_path)


# every temp dir podrepro or its tools make, in /tmp and /var/tmp: mmdebstrap's own default name,
# the TMPDIR podrepro gives mmdebstrap (podrepro-mm-UID-PID-*), podman import
# (podrepro-import-*) and podman build (podrepro-build-*), podrepro's private API service
# (podrepro-svc-*); and what those tools make when left to their defaults and leave when they
# are interrupted: podman import's copy of its standard input (podmanNNN), podman build's RUN
# step dirs (buildahNNN), dpkg-deb's control dirs (dpkg-deb.*) and mktemp's (tmp.*)
TEMP_DIR_PATTERNS = ("mmdebstrap.*", "podrepro-mm-*", "podrepro-import-*", "podrepro-build-*", "podrepro-svc-*",
                     "podman[0-9]*", "buildah[0-9]*", "dpkg-deb.*", "tmp.*")


def account_ids(name: str | None = None) -> set[int]:
    """An account's uid and its subordinate uids (mmdebstrap --mode=unshare's temp dirs belong
    to the latter); this process's account by default."""
    pw = pwd.getpwnam(name) if name else pwd.getpwuid(os.getuid())
    out = {pw.pw_uid}
    for line in Path("/etc/subuid").read_text().splitlines():
        who, start, count = line.split(":")
        if who in (pw.pw_name, str(pw.pw_uid)):
            out.update(range(int(start), int(start) + int(count)))
    return out


def temp_dirs_of(ids: set[int] | range | frozenset[int]) -> set[str]:
    """Names of podrepro's (and mmdebstrap's) temp dirs owned by any of ``ids`` (a user and its
    subordinate ids: mmdebstrap --mode=unshare's dirs belong to the latter)."""
    import tempfile

    out = set()
    for base in {Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")}:
        for pat in TEMP_DIR_PATTERNS:
            for p in base.glob(pat):
                try:
                    if p.lstat().st_uid in ids:
                        out.add(str(p))
                except FileNotFoundError:
                    continue
    return out


def through_a_pty(args: list[str], cwd: Path, answer: Callable[[bytes], bytes | None],
                  timeout: float = 300) -> tuple[bytes, int]:
    """Run ``podrepro ARGS`` on a pseudo-terminal in ``cwd``; after each read, ``answer`` gets
    all output so far and returns what to type next (or None). (output, exit code)."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(cwd)
        os.execvp(sys.executable, [sys.executable, "-m", "podrepro", *args])
    out = b""
    status = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            out += chunk
        typed = answer(out)
        if typed:
            os.write(fd, typed)
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid:
            status = st
            break
    if status is None:
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out, os.waitstatus_to_exitcode(status)


def no_leftover_containers() -> list[str]:
    cp = podman("ps", "-a", "--external", "--format", "{{.ID}} {{.Image}} {{.Names}}")
    return [ln for ln in cp.stdout.decode().splitlines() if "podrepro" in ln]


def other_account(var: str) -> pwd.struct_passwd:
    """The unprivileged account the environment variable ``var`` names, for the root-marked
    tests that act as a second account (scripts/test-all.sh sets the variables)."""
    if os.geteuid() != 0:
        pytest.fail("this test acts as two accounts: run it as root (scripts/test-all.sh does, with -m root)")
    name = os.environ.get(var)
    if not name:
        pytest.fail(f"{var} must name an unprivileged account (scripts/test-all.sh sets it)")
    return pwd.getpwnam(name)


def as_account(pw: pwd.struct_passwd, env: Mapping[str, str] = {}) -> list[str]:
    """The argv prefix that runs a command as ``pw`` with a clean login-like environment: the
    test's Python first on PATH, the suite's audit log, plain progress; ``env`` on top."""
    python = os.environ.get("PODREPRO_TEST_PYTHON") or sys.executable
    e = {"PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": pw.pw_dir, "USER": pw.pw_name,
         "LOGNAME": pw.pw_name, "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": f"/run/user/{pw.pw_uid}",
         "PODREPRO_PROGRESS": "plain", "PODREPRO_AUDIT_LOG": os.environ.get("PODREPRO_AUDIT_LOG", ""), **env}
    return ["runuser", "-u", pw.pw_name, "--", "env", "-i", *(f"{k}={v}" for k, v in e.items())]
