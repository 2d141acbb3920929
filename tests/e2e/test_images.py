"""Issue 4 end to end: rootless bootstrap from the host's Debian mirror, profile layers, the
content-hash cache, export/import, push/pull against a real local registry, concurrency and
interruption. Images are real and shared across tests in one session (they are expensive)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, account_ids, approve, no_leftover_containers, podman, podrepro, temp_dirs_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _image_ids() -> list[str]:
    return podman("images", "-a", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").stdout.decode().splitlines()


def _uid_of(pid: str) -> int | None:
    """A process's real uid (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _inspect(ref: str) -> dict[str, object]:
    cp = podman("image", "inspect", ref)
    assert cp.returncode == 0, cp.stderr.decode()
    data: list[dict[str, object]] = json.loads(cp.stdout)
    return data[0]


def _labels(ref: str) -> dict[str, str]:
    labels = _inspect(ref)["Labels"]
    assert isinstance(labels, dict), labels
    return {str(k): str(v) for k, v in labels.items()}


@pytest.mark.parametrize("arch, platform, uname", [
    ("arm", "linux/arm/v7", "armv7l"),
    ("mips", "linux/mipsle", "mips"),
])
def test_image_build_then_cache_hit(arch: str, platform: str, uname: str) -> None:
    r = podrepro("image", "build", arch, "--json", cwd=REPO / "examples" / "wordsize", timeout=3600)
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    tag = first["tag"]
    assert tag.startswith(f"localhost/podrepro/generic:{arch}-")
    info = _inspect(tag)
    assert info["Os"] == "linux" and info["Architecture"] == platform.split("/")[1]
    labels = info["Labels"]
    assert isinstance(labels, dict)
    assert labels["io.podrepro.platform"] == platform
    recipe = json.loads(labels["io.podrepro.recipe"])
    # the generic profile's packages are bootstrapped into a base of its own (host dpkg, seeded)
    assert recipe["kind"] == "base" and recipe["profile"] == "generic" and "cmake" in recipe["include"]
    # the plain base (on an empty store the generic image is bootstrapped in one pass without it;
    # otherwise it is the generic image's seed), with the arch's platform
    plain = podrepro("image", "build", arch, "--profile", "base", "--json", cwd=REPO / "examples" / "wordsize",
                     timeout=3600)
    assert plain.returncode == 0, plain.stderr
    base = [t for t in _tags() if t.startswith(f"localhost/podrepro/base:{arch}-")]
    assert base, _tags()
    # the bootstrapped base carries its recipe intact (self-consistent with its hash and platform)
    from podrepro.images import sharing

    for b in base:
        binfo = _inspect(b)
        assert sharing.check_labels(_labels(b), str(binfo["Architecture"]), b)[1] == b
    # uname -m inside
    run = podrepro("run", arch, "--", "uname", "-m", cwd=REPO / "examples" / "wordsize")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == uname
    # the base was installed by the host's dpkg (the default installer): the target's own dpkg
    # and apt must find a complete, consistent system in it
    from podrepro.images.recipe import plain_base
    from podrepro.images.target import target

    cfg = _cfg_for(REPO / "examples" / "wordsize")
    current = plain_base(target(cfg, arch).recipe).tag  # the generic image's own base
    assert current in base
    base_recipe = json.loads(_labels(current)["io.podrepro.recipe"])
    assert base_recipe["installer"] == "host-dpkg" and recipe["installer"] == "host-dpkg"

    def inside(image: str, script: str) -> str:
        cp = podman("run", "--rm", "--pull=never", "--platform", platform, "--network", "none", image,
                    "sh", "-c", script)
        assert cp.returncode == 0, script + "\n" + cp.stdout.decode() + cp.stderr.decode()
        return cp.stdout.decode()

    for image, at_least in ((current, 50), (tag, 150)):
        assert inside(image, "dpkg --audit") == ""
        statuses = inside(image, "dpkg-query -W -f '${db:Status-Abbrev}\\n' | sort | uniq -c").split()
        assert statuses[1:] == ["ii"] and int(statuses[0]) > at_least, statuses  # all "install ok installed"
        inside(image, "apt-get check -qq && getent passwd root _apt >/dev/null")
        assert inside(image, "cat /var/lib/dpkg/arch").split() == [platform_debian(arch)]
    # second call: a cache hit, nothing rebuilt
    t0 = time.monotonic()
    again = podrepro("image", "build", arch, "--json", cwd=REPO / "examples" / "wordsize")
    elapsed = time.monotonic() - t0
    assert again.returncode == 0, again.stderr
    hit = json.loads(again.stdout)
    assert hit["tag"] == tag and hit["built"] is False
    print(f"cache hit for {arch} took {elapsed:.2f}s")


def _cfg_for(project: Path) -> Any:
    from podrepro import config

    return config.resolve({}, src=project)


def platform_debian(arch: str) -> str:
    from podrepro.arches import lookup

    return lookup(arch).debian


def _tags() -> list[str]:
    cp = podman("images", "--format", "{{.Repository}}:{{.Tag}}")
    return cp.stdout.decode().split()


def test_generic_profile_compiles_factorial_on_arm() -> None:
    r = podrepro("run", "arm", "--", "sh", "-c", "gcc -O2 -o /tmp/factorial factorial.c && /tmp/factorial",
                 cwd=REPO / "examples", env={"PODREPRO_PROFILE": "generic"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Result: 2432902008176640000"


@pytest.fixture(scope="module")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real armhf root filesystem tarball, exported from the bootstrapped base image."""
    r = podrepro("image", "build", "arm", "--profile", "base", "--json", timeout=3600)
    assert r.returncode == 0, r.stderr
    base = json.loads(r.stdout)["tag"]
    out = tmp_path_factory.mktemp("rootfs") / "armhf-rootfs.tar"
    name = f"podrepro-test-export-{os.getpid()}"
    cp = podman("create", "--platform", "linux/arm/v7", "--pull=never", "--name", name, base, "true")
    assert cp.returncode == 0, cp.stderr.decode()
    try:
        ex = podman("export", "-o", str(out), name)
        assert ex.returncode == 0, ex.stderr.decode()
    finally:
        podman("rm", "-f", name)
    return out


def _from_rootfs(rootfs: Path) -> str:
    r = podrepro("image", "build", "arm", "--profile", "base", "--from-rootfs", str(rootfs), "--json")
    assert r.returncode == 0, r.stderr
    return str(json.loads(r.stdout)["tag"])


def test_from_rootfs_then_export_rm_import_roundtrip(rootfs_tar: Path, tmp_path: Path) -> None:
    tag = _from_rootfs(rootfs_tar)
    labels_before = _inspect(tag)["Labels"]
    out = tmp_path / "arm.tar"
    ex = podrepro("image", "export", "arm", "--profile", "base", "--from-rootfs", str(rootfs_tar), "-o", str(out))
    assert ex.returncode == 0, ex.stderr
    assert out.stat().st_size > 10_000_000
    rm = podrepro("image", "rm", tag)
    assert rm.returncode == 0, rm.stderr
    assert tag not in _tags()
    im = podrepro("image", "import", str(out))
    assert im.returncode == 0, im.stderr
    assert tag in _tags()
    assert _inspect(tag)["Labels"] == labels_before
    assert _origin(tag) == "imported", "image ls says where an image came from (and it never seeds)"
    run = podman("run", "--rm", "--platform", "linux/arm/v7", "--pull=never", "--network", "none", tag, "uname", "-m")
    assert run.stdout.decode().strip() == "armv7l"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def registry(tmp_path: Path):  # type: ignore[no-untyped-def]
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.fail("docker-registry is not installed (scripts/setup-host.sh installs it for the tests)")
    port = _free_port()
    cfg = tmp_path / "registry.yml"
    cfg.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path}/data\n"
                   f"http:\n  addr: 127.0.0.1:{port}\n")
    p = subprocess.Popen([exe, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_push_rm_pull_roundtrip(rootfs_tar: Path, registry: str) -> None:
    tag = _from_rootfs(rootfs_tar)
    ref = f"{registry}/podrepro/base:arm-test"
    push = podrepro("image", "push", tag, ref)
    assert push.returncode == 0, push.stderr
    rm = podrepro("image", "rm", tag)
    assert rm.returncode == 0, rm.stderr
    pull = podrepro("image", "pull", ref)
    assert pull.returncode == 0, pull.stderr
    assert tag in _tags(), "pull restores the image under its content-hash tag"
    assert _inspect(tag)["Architecture"] == "arm"
    assert _origin(tag) == "pulled"


def _origin(tag: str) -> str:
    ls = podrepro("image", "ls", "--json")
    assert ls.returncode == 0, ls.stderr
    (row,) = [r for r in json.loads(ls.stdout) if r["tag"] == tag]
    return str(row["origin"])


def _unique_project(tmp_path: Path, token: str) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    # the token makes the recipe (and so the tag) unique to this test run
    (proj / "tiny.Containerfile").write_text(
        f"ARG BASE\nFROM ${{BASE}}\n# {token}\nRUN sleep 8 && echo {token} > /podrepro-token\n")
    (proj / "podrepro.toml").write_text('default_profile = "tiny"\n[profile.tiny]\ncontainerfile = "tiny.Containerfile"\n'
                                        'test = ["cat", "/podrepro-token"]\n')
    approve(proj)  # a project Containerfile counts only once the user approved the file
    return proj


def test_two_concurrent_builds_build_once(tmp_path: Path, unique: str) -> None:
    proj = _unique_project(tmp_path, unique)
    env = dict(os.environ, PODREPRO_PROGRESS="plain")
    procs = [subprocess.Popen([sys.executable, "-m", "podrepro", "image", "build", "arm", "--json"], cwd=proj,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=1800) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    results = [json.loads(o[0]) for o in outs]
    assert results[0]["tag"] == results[1]["tag"]
    assert sorted(r["built"] for r in results) == [False, True], results
    assert any("waiting" in o[1] for o in outs), "the second process waited on the lock"
    podrepro("image", "rm", results[0]["tag"])


def _wait_for(path_text: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path_text():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_layer_build_leaves_nothing(tmp_path: Path, unique: str, sig: int) -> None:
    proj = _unique_project(tmp_path, unique)
    ids_before = _image_ids()
    temp_before = temp_dirs_of(account_ids())
    err = tmp_path / "err.txt"
    with open(err, "w") as ef:
        p = subprocess.Popen([sys.executable, "-m", "podrepro", "image", "build", "arm"], cwd=proj,
                             stdout=subprocess.PIPE, stderr=ef, text=True, start_new_session=True,
                             env=dict(os.environ, PODREPRO_PROGRESS="plain"))
        _wait_for(lambda: "layer:" in err.read_text(), 300)
        time.sleep(4)  # inside the RUN step now
        os.killpg(p.pid, sig) if sig == signal.SIGINT else p.send_signal(sig)
        rc = p.wait(timeout=120)
    assert rc != 0
    text = err.read_text()
    assert "Traceback" not in text
    tags = _tags()
    assert not [t for t in tags if t.startswith("localhost/podrepro/tmp:")], tags
    # no new image at all (but podman's untagged layer cache): neither a temporary nor a "good" tag
    assert [i for i in _image_ids() if i not in ids_before and not i.endswith("<none>:<none>")] == []
    assert no_leftover_containers() == []
    # buildah leaves an interrupted RUN step running; podrepro must have killed it
    time.sleep(1)
    left = subprocess.run(["pgrep", "-u", str(os.getuid()), "-f", f"echo {unique}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "orphaned RUN-step processes: " + left.stdout
    # nor the RUN step's run dir (podman build left it in /var/tmp when it was interrupted)
    assert temp_dirs_of(account_ids()) - temp_before == set(), "temp dirs left behind"
    # the lock is free again: the next build goes through, and really builds
    again = podrepro("image", "build", "arm", "--json", cwd=proj, timeout=1800)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["built"] is True
    podrepro("image", "rm", json.loads(again.stdout)["tag"])


def test_sigint_during_bootstrap_leaves_nothing(tmp_path: Path) -> None:
    err = tmp_path / "err.txt"
    env = dict(os.environ, PODREPRO_PROGRESS="plain", PODREPRO_VARIANT="essential")
    before = temp_dirs_of(account_ids())
    with open(err, "w") as ef:
        p = subprocess.Popen([sys.executable, "-m", "podrepro", "image", "build", "arm", "--profile", "base",
                              "--rebuild"], stdout=subprocess.PIPE, stderr=ef, text=True,
                             start_new_session=True, env=env)
        _wait_for(lambda: "bootstrap:" in err.read_text(), 120)
        time.sleep(15)
        os.killpg(p.pid, signal.SIGINT)
        rc = p.wait(timeout=180)
    assert rc != 0
    assert "Traceback" not in err.read_text()
    assert not [t for t in _tags() if t.startswith("localhost/podrepro/tmp:")]
    assert subprocess.run(["pgrep", "-u", str(os.getuid()), "mmdebstrap"], capture_output=True).returncode == 1
    # nor any of mmdebstrap's unshared children (they run as a subordinate uid; another account's
    # bootstraps on the same machine are not ours)
    ours = account_ids()
    found = subprocess.run(["pgrep", "-f", "mmdebstrap --mode=unshare"], capture_output=True, text=True).stdout.split()
    left = [pid for pid in found if _uid_of(pid) in ours]
    assert left == [], f"mmdebstrap processes left: {left}"
    time.sleep(2)
    assert temp_dirs_of(account_ids()) - before == set(), "temp dirs left behind"


def _seed_containers() -> list[str]:
    return podman("ps", "-a", "--filter", "name=^podrepro-seed-", "--format", "{{.Names}}").stdout.decode().split()


def test_a_base_recipe_change_is_seeded_from_the_earlier_base(tmp_path: Path) -> None:
    """variant = buildd after minbase: the bootstrap starts from the minbase base's configured
    root filesystem and installs only the packages it lacks. Interrupted, it leaves nothing; done,
    the image is a complete, consistent Debian system with a working compiler."""
    buildd = {"PODREPRO_VARIANT": "buildd"}
    base = podrepro("image", "build", "arm", "--profile", "base", "--json")
    assert base.returncode == 0, base.stderr
    minbase_tag = json.loads(base.stdout)["tag"]
    podrepro("image", "rm", "arm", "--profile", "base", env=buildd)  # left by an earlier run: build it again
    # the export container of a killed podrepro (a pid above pid_max: surely gone) is cleaned up
    stale = podman("create", "--pull=never", "--name", f"podrepro-seed-{2**22 + 7}-dead", minbase_tag, "true")
    assert stale.returncode == 0, stale.stderr.decode()

    # Ctrl-C while the seed is exported and the packages are extracted: nothing is left behind
    err = tmp_path / "err.txt"
    with open(err, "w") as ef:
        p = subprocess.Popen([sys.executable, "-m", "podrepro", "image", "build", "arm", "--profile", "base"],
                             stdout=subprocess.PIPE, stderr=ef, text=True, start_new_session=True,
                             env=dict(os.environ, PODREPRO_PROGRESS="plain", **buildd))
        _wait_for(lambda: f"seeded from {minbase_tag}" in err.read_text(), 120)
        time.sleep(3)
        os.killpg(p.pid, signal.SIGINT)
        assert p.wait(timeout=180) != 0
    assert "Traceback" not in err.read_text()
    assert _seed_containers() == []
    assert not [t for t in _tags() if t.startswith("localhost/podrepro/tmp:")]
    assert list(Path("/tmp").glob(f"podrepro-mm-{os.getuid()}-*")) == []

    r = podrepro("image", "build", "arm", "--profile", "base", "--json", env=buildd)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    tag = result["tag"]
    try:
        assert tag != minbase_tag and result["built"] is True
        assert result["seeded_from"] == minbase_tag
        log = Path(result["log"]).read_text()
        seeded = [ln for ln in log.splitlines() if ln.startswith("I: podrepro: seeded from an earlier base:")]
        assert seeded, log[-3000:]
        have, todo = (int(w) for w in seeded[0].split() if w.isdigit())
        assert have > 50 and 0 < todo < have, seeded[0]
        assert _seed_containers() == []

        def inside(script: str) -> str:
            cp = podman("run", "--rm", "--pull=never", "--platform", "linux/arm/v7", "--network", "none", tag,
                        "sh", "-c", script)
            assert cp.returncode == 0, script + "\n" + cp.stdout.decode() + cp.stderr.decode()
            return cp.stdout.decode()

        assert inside("dpkg --audit") == ""
        statuses = inside("dpkg-query -W -f '${db:Status-Abbrev}\\n' | sort | uniq -c").split()
        assert statuses[1:] == ["ii"] and int(statuses[0]) == have + todo, statuses
        inside("apt-get check -qq && dpkg-query -W build-essential gcc make >/dev/null")
        # what mmdebstrap set up for this run, not the seed's leftovers
        assert inside("ls -A / | grep -c '^.podrepro' || true").strip() == "0"
        assert 'Acquire::Retries "3";' in inside("cat /etc/apt/apt.conf.d/99mmdebstrap")
        out = inside("cd /tmp && printf 'int main(void){return sizeof(long) == 4 ? 0 : 1;}' > t.c && gcc t.c -o t && ./t && echo ok")
        assert out.strip() == "ok"
        # the recipe is the buildd one, and it rebuilds from scratch on --rebuild (no seed)
        recipe = json.loads(_labels(tag)["io.podrepro.recipe"])
        assert recipe["variant"] == "buildd" and recipe["installer"] == "host-dpkg"
    finally:
        podrepro("image", "rm", tag)


def test_image_ls_json_reports_current_images() -> None:
    r = podrepro("image", "ls", "--json", cwd=REPO / "examples" / "wordsize")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    generic_arm = [x for x in rows if x["arch"] == "arm" and x["profile"] == "generic"]
    assert generic_arm and all(k in generic_arm[0] for k in ("tag", "hash", "size", "created", "last_used", "status"))
    assert any(x["status"] == "current" for x in generic_arm)


def test_package_cache_dir_left_by_a_layer_build_is_tidied(tmp_path: Path) -> None:
    """A layer build's apt leaves partial/ owned by its _apt user (a subordinate uid here): the
    user cannot open it and a later bootstrap's sync-out failed on it. The builder removes it."""
    from podrepro.images.base import tidy_debs

    debs = tmp_path / "debs"
    debs.mkdir()
    (debs / "kept.deb").write_bytes(b"x")
    assert podman("unshare", "sh", "-c", f"mkdir -m 0700 {debs}/partial && chown 42:0 {debs}/partial").returncode == 0
    assert (debs / "partial").stat().st_uid != os.getuid()
    with pytest.raises(PermissionError):
        list((debs / "partial").iterdir())
    tidy_debs(debs)
    assert not (debs / "partial").exists()
    assert (debs / "kept.deb").read_bytes() == b"x"
    tidy_debs(debs)  # nothing to do: no error


def test_rebuild_replaces_the_previous_image_without_leaving_it_dangling(tmp_path: Path, unique: str) -> None:
    proj = _unique_project(tmp_path, unique)
    first = podrepro("image", "build", "arm", "--json", cwd=proj, timeout=1800)
    assert first.returncode == 0, first.stderr
    tag = json.loads(first.stdout)["tag"]
    old_id = str(_inspect(tag)["Id"])
    try:
        again = podrepro("image", "build", "arm", "--rebuild", "--json", cwd=proj, timeout=1800)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["built"] is True
        new_id = str(_inspect(tag)["Id"])
        assert new_id != old_id
        # the replaced image is gone, not left untagged where `image prune` cannot see it
        assert podman("image", "exists", old_id).returncode == 1
    finally:
        podrepro("image", "rm", tag)


def test_prune_removes_untagged_podrepro_images(tmp_path: Path, unique: str) -> None:
    """Images whose tag moved on (an old --rebuild, a crash between steps) are invisible to
    `image ls`; prune removes them once nothing uses them. Other untagged images are not ours."""
    base = next(t for t in _tags() if t.startswith("localhost/podrepro/base:arm-"))
    (tmp_path / "Containerfile").write_text(f"FROM {base}\nLABEL test.token={unique}\n")
    ours = podman("build", "-q", "--pull=never", "--platform", "linux/arm/v7", "-t", f"localhost/podrepro-test/{unique}:x",
                  str(tmp_path))
    assert ours.returncode == 0, ours.stderr.decode()
    image_id = ours.stdout.decode().split()[-1]
    assert podman("untag", image_id).returncode == 0  # inherits the base's io.podrepro.* labels
    dry = podrepro("image", "prune", "--dry-run", cwd=tmp_path)
    assert f"untagged {image_id[:12]}" in dry.stdout + dry.stderr
    assert podman("image", "exists", image_id).returncode == 0
    pr = podrepro("image", "prune", cwd=tmp_path)
    assert pr.returncode == 0, pr.stderr
    assert f"untagged {image_id[:12]}" in pr.stdout + pr.stderr
    assert podman("image", "exists", image_id).returncode == 1


def test_a_project_containerfile_cannot_plant_a_deb_in_the_shared_cache(tmp_path: Path, unique: str) -> None:
    """Attack: a (trusted) project Containerfile's RUN step writes a .deb into the package cache
    it sees. apt takes a cached .deb of the right name and size without checking its hash, so a
    file planted in the shared per-arch cache would be installed into another project's image.
    The project's layer build must get a cache of its own; the shared one stays untouched."""
    from podrepro.paths import get_paths

    planted = f"planted-{unique}_1.0_armhf.deb"
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "evil.Containerfile").write_text(
        f"ARG BASE\nFROM ${{BASE}}\nRUN echo evil > /var/cache/apt/archives/{planted}\n")
    (proj / "podrepro.toml").write_text('default_profile = "evil"\n[profile.evil]\ncontainerfile = "evil.Containerfile"\n')
    approve(proj)  # even an approved Containerfile must not reach what other projects use
    r = podrepro("image", "build", "arm", "--json", cwd=proj, timeout=1800)
    assert r.returncode == 0, r.stderr
    tag = json.loads(r.stdout)["tag"]
    cache = get_paths().cache
    try:
        shared = sorted((cache / "debs").glob(f"*-armhf/{planted}"))
        assert shared == [], f"a project's RUN step planted {shared} in the shared .deb cache"
        own = sorted((cache / "debs-project").glob(f"*/*-armhf/{planted}"))
        assert len(own) == 1, "the project's layer build did not get a .deb cache of its own"
    finally:
        podrepro("image", "rm", tag)
        for p in [*(cache / "debs").glob(f"*-armhf/{planted}"), *(cache / "debs-project").glob(f"*/*-armhf/{planted}")]:
            p.unlink()


def test_a_profile_package_change_installs_through_the_host_dpkg_path(tmp_path: Path) -> None:
    """A profile's packages are bootstrapped (host dpkg, seeded), not apt-get'ed in an emulated
    layer: adding one to generic starts from the generic image and installs only what it lacks;
    the result passes dpkg --audit and apt-get check, with every package fully installed."""
    generic = podrepro("image", "build", "arm", "--json", timeout=3600)  # the seed this test expects
    assert generic.returncode == 0, generic.stderr
    generic_tag = json.loads(generic.stdout)["tag"]
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "podrepro.toml").write_text('[profile.generic]\npackages = ["zlib1g-dev"]\n')
    approve(proj)
    r = podrepro("image", "build", "arm", "--json", cwd=proj, timeout=3600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    try:
        assert out["built"] is True and out["tag"].startswith("localhost/podrepro/generic:arm-")
        assert out["tag"] != generic_tag
        assert out["seeded_from"] == generic_tag, out
        log = Path(out["log"]).read_text(errors="replace")
        assert "seeded from an earlier base" in log, log[-3000:]
        assert "packages with the host's dpkg" in log, log[-3000:]
        # the progress said what the bootstrap was doing (plain lines: stderr is not a terminal)
        m = re.search(r"bootstrap: unpacking (\d+) packages with the host's dpkg\n", r.stderr)
        assert m is not None, r.stderr
        assert f"bootstrap: configuring {m[1]} packages (maintainer scripts emulated)\n" in r.stderr, r.stderr
        assert "bootstrap: writing the root filesystem into the image\n" in r.stderr, r.stderr
        # as the container's root (apt-get check takes dpkg's lock)
        check = podman("run", "--rm", "--pull=never", "--platform", "linux/arm/v7", "--network", "none", out["tag"],
                       "sh", "-c", "dpkg --audit && apt-get check -qq && dpkg-query -W -f '${db:Status-Abbrev}${Package}\\n'")
        listing = check.stdout.decode()
        assert check.returncode == 0, listing + check.stderr.decode()
        rows = listing.splitlines()
        assert "ii zlib1g-dev" in rows and "ii cmake" in rows, listing  # generic's own packages are still there
        # merged /usr set up by the bootstrap, as the recipe says: usr-is-merged, never usrmerge
        assert json.loads(_labels(out["tag"])["io.podrepro.recipe"])["merged_usr"] == "usr-is-merged"
        assert "ii usr-is-merged" in rows and not any(r.startswith("ii usrmerge") for r in rows), listing
        assert all(line.startswith("ii ") for line in rows), listing  # dpkg --audit printed nothing above them
    finally:
        podrepro("image", "rm", out["tag"])


# run by the target's own python in the image: every .pyc of the standard library and of the
# python3 packages against what that python itself compiles from the same source
PYC_CHECK = """
import importlib.util, os, py_compile, tempfile
same, differ, missing = 0, [], []
for top in ("/usr/lib/python3.11", "/usr/lib/python3/dist-packages", "/usr/share/python3"):
    for d, _, files in os.walk(top):
        for f in files:
            if "__pycache__" in d or not f.endswith(".py"):
                continue
            src = os.path.join(d, f)
            cached = importlib.util.cache_from_source(src)
            if not os.path.exists(cached):
                missing.append(src)
                continue
            fd, fresh = tempfile.mkstemp(suffix=".pyc")
            os.close(fd)
            py_compile.compile(src, cfile=fresh, dfile=src, doraise=True)
            if open(fresh, "rb").read() == open(cached, "rb").read():
                same += 1
            else:
                differ.append(src)
            os.unlink(fresh)
print(same, len(differ), len(missing), " ".join((differ + missing)[:5]))
"""


def test_native_byte_compilation_gives_the_targets_own_pyc_files(tmp_path: Path) -> None:
    """With the host's CPython the target's exact version (Debian 12's python3.11 here, as in the
    bookworm images), the bootstrap's Python byte-compilation runs natively: every .pyc in the
    image is byte-identical to what the target's own python (emulated) compiles from the same
    file, none is missing, and py_compile.py is the package's own again. The same bootstrap (from
    scratch: --rebuild) unpacked decompressed copies and answered dpkg-maintscript-helper's
    no-op calls, and every file of every package in the image is the package's own."""
    host = subprocess.run(["/usr/bin/python3.11", "-I", "-S", "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True)
    assert host.returncode == 0, "this host's python3.11 is the condition of the test: /usr/bin/python3.11 missing"
    proj = tmp_path / "proj"
    proj.mkdir()
    # a fresh bootstrap seeded from the base: python3-minimal's postinsts run in it (py_compile
    # of the standard library, py3compile)
    (proj / "podrepro.toml").write_text(f'[profile.pyc]\nextends = "base"\npackages = ["python3-minimal"]\n'
                                        f'# {tmp_path.name}\n')
    approve(proj)
    r = podrepro("image", "build", "arm", "--profile", "pyc", "--rebuild", "--json", cwd=proj, timeout=3600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    try:
        log = Path(out["log"]).read_text(errors="replace")
        target = podman("run", "--rm", "--pull=never", "--platform", "linux/arm/v7", "--network", "none", out["tag"],
                        "dpkg-query", "-W", "-f", "${Version}", "libpython3.11-minimal").stdout.decode()
        assert target.split("-")[0] == host.stdout.strip(), (target, host.stdout)  # the same CPython version
        m = re.search(r"I: podrepro: byte-compiled (\d+) files of Python 3\.11 natively", log)
        assert m is not None and int(m[1]) > 100, log[-3000:]
        # the other shortcuts of a bootstrap from scratch: dpkg read every package from a copy
        # decompressed on the other core; debian-archive-keyring's and tzdata's calls of
        # dpkg-maintscript-helper (76 in bookworm) and the unmask and was-enabled of apt's timers
        # (4) were answered without the real helpers
        m = re.search(r"I: podrepro: dpkg unpacked (\d+) of (\d+) packages from copies decompressed beforehand", log)
        assert m is not None and m[1] == m[2] and int(m[1]) > 50, log[-3000:]
        m = re.search(r"I: podrepro: (\d+) dpkg-maintscript-helper calls and (\d+) of deb-systemd-helper had one answer"
                      r" in a fresh install", log)
        assert m is not None and int(m[1]) >= 60 and int(m[2]) >= 4, log[-3000:]
        # dpkg --verify: every file of every package is the package's own (size, md5sum, mode),
        # dpkg-maintscript-helper and py_compile.py included
        # and as was-enabled said yes, deb-systemd-helper (the real one) enabled apt's timers as before
        timers = podman("run", "--rm", "--pull=never", "--platform", "linux/arm/v7", "--network", "none", out["tag"],
                        "sh", "-c", "ls /etc/systemd/system/timers.target.wants /var/lib/systemd/deb-systemd-helper-enabled")
        assert {"apt-daily.timer", "apt-daily-upgrade.timer", "apt-daily.timer.dsh-also"} <= \
            set(timers.stdout.decode().split()), timers.stdout.decode() + timers.stderr.decode()
        check = podman("run", "--rm", "--pull=never", "--platform", "linux/arm/v7", "--network", "none", out["tag"],
                       "sh", "-c", f"python3 -c '{PYC_CHECK}' && dpkg --verify && ls -A / /usr/lib/python3.11")
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
        first, *rest = check.stdout.decode().splitlines()
        same, differ, missing = (int(w) for w in first.split()[:3])
        assert same > 100 and differ == 0 and missing == 0, first
        # nothing of the hook's is left: no stand-in, no list (dpkg --verify printed nothing above)
        listing = "\n".join(rest)
        assert ".podrepro" not in listing and "podrepro-real" not in listing, listing
    finally:
        podrepro("image", "rm", out["tag"])


def test_a_package_apt_does_not_know_is_one_clear_line(tmp_path: Path) -> None:
    """A misspelled name in a profile's packages: one error line naming it and what to check,
    not mmdebstrap's own failure; nothing left behind."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "podrepro.toml").write_text('[profile.generic]\npackages = ["nosuchpkg-podrepro"]\n')
    approve(proj)
    temp_before = temp_dirs_of(account_ids())
    r = podrepro("image", "build", "arm", cwd=proj, timeout=1200)
    assert r.returncode != 0
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, r.stderr
    assert "apt cannot install the generic profile's packages" in errors[0], errors[0]
    assert "Unable to locate package nosuchpkg-podrepro" in errors[0], errors[0]
    assert "check the package names in the profile's packages" in errors[0], errors[0]
    assert 'installer = "chroot"' not in errors[0], errors[0]  # not the host's dpkg's fault
    assert "Traceback" not in r.stderr
    assert not [t for t in _tags() if t.startswith("localhost/podrepro/tmp:")]
    assert temp_dirs_of(account_ids()) - temp_before == set(), "temp dirs left behind"
