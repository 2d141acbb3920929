"""Issue 6 end to end: interruption, concurrency, bad cache index, bad import archives, hostile
project config — with real rootless podman and qemu.

Images: everything here layers a unique tiny profile on the cached arm (and mips) base image, so
each test builds only seconds of its own and removes what it made.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, account_ids, approve, no_leftover_containers, podman, podrepro, temp_dirs_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TMP_REPO = "localhost/podrepro/tmp:"
PROGRESS = re.compile(r"\d\d:\d\d:\d\d \[\d\d:\d\d\] ")  # PODREPRO_PROGRESS=plain stage lines


# ---- helpers ------------------------------------------------------------------------------------

def tags() -> list[str]:
    return podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode().split()


def image_ids() -> list[str]:
    return sorted(podman("images", "-a", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").stdout.decode().splitlines())


def wait_for(cond: Callable[[], object], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def state_dir() -> Path:
    from podrepro.paths import get_paths

    return get_paths().state


def locks_free() -> list[str]:
    """Locks some process still holds (acquired non-blocking here; empty = all free)."""
    from filelock import FileLock, Timeout

    held = []
    for f in sorted((state_dir() / "locks").glob("*.lock")):
        lock = FileLock(str(f))
        try:
            lock.acquire(timeout=0)
            lock.release()
        except Timeout:
            held.append(f.name)
    return held


def my_temp_dirs() -> set[str]:
    return temp_dirs_of(account_ids())


def assert_clean(before_tmp: set[str], ids_before: list[str] | None = None) -> None:
    """Nothing left: no podrepro container, no temporary image, no lock held, no temp dir, and
    (given the image list from before) no new image, tagged or not, but podman's layer cache."""
    wait_for(lambda: no_leftover_containers() == [], 60, "podrepro containers to go away", step=0.5)
    t = tags()
    assert not [x for x in t if x.startswith(TMP_REPO)], t
    if ids_before is not None:
        assert [i for i in image_ids() if i not in ids_before and not i.endswith("<none>:<none>")] == []
    assert locks_free() == []
    wait_for(lambda: my_temp_dirs() - before_tmp == set(), 30, "temp dirs to go away", step=0.5)


def unique_project(root: Path, token: str, *, sleep: int = 0, arch_note: str = "") -> Path:
    proj = root / f"proj-{token}"
    proj.mkdir(parents=True)
    run = f"sleep {sleep} && " if sleep else ""
    (proj / "tiny.Containerfile").write_text(
        f"ARG BASE\nFROM ${{BASE}}\n# {token} {arch_note}\nRUN {run}echo {token} > /podrepro-token\n")
    (proj / "podrepro.toml").write_text('default_profile = "tiny"\n[profile.tiny]\ncontainerfile = "tiny.Containerfile"\n'
                                        'test = ["cat", "/podrepro-token"]\n')
    approve(proj)  # a project Containerfile counts only once the user approved the file
    return proj


def start(args: list[str], cwd: Path, err: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    e = dict(os.environ, PODREPRO_PROGRESS="plain")
    e.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "podrepro", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=open(err, "w"), text=True, start_new_session=True, env=e)


def deliver(p: subprocess.Popen[str], sig: int) -> None:
    """SIGINT as a terminal's Ctrl-C does it (the whole process group); SIGTERM as a CI runner
    cancelling a job does (the main process)."""
    if sig == signal.SIGINT:
        os.killpg(p.pid, sig)
    else:
        p.send_signal(sig)


def interrupt_at(p: subprocess.Popen[str], err: Path, stage: str, sig: int, *, wait: float,
                 settle: float) -> tuple[int, str]:
    """Wait for the progress line of ``stage``, let it run ``settle`` seconds, deliver ``sig``;
    (exit code, stderr). The process is killed if it outlives the test."""
    try:
        wait_for(lambda: f"{stage}:" in err.read_text(), wait, f"the {stage} stage")
        time.sleep(settle)
        assert p.poll() is None, f"{stage} finished before the signal: {err.read_text()}"
        deliver(p, sig)
        rc = p.wait(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
    return rc, err.read_text()


def base_tag(arch: str) -> str:
    r = podrepro("image", "build", arch, "--profile", "base", "--json", timeout=3600)
    assert r.returncode == 0, r.stderr
    return str(json.loads(r.stdout)["tag"])


@pytest.fixture(scope="module")
def arm_base() -> str:
    return base_tag("arm")


# ---- interruption -------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_run_leaves_no_container(arm_base: str, tmp_path: Path, sig: int) -> None:
    before = my_temp_dirs()
    err = tmp_path / "err.txt"
    t0 = time.monotonic()
    p = start(["run", "--profile", "base", "arm", "--", "sleep", "60"], tmp_path, err)
    try:
        wait_for(lambda: arm_base in _running_images(), 120, "the run's container")
        deliver(p, sig)
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert time.monotonic() - t0 < 60, "the signal ended the run, not the command finishing"
    assert rc != 0 and rc in (130, 143, 128 + sig, -sig), rc
    assert "Traceback" not in err.read_text()
    assert_clean(before)
    again = podrepro("run", "--profile", "base", "arm", "--", "true", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def _running_images() -> list[str]:
    return podman("ps", "--format", "{{.Image}}").stdout.decode().split()


@pytest.fixture(scope="module")
def big_rootfs(arm_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The arm base as a rootfs tarball, padded with 600 MB so that 'podman import' takes seconds."""
    d = tmp_path_factory.mktemp("bigroot")
    out = d / "rootfs.tar"
    name = f"podrepro-test-bigroot-{os.getpid()}"
    cp = podman("create", "--platform", "linux/arm/v7", "--pull=never", "--name", name, arm_base, "true")
    assert cp.returncode == 0, cp.stderr.decode()
    try:
        assert podman("export", "-o", str(out), name).returncode == 0
    finally:
        podman("rm", "-f", name)
    # pad: replace the end-of-archive blocks with one more member, then close the archive again
    with tarfile.open(out, "a") as tf:
        info = tarfile.TarInfo("var/tmp/podrepro-padding")
        info.size = 600 * 1024 * 1024
        with open("/dev/zero", "rb") as zero:
            tf.addfile(info, _Limited(zero, info.size))
    yield out
    out.unlink(missing_ok=True)


class _Limited(io.RawIOBase):
    def __init__(self, f: io.BufferedReader, n: int) -> None:
        self.f, self.n = f, n

    def read(self, size: int = -1) -> bytes:
        size = self.n if size < 0 else min(size, self.n)
        self.n -= size
        return self.f.read(size)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_import_leaves_nothing(big_rootfs: Path, tmp_path: Path, sig: int) -> None:
    before = my_temp_dirs()
    ids_before = image_ids()
    err = tmp_path / "err.txt"
    p = start(["image", "build", "arm", "--profile", "base", "--from-rootfs", str(big_rootfs), "--rebuild"],
              tmp_path, err)
    rc, text = interrupt_at(p, err, "import", sig, wait=300, settle=1.0)  # podman import is reading the tarball
    assert rc != 0, text
    assert "Traceback" not in text
    assert "interrupted" in text.lower(), text
    assert_clean(before, ids_before)
    again = podrepro("image", "build", "arm", "--profile", "base", "--from-rootfs", str(big_rootfs), "--json",
                     timeout=1800)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["built"] is True, "the interrupted build left no image: this one builds"
    podrepro("image", "rm", json.loads(again.stdout)["tag"])


SLOW_VERIFY = """#!/bin/sh
# a podman that is slow to start the verification container (fault injection for the tests)
case " $* " in *" uname -m"*) [ "$1" = run ] && sleep 30 ;; esac
exec podman "$@"
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_verify_leaves_nothing(arm_base: str, tmp_path: Path, unique: str, sig: int) -> None:
    before = my_temp_dirs()
    ids_before = image_ids()
    proj = unique_project(tmp_path, unique)
    wrapper = tmp_path / "bin" / "podman-slow-verify"
    wrapper.parent.mkdir()
    wrapper.write_text(SLOW_VERIFY)
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    err = tmp_path / "err.txt"
    p = start(["image", "build", "arm"], proj, err, env={"PODREPRO_PODMAN": str(wrapper)})
    rc, text = interrupt_at(p, err, "verify", sig, wait=600, settle=1.0)
    assert rc != 0 and "Traceback" not in text, text
    assert "error: interrupted by SIG" in text, text
    assert_clean(before, ids_before)
    again = podrepro("image", "build", "arm", "--json", cwd=proj, timeout=1800)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["built"] is True, "the interrupted build left no image: this one builds"
    podrepro("image", "rm", json.loads(again.stdout)["tag"])


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_sigterm_during_bootstrap_leaves_nothing(tmp_path: Path, sig: int) -> None:
    """SIGINT during a bootstrap is in test_images.py; this is a CI job being cancelled."""
    before = my_temp_dirs()
    err = tmp_path / "err.txt"
    # a private .deb cache and the 'essential' variant: a bootstrap that really runs, whatever is cached
    env = {"PODREPRO_VARIANT": "essential", "PODREPRO_CACHE_DIR": str(tmp_path / "cache")}
    p = start(["image", "build", "arm", "--profile", "base", "--rebuild"], tmp_path, err, env=env)
    rc, text = interrupt_at(p, err, "bootstrap", sig, wait=120, settle=10)  # downloading or unpacking now
    assert rc != 0 and "Traceback" not in text, text
    assert "error: interrupted by SIGTERM" in text, text
    assert subprocess.run(["pgrep", "-u", str(os.getuid()), "mmdebstrap"], capture_output=True).returncode == 1
    assert_clean(before)
    ls = podrepro("image", "ls", "--json")
    assert ls.returncode == 0, ls.stderr


# ---- concurrency --------------------------------------------------------------------------------

def test_four_processes_build_once(arm_base: str, tmp_path: Path, unique: str) -> None:
    proj = unique_project(tmp_path, unique, sleep=5)
    logs_before = set((state_dir() / "logs").glob("build-arm-tiny-*.log"))
    procs = [start(["image", "build", "arm", "--json"], proj, tmp_path / f"err{i}.txt") for i in range(4)]
    outs = [p.communicate(timeout=1800)[0] for p in procs]
    errs = [(tmp_path / f"err{i}.txt").read_text() for i in range(4)]
    tag = ""
    try:
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errs
        results = [json.loads(o) for o in outs]
        tag = results[0]["tag"]
        assert {r["tag"] for r in results} == {tag}
        assert sorted(r["built"] for r in results) == [False, False, False, True], results
        assert tags().count(tag) == 1
        assert [t for t in tags() if t.startswith(TMP_REPO)] == []
        new_logs = set((state_dir() / "logs").glob("build-arm-tiny-*.log")) - logs_before
        assert len(new_logs) == 1, f"exactly one build ran: {new_logs}"
        assert locks_free() == []
    finally:
        if tag:
            podrepro("image", "rm", tag)


def test_two_architectures_at_once(arm_base: str, tmp_path: Path, unique: str) -> None:
    base_tag("mips")  # built earlier in CI (test_images); a bootstrap here otherwise
    arm = unique_project(tmp_path / "a", unique + "a")
    mips = unique_project(tmp_path / "m", unique + "m")
    pa = start(["image", "build", "arm", "--json"], arm, tmp_path / "ea.txt")
    pm = start(["image", "build", "mips", "--json"], mips, tmp_path / "em.txt")
    outs = [pa.communicate(timeout=1800)[0], pm.communicate(timeout=1800)[0]]
    made = [json.loads(o)["tag"] for o in outs if o.strip()]
    try:
        assert (pa.returncode, pm.returncode) == (0, 0), [(tmp_path / f).read_text() for f in ("ea.txt", "em.txt")]
        assert made[0].startswith("localhost/podrepro/tiny:arm-") and made[1].startswith("localhost/podrepro/tiny:mips-")
        for arch, proj, uname in (("arm", arm, "armv7l"), ("mips", mips, "mips")):
            r = podrepro("run", arch, "--", "uname", "-m", cwd=proj)
            assert r.returncode == 0 and r.stdout.strip() == uname, r.stderr
    finally:
        for t in made:
            podrepro("image", "rm", t)


def test_prune_while_running_keeps_the_image(arm_base: str, tmp_path: Path, unique: str) -> None:
    proj = unique_project(tmp_path, unique)
    b = podrepro("image", "build", "arm", "--json", cwd=proj, timeout=1800)
    assert b.returncode == 0, b.stderr
    tag = json.loads(b.stdout)["tag"]
    err = tmp_path / "run-err.txt"
    # the run lasts until the test says so (a file in the mounted project): a prune with many
    # stale images to remove first can take longer than any fixed sleep
    go = proj / "go"
    p = start(["run", "arm", "--", "sh", "-c", f"while [ ! -e {go} ]; do sleep 0.2; done; cat /podrepro-token"],
              proj, err)
    try:
        wait_for(lambda: tag in _running_images(), 120, "the run's container")
        # from outside the project, its profile is unknown: the image is 'stale' for this prune
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        pr = podrepro("image", "prune", cwd=elsewhere)
        assert pr.returncode == 0, pr.stderr
        assert f"kept (in use): {tag}" in pr.stderr, pr.stdout + pr.stderr
        assert tag in tags()
        go.touch()
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, err.read_text()
        assert out.strip() == unique
    finally:
        if p.poll() is None:
            p.kill()
        podrepro("image", "rm", tag)


# ---- bad cache index ----------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b'{"version": 1, "images": {"x": ', b"\x00\xff" * 100, b"[]", b"",
                                     b'{"version": 1, "images": []}', None])
def test_corrupted_index_is_set_aside(arm_base: str, tmp_path: Path, content: bytes | None) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    index = cache / "images.json"
    if content is None:
        index.mkdir()  # a directory where the file should be
    else:
        index.write_bytes(content)
    env = {"PODREPRO_CACHE_DIR": str(cache)}
    images_before = image_ids()
    ls = podrepro("image", "ls", "--json", env=env)
    assert ls.returncode == 0, ls.stderr
    # one line says so, and the index is rebuilt from the images' labels
    assert [ln for ln in ls.stderr.splitlines() if ln.strip()] == [
        f"warning: the image index {index} was corrupted; it was set aside and rebuilt"], ls.stderr
    assert arm_base in [r["tag"] for r in json.loads(ls.stdout)]
    rebuilt = json.loads(index.read_text())["images"]
    assert rebuilt[arm_base]["rebuilt_from_labels"] is True and rebuilt[arm_base]["kind"] == "base", rebuilt
    assert rebuilt[arm_base]["hash"] == arm_base.rsplit("-", 1)[1], rebuilt[arm_base]
    run = podrepro("run", "--profile", "base", "arm", "--", "true", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (cache / "images.json.corrupt").exists(), "the bad index was set aside, not deleted"
    again = podrepro("image", "ls", "--json", env=env)
    assert again.returncode == 0 and again.stderr.strip() == "", again.stderr
    assert arm_base in [r["tag"] for r in json.loads(again.stdout)]
    assert image_ids() == images_before, "the cache problem touched no image"


# ---- bad import archives ------------------------------------------------------------------------

def _recipe_labels(token: str, arch: str = "arm", platform: str = "linux/arm/v7") -> dict[str, str]:
    import hashlib

    recipe = {"kind": "base", "recipe_version": 1, "arch": arch, "platform": platform, "suite": "bookworm",
              "variant": "minbase", "source": "rootfs", "rootfs_sha256": token}
    blob = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    h = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return {"io.podrepro.recipe": blob, "io.podrepro.hash": h, "io.podrepro.arch": arch,
            "io.podrepro.platform": platform, "io.podrepro.profile": "base", "io.podrepro.kind": "base",
            "io.podrepro.suite": "bookworm", "io.podrepro.podrepro-version": "test"}


def _tiny_archive(tmp: Path, labels: dict[str, str] | None, name: str, arch: str = "arm") -> Path:
    """A podman save archive of a one-file image (imported with ``labels``), image removed after."""
    root = tmp / f"root-{name}.tar"
    with tarfile.open(root, "w") as tf:
        data = b"not a real root filesystem\n"
        info = tarfile.TarInfo("etc/podrepro-test")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    ref = f"localhost/podrepro-test/{name}:latest"
    if labels:
        h = labels["io.podrepro.hash"]
        ref = f"localhost/podrepro/base:{labels['io.podrepro.arch']}-{h}"
    argv = ["import", "--os", "linux", "--arch", arch]
    for k, v in sorted((labels or {}).items()):
        argv += ["--change", f"LABEL {k}={v}"]  # unquoted: podman import keeps backslash escapes
    cp = podman(*argv, str(root), ref)
    assert cp.returncode == 0, cp.stderr.decode()
    out = tmp / f"{name}.tar"
    try:
        cp = podman("save", "--format", "docker-archive", "-o", str(out), ref)
        assert cp.returncode == 0, cp.stderr.decode()
    finally:
        podman("rmi", "-f", ref)
    return out


def _rewrite_config(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None], fix_digest: bool) -> None:
    import hashlib

    with tarfile.open(src) as tf:
        members = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf]  # type: ignore[union-attr]
    manifest = json.loads(next(d for m, d in members if m.name == "manifest.json") or b"[]")
    cfg_name = manifest[0]["Config"]
    cfg = json.loads(next(d for m, d in members if m.name == cfg_name) or b"{}")
    edit(cfg)
    raw = json.dumps(cfg).encode()
    new_name = hashlib.sha256(raw).hexdigest() + ".json" if fix_digest else cfg_name
    manifest[0]["Config"] = new_name
    with tarfile.open(dst, "w") as out:
        for m, d in members:
            if m.name == cfg_name:
                m.name, d = new_name, raw
            elif m.name == "manifest.json":
                d = json.dumps(manifest).encode()
            if d is not None:
                m.size = len(d)
                out.addfile(m, io.BytesIO(d))
            else:
                out.addfile(m)


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import uuid

    d = tmp_path_factory.mktemp("archives")
    token = uuid.uuid4().hex
    good = _tiny_archive(d, _recipe_labels(token), "labelled")
    out: dict[str, Path] = {"unrunnable": good}
    data = good.read_bytes()
    (d / "truncated.tar").write_bytes(data[: len(data) * 6 // 10])
    out["truncated"] = d / "truncated.tar"
    (d / "garbage.tar").write_bytes(os.urandom(50_000))
    out["garbage"] = d / "garbage.tar"
    with tarfile.open(d / "random.tar", "w") as tf:
        for i in range(3):
            blob = os.urandom(1000)
            info = tarfile.TarInfo(f"file{i}")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    out["random-tar"] = d / "random.tar"
    out["foreign"] = _tiny_archive(d, None, "foreign")

    def say_mips(cfg: dict[str, Any]) -> None:
        labels = _recipe_labels(token, "mips", "linux/mipsle")
        cfg["config"] = dict(cfg.get("config") or {}, Labels=labels)

    _rewrite_config(good, d / "says-mips.tar", say_mips, fix_digest=True)
    out["recipe-says-mips"] = d / "says-mips.tar"

    def tamper(cfg: dict[str, Any]) -> None:
        c = dict(cfg.get("config") or {})
        c["Labels"] = dict(c.get("Labels") or {}, **{"io.podrepro.suite": "sid"})
        c["Env"] = ["LD_PRELOAD=/evil.so"]
        cfg["config"] = c

    _rewrite_config(good, d / "tampered.tar", tamper, fix_digest=False)
    out["config-digest-mismatch"] = d / "tampered.tar"

    def edit_recipe(cfg: dict[str, Any]) -> None:
        c = dict(cfg.get("config") or {})
        labels = dict(c.get("Labels") or {})
        labels["io.podrepro.recipe"] = labels["io.podrepro.recipe"].replace("minbase", "standard")
        c["Labels"] = labels
        cfg["config"] = c

    _rewrite_config(good, d / "recipe-edited.tar", edit_recipe, fix_digest=True)
    out["recipe-hash-mismatch"] = d / "recipe-edited.tar"
    return out


@pytest.mark.parametrize("kind, needle", [
    ("truncated", "no manifest.json"),  # the manifest comes last in a podman save archive
    ("garbage", "truncated or not an image archive"),
    ("random-tar", "not a podrepro export"),
    ("foreign", "not a podrepro image"),
    ("recipe-says-mips", "the recipe says mips"),
    ("config-digest-mismatch", "does not match its digest"),
    ("recipe-hash-mismatch", "does not match its hash"),
    ("unrunnable", "verification failed"),
])
def test_bad_import_archive_refused(archives: dict[str, Path], kind: str, needle: str) -> None:
    before = image_ids()
    r = podrepro("image", "import", str(archives[kind]), timeout=600)
    assert r.returncode in (1, 2), (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert needle in lines[0], lines[0]
    assert image_ids() == before, "existing images intact, nothing new left behind"
    assert no_leftover_containers() == []


# ---- hostile project, for real ------------------------------------------------------------------

def test_hostile_project_refused_and_valid_hostile_confined(arm_base: str, tmp_path: Path) -> None:
    proj = tmp_path / "checkout"
    proj.mkdir()
    secret = tmp_path / "outside-secret"
    secret.write_text("host secret\n")
    for toml in ('volumes = ["/:/host"]\n', '[profile.x]\nprivileged = true\n', 'network = "host"\n',
                 'suite = "--customize-hook=touch /tmp/podrepro-pwned"\n', 'userns = "host"\n'):
        (proj / "podrepro.toml").write_text(toml)
        r = podrepro("run", "arm", "--", "true", cwd=proj)
        assert r.returncode == 2, (toml, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: podrepro.toml:"), r.stderr
    assert not Path("/tmp/podrepro-pwned").exists()
    (proj / "podrepro.toml").write_text(
        'default_profile = "evil"\nenv = ["A=--privileged"]\n[profile.evil]\nextends = "base"\n'
        'build_dir = "out"\nenv = ["--volume=/:/host", "HOME=/root"]\n')
    probe = ("cat /proc/self/status | grep CapEff; ls /sys/class/net; test -e /host && echo HOST; "
             f"cat {secret} 2>/dev/null && echo LEAK; touch {proj}/inside; id -u")
    r = podrepro("run", "arm", "--", "sh", "-c", probe, cwd=proj)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    assert "HOST" not in out and "LEAK" not in out, r.stdout
    assert out[out.index("CapEff:") + 1] == "0000000000000000", "no capabilities for the user's process"
    assert "lo" in out and "eth0" not in out and "tap0" not in out, "no network"
    assert out[-1] == str(os.getuid())
    assert (proj / "inside").stat().st_uid == os.getuid()


def test_example_project_still_runs() -> None:
    r = podrepro("run", "--profile", "base", "arm", "--", "uname", "-m", cwd=REPO / "examples" / "wordsize")
    assert r.returncode == 0 and r.stdout.strip() == "armv7l", r.stderr
