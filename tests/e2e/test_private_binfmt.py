"""Zero-sudo emulation on the real kernel: a container registers its own, private handler.

Root is needed only to prove that no host handler is involved: Debian's ``qemu-mips64el`` entry is
disabled for the duration (never arm/mipsel: other work on the same host runs those) and restored
afterwards; the containers themselves run rootless as PODREPRO_TEST_USER, with no podman option
beyond a bind mount, ``--user 0:0`` and ``--entrypoint``. The probe images have no shell, so the
probe binary itself is the command.

    sudo PODREPRO_TEST_USER=podrepro-ci /tmp/venv/bin/pytest --e2e -m root tests/e2e/test_private_binfmt.py
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from podrepro import elfprobe, privbinfmt
from podrepro.arches import lookup
from podrepro.binfmt.qemu import kernel_supported
from podrepro.paths import Paths
from tests.e2e.conftest import REPO, account_ids, temp_dirs_of
from tests.e2e.test_binfmt_root import (  # the fixture disables Debian's qemu-mips64el, restores it, compares
    BINFMT,
    _as_user,
    debian_mips64el_disabled,  # noqa: F401
    mips64el_state,  # noqa: F401
    snapshot,
)
from tests.e2e.test_probe import _image_tar

pytestmark = pytest.mark.root

MIPS64EL = lookup("mips64el")
ARM = lookup("arm")
MSG = b"private handler, no host change\n"


@pytest.fixture
def user(request: pytest.FixtureRequest) -> pwd.struct_passwd:
    request.getfixturevalue("mips64el_state")  # Debian's entry loaded, no stale podrepro-mips64el
    name = os.environ.get("PODREPRO_TEST_USER")
    if not name:
        pytest.skip("PODREPRO_TEST_USER (the unprivileged user for rootless podman) is not set")
    if not kernel_supported():
        pytest.skip(f"kernel {os.uname().release} < 6.7: no private binfmt_misc in user namespaces")
    return pwd.getpwnam(name)


@pytest.fixture
def cache() -> Iterator[Paths]:
    """A cache dir the test user can read (not /tmp/pytest-of-root, which is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="podrepro-privbinfmt-"))
    try:
        d.chmod(0o755)
        yield Paths(cache=d, config=d / "config", state=d / "state")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def images(user: pwd.struct_passwd) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    imgs = {"mips64el": f"localhost/podrepro-test/privbinfmt-{tag}:mips64el",
            "arm": f"localhost/podrepro-test/privbinfmt-{tag}:arm"}
    try:
        for arch, plat in ((MIPS64EL, ["--arch", "mips64le"]), (ARM, ["--arch", "arm", "--variant", "v7"])):
            msg = MSG if arch is MIPS64EL else None
            code = 5 if arch is MIPS64EL else 0
            cp = _as_user(user.pw_name, "podman", "import", *plat, "--os", "linux", "-", imgs[arch.alias],
                          input=_image_tar(elfprobe.build(arch, msg, exit_code=code)))
            assert cp.returncode == 0, cp.stderr.decode()
        yield imgs
    finally:
        for img in imgs.values():
            _as_user(user.pw_name, "podman", "rmi", "-f", img)


def _run(user: pwd.struct_passwd, image: str, platform: str, extra: list[str]) -> subprocess.CompletedProcess[bytes]:
    return _as_user(user.pw_name, "podman", "run", "--rm", "--pull=never", "--network=none",
                    "--platform", platform, "--userns=keep-id", *extra, image, "/probe")


@pytest.mark.usefixtures("debian_mips64el_disabled")
def test_private_handler_runs_foreign_binary_without_host_handler(
        user: pwd.struct_passwd, cache: Paths, images: dict[str, str]) -> None:
    disabled = snapshot()
    assert disabled["qemu-mips64el"].startswith("disabled")
    # what podrepro run --private-binfmt does: compile the shim, find qemu and its flags (P: qemu 7.2)
    args = privbinfmt.prepare(MIPS64EL, cache, user=(user.pw_uid, user.pw_gid))
    assert ":FPC" in args[-1] or ":FC" in args[-1]

    # 1. without the shim the host really has no handler for mips64el
    plain = _run(user, images["mips64el"], "linux/mips64le", [])
    assert plain.returncode != 0 and b"exec format error" in plain.stderr.lower(), plain

    # 2. with it the probe runs, and its own exit code (5) is the container's
    priv = _run(user, images["mips64el"], "linux/mips64le", args)
    assert (priv.returncode, priv.stdout) == (5, MSG), priv.stderr.decode()

    # 3. the instance is the container's own: it has only mips64el, and does not fall back to the
    #    host's (enabled) arm handler, so an arm binary fails in it as the kernel documents
    wrong = _run(user, images["arm"], "linux/arm/v7", args)
    assert wrong.returncode == 126 and b"Exec format error" in wrong.stderr, wrong

    # 4. nothing was registered on the host by any of this
    assert snapshot() == disabled
    assert not any(p.name.startswith("podrepro-") for p in BINFMT.iterdir())


def test_no_empty_instance_left_behind_for_the_user(
        user: pwd.struct_passwd, cache: Paths, images: dict[str, str]) -> None:
    """The failure mode to avoid: an (empty) binfmt_misc instance in podman's shared rootless
    namespace makes every later container of the user fail with Exec format error."""
    before = snapshot()
    # flags without P this time (the other test uses what qemu supports, FPC with qemu >= 6)
    helper = privbinfmt.ensure_helper(cache)
    qemu = privbinfmt.find_qemu(MIPS64EL)
    args = privbinfmt.podman_args(MIPS64EL, helper, qemu, user=(user.pw_uid, user.pw_gid), flag_set="FC")
    priv = _run(user, images["mips64el"], "linux/mips64le", args)
    assert (priv.returncode, priv.stdout) == (5, MSG), priv.stderr.decode()
    # ordinary containers of the same user, through the host's handlers, still work
    arm = _run(user, images["arm"], "linux/arm/v7", [])
    assert (arm.returncode, arm.stdout) == (0, b"podrepro-probe arm\n"), arm.stderr.decode()
    mips = _run(user, images["mips64el"], "linux/mips64le", [])
    assert (mips.returncode, mips.stdout) == (5, MSG), mips.stderr.decode()
    assert snapshot() == before


@pytest.mark.usefixtures("debian_mips64el_disabled")
def test_podman_build_run_steps_through_the_runtime_wrapper(user: pwd.struct_passwd, cache: Paths) -> None:
    """RUN steps (as root and as a USER) get the private handler; nothing of it is in the image."""
    tag = uuid.uuid4().hex[:10]
    base, built = (f"localhost/podrepro-test/privbinfmt-{tag}:{x}" for x in ("base", "built"))
    ctx = cache.cache / "ctx"
    ctx.mkdir(mode=0o755)
    (ctx / "Containerfile").write_text(f'FROM {base}\nRUN ["/probe"]\nUSER 1234:1234\nRUN ["/probe"]\n')
    # the wrapper needs only the standard library: any python3 the test user can run will do
    # (root's sys.executable may be a venv the test user cannot read)
    wrapper = privbinfmt.build_args(MIPS64EL, cache, runtime=shutil.which("runc") or "/usr/bin/runc",
                                    python="/usr/bin/python3")
    try:
        cp = _as_user(user.pw_name, "podman", "import", "--arch", "mips64le", "--os", "linux", "-", base,
                      input=_image_tar(elfprobe.build(MIPS64EL, b"RUN step ran\n", exit_code=0)))
        assert cp.returncode == 0, cp.stderr.decode()
        argv = ["podman", "build", "--platform", "linux/mips64le", "--pull=never", "--no-cache", "--network", "none",
                "-t", built, str(ctx)]
        plain = _as_user(user.pw_name, *argv)
        assert plain.returncode != 0 and b"exec format error" in plain.stdout.lower() + plain.stderr.lower()
        b = _as_user(user.pw_name, *argv[:2], *wrapper, *argv[2:])
        assert b.returncode == 0, (b.stdout + b.stderr).decode()
        assert b.stdout.count(b"RUN step ran\n") == 2
        cid = _as_user(user.pw_name, "podman", "create", "--platform", "linux/mips64le", built, "/probe")
        assert cid.returncode == 0, cid.stderr.decode()
        files = _as_user(user.pw_name, "sh", "-c", f"podman export {cid.stdout.decode().strip()} | tar t")
        _as_user(user.pw_name, "podman", "rm", cid.stdout.decode().strip())
        assert b"probe" in files.stdout and b".podrepro" not in files.stdout
    finally:
        _as_user(user.pw_name, "podman", "rmi", "-f", built, base)


def test_zero_sudo_mips_from_an_empty_store(user: pwd.struct_passwd, tmp_path: Path) -> None:
    """Issue 14's zero-sudo item, end to end: every host handler that could run mipsel binaries
    disabled, an unprivileged user with no sudo and an empty podman store: `podrepro image build
    mips` (bootstrap + profile layer + verification), `run`, `build` and `test` all work, and the
    host's binfmt_misc is byte-identical afterwards."""
    from podrepro.binfmt.analysis import analyze
    from podrepro.binfmt.state import read_state
    from podrepro.findings import detect_distro

    mips = lookup("mips")
    before = snapshot()
    temp_before = temp_dirs_of(account_ids(user.pw_name))
    handlers = [e.name for e in analyze(read_state(), mips, detect_distro()).matching
                if (BINFMT / e.name).read_text().startswith("enabled")]
    assert handlers, "no host handler for mipsel to disable: the test would prove nothing"
    root = Path(tempfile.mkdtemp(prefix="podrepro-ownstore-", dir="/var/tmp"))
    proj = root / "wordsize"
    shutil.copytree(REPO / "examples" / "wordsize", proj, ignore=shutil.ignore_patterns("build-podrepro-*"))
    # an empty store of its own: rootless podman keeps the store in $XDG_DATA_HOME, its runtime
    # state (and its own pause process) in $XDG_RUNTIME_DIR; the user's containers.conf and
    # storage.conf (runc and overlay on this host) come along
    (root / "config" / "containers").mkdir(parents=True)
    for f in Path(user.pw_dir, ".config", "containers").glob("*.conf"):
        shutil.copy(f, root / "config" / "containers" / f.name)
    (root / "data").mkdir()
    (root / "run").mkdir(mode=0o700)
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(root)], check=True)
    store_env = [f"XDG_DATA_HOME={root}/data", f"XDG_CONFIG_HOME={root}/config", f"XDG_RUNTIME_DIR={root}/run"]
    python = os.environ.get("PODREPRO_TEST_PYTHON") or sys.executable
    env = [*store_env, f"PODREPRO_CACHE_DIR={root}/cache",
           f"PODREPRO_STATE_DIR={root}/state", f"PODREPRO_CONFIG_DIR={root}/config", "PODREPRO_PROGRESS=plain",
           f"PODREPRO_AUDIT_LOG={os.environ.get('PODREPRO_AUDIT_LOG', '')}", f"HOME={user.pw_dir}",
           f"PATH={Path(python).parent}:/usr/bin:/bin"]

    def podrepro_as_user(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", user.pw_name, "--", "env", "-i", *env, python, "-m", "podrepro", *args],
                              capture_output=True, text=True, timeout=3000, cwd=proj)

    def podman_as_user(*args: str) -> subprocess.CompletedProcess[bytes]:
        return _as_user(user.pw_name, "env", *store_env, "podman", *args)

    try:
        for h in handlers:
            (BINFMT / h).write_text("0")
        assert not analyze(read_state(), mips, detect_distro()).usable
        empty = podman_as_user("images", "-q")
        assert empty.returncode == 0 and empty.stdout.strip() == b"", empty
        info = podman_as_user("info", "--format", "{{.Store.GraphRoot}}")
        assert info.stdout.decode().strip() == f"{root}/data/containers/storage", info
        b = podrepro_as_user("image", "build", "mips", "--private-binfmt")
        assert b.returncode == 0, b.stdout + b.stderr
        assert b.stdout.strip().startswith("localhost/podrepro/generic:mips-"), b.stdout
        # an empty store: the generic image is one bootstrap (no separate base image, log build-mips-generic-*)
        logs = "".join(p.read_text(errors="replace") for p in (root / "state" / "logs").glob("build-mips-*.log"))
        assert "qemu registered in this bootstrap's own binfmt_misc" in logs
        r = podrepro_as_user("run", "mips", "--private-binfmt", "--", "uname", "-m")
        assert (r.returncode, r.stdout.strip()) == (0, "mips"), r.stderr
        r = podrepro_as_user("build", "mips", "--private-binfmt")
        assert r.returncode == 0, r.stdout + r.stderr
        t = podrepro_as_user("test", "mips", "--private-binfmt", "--no-build")
        assert t.returncode == 8, t.stdout + t.stderr  # the example's 32-bit bugs, reproduced
        assert "podrepro: 3 tests ran on mips, 2 failed: checksum, y2038" in t.stderr, t.stderr
        assert not re.search(r"\bsudo\b", b.stderr + r.stderr + t.stderr)  # nothing asked for privileges
    finally:
        for h in handlers:
            (BINFMT / h).write_text("1")
        podman_as_user("system", "reset", "--force")
        pause = root / "run" / "libpod" / "tmp" / "pause.pid"  # this store's own pause process
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pause.read_text()), signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    assert snapshot() == before, "the host's binfmt_misc changed"
    # the bootstrap's binfmt_misc mount point went with podrepro's temp dir (a mktemp -d of the
    # hook's own stayed in /tmp, one per zero-sudo bootstrap)
    assert temp_dirs_of(account_ids(user.pw_name)) - temp_before == set(), "temp dirs left behind"
