"""Recipes, tags, the cache index and import-archive checks, without an engine."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from podrepro.arches import lookup
from podrepro.engine import commands
from podrepro.engine.podman import ImageInfo
from podrepro.engine.storage import storage_lists_image
from podrepro.errors import PodreproError
from podrepro.images import sharing, store
from podrepro.images.build import Builder, BuildResult
from podrepro.images.index import Index
from podrepro.images.recipe import BaseSource, Recipe, base_recipe, plain_base, profile_recipe, profile_recipes
from podrepro.images.seed import choose_seed, hook_seeded
from podrepro.paths import Paths
from podrepro.profiles import BUILTINS, resolve_profile


def test_recipe_hash_is_stable_and_names_the_mirror() -> None:
    arm = lookup("arm")
    a = base_recipe(arm, "bookworm", "minbase")
    b = base_recipe(arm, "bookworm", "minbase")
    assert a.digest == b.digest and len(a.hash12) == 12
    assert a.tag == f"localhost/podrepro/base:arm-{a.hash12}"
    # the mirror decides what is installed: another mirror is another recipe (a project that
    # names its own mirror never gets, nor poisons, the tag every other project uses)
    assert a.data["mirror"] == "mmdebstrap-default"
    m = base_recipe(arm, "bookworm", "minbase", mirror="http://mirror.invalid/debian")
    assert m.data["mirror"] == "http://mirror.invalid/debian" and m.digest != a.digest
    assert base_recipe(arm, "trixie", "minbase").digest != a.digest
    assert base_recipe(arm, "bookworm", "buildd").digest != a.digest
    assert base_recipe(lookup("armel"), "bookworm", "minbase").digest != a.digest


def test_profile_recipe_depends_on_containerfile_bytes_and_packages(tmp_path: Path) -> None:
    base = base_recipe(lookup("mips"), "bookworm", "minbase")
    g = profile_recipe(base, BUILTINS["generic"])
    assert g.tag.startswith("localhost/podrepro/generic:mips-")
    # the generic profile's packages are bootstrapped into a base of their own (no layer)
    assert g.kind == "base" and "cmake" in g.data["include"] and plain_base(g).digest == base.digest
    cf = tmp_path / "x.Containerfile"
    cf.write_text("ARG BASE\nFROM ${BASE}\n")
    p1 = resolve_profile("x", {"x": {"containerfile": str(cf)}})
    r1 = profile_recipe(base, p1)
    cf.write_text("ARG BASE\nFROM ${BASE}\nRUN true\n")
    r2 = profile_recipe(base, p1)
    assert r1.digest != r2.digest
    p2 = resolve_profile("x", {"x": {"containerfile": str(cf), "packages": ["zlib1g-dev"]}})
    assert profile_recipe(base, p2).digest != r2.digest
    # the base profile is the base image itself
    assert profile_recipe(base, BUILTINS["base"]).tag == base.tag


def test_from_rootfs_and_ref_change_the_base_hash() -> None:
    arm = lookup("arm")
    plain = base_recipe(arm, "bookworm", "minbase")
    rootfs = base_recipe(arm, "bookworm", "minbase", BaseSource("rootfs", "/x.tar", "ab" * 32))
    ref = base_recipe(arm, "bookworm", "minbase", BaseSource("ref", "reg/debian:bookworm"))
    assert len({plain.digest, rootfs.digest, ref.digest}) == 3


def test_labels_carry_the_recipe() -> None:
    r = base_recipe(lookup("arm"), "bookworm", "minbase")
    lb = r.labels()
    assert json.loads(lb["io.podrepro.recipe"]) == r.data
    assert lb["io.podrepro.platform"] == "linux/arm/v7" and lb["io.podrepro.hash"] == r.hash12
    arch, tag = sharing.check_labels(lb, "arm", "x")
    assert arch.alias == "arm" and tag == r.tag


def test_check_labels_refuses_tampering() -> None:
    r = base_recipe(lookup("arm"), "bookworm", "minbase")
    lb = r.labels()
    with pytest.raises(PodreproError, match="says arm"):
        sharing.check_labels(lb, "mipsle", "x")
    bad = dict(lb)
    bad["io.podrepro.recipe"] = bad["io.podrepro.recipe"].replace("bookworm", "trixie")
    with pytest.raises(PodreproError, match="does not match its hash"):
        sharing.check_labels(bad, "arm", "x")
    with pytest.raises(PodreproError, match="not a podrepro image"):
        sharing.check_labels({}, "arm", "x")


def _archive(path: Path, labels: dict[str, str], arch: str = "arm", tags: list[str] | None = None) -> None:
    conf = json.dumps({"architecture": arch, "os": "linux", "config": {"Labels": labels}}).encode()
    digest = hashlib.sha256(conf).hexdigest()
    manifest = json.dumps([{"Config": f"{digest}.json", "RepoTags": tags or [], "Layers": []}]).encode()
    with tarfile.open(path, "w") as tf:
        for name, data in ((f"{digest}.json", conf), ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))


def test_read_archive_and_its_failures(tmp_path: Path) -> None:
    r = base_recipe(lookup("arm"), "bookworm", "minbase")
    good = tmp_path / "good.tar"
    _archive(good, r.labels(), tags=[r.tag])
    meta = sharing.read_archive(good)
    assert meta.architecture == "arm" and meta.tags == (r.tag,)
    # truncated
    trunc = tmp_path / "trunc.tar"
    trunc.write_bytes(good.read_bytes()[:700])
    with pytest.raises(PodreproError, match=r"truncated or not an image archive|no manifest"):
        sharing.read_archive(trunc)
    # not a tar at all
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(PodreproError):
        sharing.read_archive(junk)
    # a tar without a manifest
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as tf:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = 2
        tf.addfile(ti, io.BytesIO(b"hi"))
    with pytest.raises(PodreproError, match="no manifest"):
        sharing.read_archive(other)


def test_index_survives_corruption(tmp_path: Path) -> None:
    paths = Paths(cache=tmp_path / "c", config=tmp_path / "cfg", state=tmp_path / "s")
    idx = Index(paths)
    idx.update("t1", hash="h", last_used="now")
    assert idx.all()["t1"]["hash"] == "h"
    assert (paths.cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    paths.index_file.write_text("{not json")
    idx2 = Index(paths)
    assert idx2.all() == {}
    assert idx2.warning and "corrupted" in idx2.warning
    assert paths.index_file.with_suffix(".json.corrupt").exists()
    idx2.update("t2", hash="x")
    assert set(Index(paths).all()) == {"t2"}


def test_storage_fast_path(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    import os

    if os.geteuid() == 0:
        assert storage_lists_image("x", env) is None
        return
    assert storage_lists_image("x", env) is None  # no store at all: ask podman
    d = tmp_path / "data" / "containers" / "storage" / "overlay-images"
    d.mkdir(parents=True)
    (d / "images.json").write_text(json.dumps([{"id": "1", "names": ["localhost/podrepro/base:arm-x"]}]))
    assert storage_lists_image("localhost/podrepro/base:arm-x", env) is True
    assert storage_lists_image("localhost/podrepro/base:arm-y", env) is False
    (tmp_path / "cfg" / "containers").mkdir(parents=True)
    (tmp_path / "cfg" / "containers" / "storage.conf").write_text('[storage]\ngraphroot = "/elsewhere"\n')
    assert storage_lists_image("localhost/podrepro/base:arm-x", env) is None


def test_tls_args_only_for_loopback() -> None:
    # a DNS name that merely starts with "127." is not loopback: TLS stays on
    for remote in ("127.evil.example/x:y", "127.0.0.1.evil.example:5000/x", "localhost.evil.example/x",
                   "registry.example/x", "10.0.0.1:5000/x"):
        assert commands.tls_args(remote) == [], remote
    assert commands.tls_args("127.0.0.1:5000/x:y") == ["--tls-verify=false"]
    assert commands.tls_args("127.5.6.7/x") == ["--tls-verify=false"]
    assert commands.tls_args("[::1]:5000/x") == ["--tls-verify=false"]
    assert commands.tls_args("localhost:5000/x") == ["--tls-verify=false"]
    assert commands.tls_args("registry.example/x") == []
    assert commands.pull_argv("podman", "127.0.0.1:5000/x:y", "linux/arm/v7") == [
        "podman", "pull", "--platform", "linux/arm/v7", "--tls-verify=false", "127.0.0.1:5000/x:y"]
    assert commands.push_argv("podman", "localhost/podrepro/base:arm-x", "registry.example/x") == [
        "podman", "push", "localhost/podrepro/base:arm-x", "registry.example/x"]


def test_verification_runs_through_the_one_run_builder() -> None:
    # what Builder.verify runs: no keep-id, no mounts, no network
    assert commands.run_argv("podman", "img", ["uname", "-m"], platform="linux/mipsle") == [
        "podman", "run", "--rm", "--pull=never", "--platform", "linux/mipsle", "--network", "none", "img", "uname", "-m"]


def test_tmp_tag_orphan_detection() -> None:
    import os

    assert store._tmp_is_orphaned(f"localhost/podrepro/tmp:abc-{os.getpid()}-ff") is False
    assert store._tmp_is_orphaned("localhost/podrepro/tmp:abc-999999999-ff") is True


def test_import_argv_labels_are_unquoted_and_exact() -> None:
    from podrepro.errors import EngineError

    r = base_recipe(lookup("arm"), "bookworm", "minbase")
    argv = commands.import_argv("podman", "arm", "v7", "localhost/x:y", r.labels())
    assert argv[:7] == ["podman", "import", "--os", "linux", "--arch", "arm", "--variant"]
    assert f"LABEL io.podrepro.recipe={r.labels()['io.podrepro.recipe']}" in argv
    assert not any("\\" in a for a in argv)
    with pytest.raises(EngineError):
        commands.import_argv("podman", "arm", None, "x", {"k": "a b"})
    assert argv[-2:] == ["-", "localhost/x:y"]  # a stream on standard input
    # a file is named: podman reads it in place instead of copying a stream to its temp dir first
    named = commands.import_argv("podman", "arm", "v7", "localhost/x:y", r.labels(), source="/r/rootfs.tar")
    assert named[-2:] == ["/r/rootfs.tar", "localhost/x:y"] and "-" not in named


def test_podman_tmpdir_follows_tmpdir_and_removes_what_gone_processes_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from podrepro.engine.podman import podman_tmpdir

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    gone = tmp_path / f"podrepro-import-{os.getuid()}-999999999-x"
    gone.mkdir()
    (gone / "podman123").write_bytes(b"half a root filesystem")
    alive = tmp_path / f"podrepro-import-{os.getuid()}-{os.getppid()}-y"
    alive.mkdir()
    other = tmp_path / f"podrepro-import-{os.getuid() + 1}-999999999-z"  # another user's
    other.mkdir()
    with podman_tmpdir("import") as d:
        assert d.parent == tmp_path and d.name.startswith(f"podrepro-import-{os.getuid()}-{os.getpid()}-")
        assert not gone.exists() and alive.exists() and other.exists()
        (d / "podman42").write_bytes(b"what podman left")
    assert not d.exists()  # removed afterwards, with what podman left in it


def _base_image(recipe: Recipe, created: str, tagged: bool = True) -> ImageInfo:
    return ImageInfo(id=recipe.digest, tags=(recipe.tag,) if tagged else (), labels=recipe.labels(), size=1,
                     created=created, architecture=recipe.arch.oci_arch, os="linux")


def test_choose_seed_takes_the_closest_earlier_base_of_the_same_arch_and_suite() -> None:
    arm = lookup("arm")
    minbase = base_recipe(arm, "bookworm", "minbase")
    essential = base_recipe(arm, "bookworm", "essential")
    buildd = base_recipe(arm, "bookworm", "buildd")
    store = [
        _base_image(essential, "2026-11-30T09:00:00Z"),
        _base_image(minbase, "2026-11-29T09:00:00Z"),
        _base_image(base_recipe(lookup("mips"), "bookworm", "minbase"), "2026-11-30T10:00:00Z"),
        _base_image(base_recipe(arm, "trixie", "minbase"), "2026-11-30T10:00:00Z"),
        _base_image(base_recipe(arm, "bookworm", "minbase", installer="chroot"), "2026-11-30T10:00:00Z"),
        _base_image(base_recipe(arm, "bookworm", "minbase", BaseSource("rootfs", "x", "ab")),
                    "2026-11-30T10:00:00Z"),
        _base_image(base_recipe(arm, "bookworm", "standard"), "2026-11-30T10:00:00Z"),
    ]
    # buildd's packages include minbase's and essential's: minbase configures the most of them
    assert choose_seed(store, buildd) == store[1]
    # the newest wins between equals; an untagged (replaced) base is never a seed
    newer = _base_image(base_recipe(arm, "bookworm", "required"), "2026-11-30T11:00:00Z")
    assert choose_seed([*store, newer], buildd) == newer
    assert choose_seed([*store, _base_image(base_recipe(arm, "bookworm", "required"),
                                                   "2026-11-30T12:00:00Z", tagged=False)], buildd) == store[1]
    # a seed with more packages than the recipe (standard for minbase) or a foreign one is not used
    assert choose_seed(store, base_recipe(arm, "bookworm", "essential")) is None
    assert choose_seed(store[2:], minbase) is None
    # only host-dpkg bootstraps seed, and a base never seeds itself
    assert choose_seed(store, base_recipe(arm, "bookworm", "buildd", installer="chroot")) is None
    assert choose_seed([_base_image(minbase, "2026-11-30T12:00:00Z")], minbase) is None
    # an imported or pulled base (someone else's root filesystem) is never a seed
    assert choose_seed(store, buildd, built_here=lambda img: img is not store[1]) == store[0]
    assert choose_seed(store, buildd, built_here=lambda img: False) is None


def test_hook_seeded_reads_the_hooks_verdict_of_this_attempt(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text("seed: localhost/podrepro/base:arm-aaa (123) via container c\n"
                   "I: podrepro: not seeding from the earlier base: it has gdb, which this recipe does not install\n")
    assert hook_seeded(log) is False
    log.write_text("seed: localhost/podrepro/base:arm-aaa (123) via container c\n"
                   "I: podrepro: seeded from an earlier base: 96 packages installed already, 0 to install\n")
    assert hook_seeded(log) is True
    # a retry: the first attempt seeded, this one (after ``start``) did not
    start = log.stat().st_size
    with open(log, "a") as f:
        f.write("I: podrepro: unpacking 96 packages with the host's dpkg\n")
    assert hook_seeded(log, start) is False
    assert hook_seeded(tmp_path / "missing.log") is False


@pytest.mark.parametrize("rebuild, seed", [(False, True), (True, False)])
def test_only_a_first_build_may_seed_a_rebuild_bootstraps_from_scratch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rebuild: bool, seed: bool) -> None:
    class Engine:
        def image_exists(self, ref: str) -> bool:
            return False

    builder = Builder(Engine(), Paths(tmp_path / "c", tmp_path / "s", tmp_path / "k"))  # type: ignore[arg-type]
    calls: list[bool] = []

    def build_base(recipe: Recipe, source: BaseSource, t0: float, seed: bool = True) -> BuildResult:
        calls.append(seed)
        return BuildResult(recipe.tag, True, 0.0)

    monkeypatch.setattr(builder, "_build_base", build_base)
    builder.ensure(base_recipe(lookup("arm"), "bookworm", "buildd"), rebuild=rebuild)
    assert calls == [seed]


class _Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, stage: str, detail: str = "") -> None:
        self.lines.append(f"step {stage}: {detail}")

    def status(self, detail: str) -> None:
        self.lines.append(f"status {detail}")

    def done(self, message: str) -> None:
        self.lines.append(f"done {message}")

    def warn(self, text: str) -> None:
        self.lines.append(f"warn {text}")

    def output(self, data: bytes) -> None:
        self.lines.append(f"output {data!r}")


def test_builder_warnings_reach_the_reporter(tmp_path: Path) -> None:
    (tmp_path / "c").write_text("")  # the cache dir is a file: the index cannot be written
    rec = _Recorder()
    builder = Builder(None, Paths(tmp_path / "c", tmp_path / "s", tmp_path / "k"), reporter=rec)  # type: ignore[arg-type]
    builder._record("localhost/podrepro/base:arm-x", hash="x")
    assert len(rec.lines) == 1 and rec.lines[0].startswith("warn could not update the image index")


def test_cli_progress_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from podrepro.cli.output import Progress

    out = io.StringIO()
    p = Progress("plain", out)
    p.step("bootstrap", "mmdebstrap armhf")
    p.done("built x")
    p.warn("careful")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("[00:00] bootstrap: mmdebstrap armhf") and lines[1].endswith("[00:00] built x")
    assert capsys.readouterr().err == "warning: careful\n"
    quiet = io.StringIO()
    Progress("none", quiet).step("x")
    assert quiet.getvalue() == ""


def test_corrupted_index_is_rebuilt_from_labels(tmp_path: Path) -> None:
    paths = Paths(cache=tmp_path / "cache", config=tmp_path / "c", state=tmp_path / "s")
    paths.ensure_cache()
    paths.index_file.write_text('{"version": 1, "images": {"x": ')
    idx = Index(paths)
    assert idx.all() == {} and idx.warning is not None and "set aside and rebuilt" in idx.warning
    assert (paths.cache / "images.json.corrupt").exists()
    labels = {"io.podrepro.hash": "abc123def456", "io.podrepro.arch": "arm", "io.podrepro.profile": "base",
              "io.podrepro.kind": "base", "io.podrepro.recipe": json.dumps({"kind": "base", "arch": "arm"})}
    infos = [ImageInfo(id="f" * 64, tags=("localhost/podrepro/base:arm-abc123def456", "localhost/podrepro/tmp:zz",
                                         "docker.io/library/debian:12"),
                       labels=labels, size=123, created="2026-12-01T00:00:00Z", architecture="arm", os="linux")]
    got = idx.rebuild(infos)
    assert list(got) == ["localhost/podrepro/base:arm-abc123def456"]
    rec = got["localhost/podrepro/base:arm-abc123def456"]
    assert rec["hash"] == "abc123def456" and rec["recipe"] == {"kind": "base", "arch": "arm"} and rec["size"] == 123
    assert json.loads(paths.index_file.read_text())["images"] == got


def test_export_writes_its_partial_archive_for_the_user_alone(tmp_path: Path) -> None:
    """Another local user must not read an image archive while it is being written."""
    import os
    import stat as st

    seen: list[int] = []

    class Engine:
        def inspect(self, tag: str) -> object:
            return object()

        def save(self, tag: str, out: Path) -> None:
            out.write_bytes(b"archive")  # as podman save does: a new file, under the process umask
            seen.append(st.S_IMODE(out.stat().st_mode))

    old = os.umask(0o022)
    try:
        out = sharing.export(Engine(), "localhost/podrepro/base:arm-x", tmp_path / "arm.tar")  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert seen == [0o600], "the .part file was readable by others"
    assert st.S_IMODE(out.stat().st_mode) == 0o644  # the finished archive follows the user's umask
    assert not (tmp_path / ".arm.tar.part").exists()


def test_a_failed_pull_leaves_the_users_image_under_its_name() -> None:
    """The user already had REF; the pull brings an image podrepro refuses (no podrepro labels):
    REF must point at the user's image again, not vanish with the refused one."""
    mine = ImageInfo(id="a" * 64, tags=("registry.example/x:1",), labels={}, size=1, created="", architecture="arm",
                     os="linux")
    theirs = ImageInfo(id="b" * 64, tags=("registry.example/x:1",), labels={}, size=1, created="",
                       architecture="arm", os="linux")
    calls: list[tuple[str, ...]] = []

    class Engine:
        pulled = False

        def inspect(self, ref: str) -> ImageInfo | None:
            return theirs if self.pulled else mine

        def pull(self, ref: str) -> None:
            self.pulled = True

        def tag(self, ref: str, new: str) -> None:
            calls.append(("tag", ref, new))

        def remove_image(self, ref: str, force: bool = False) -> bool:
            calls.append(("rm", ref))
            return True

    with pytest.raises(PodreproError):
        sharing.pull(Engine(), object(), "registry.example/x:1")  # type: ignore[arg-type]
    assert calls == [("tag", mine.id, "registry.example/x:1")], calls


def _tar_with(tmp: Path, members: list[tuple[str, bytes]], name: str = "a.tar") -> Path:
    out = tmp / name
    with tarfile.open(out, "w") as tf:
        for n, data in members:
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return out


def test_archive_with_two_manifests_is_refused(tmp_path: Path) -> None:
    # Python's tarfile would read the last manifest.json, podman the first: refuse the ambiguity
    a = _tar_with(tmp_path, [("manifest.json", b'[{"Config": "c.json"}]'), ("c.json", b"{}"),
                             ("manifest.json", b'[{"Config": "evil.json"}]')])
    with pytest.raises(PodreproError, match=r"manifest\.json appears twice"):
        sharing.read_archive(a)


def test_archive_with_a_giant_json_member_is_refused(tmp_path: Path) -> None:
    big = b"[" + b" " * (sharing.MAX_JSON_BYTES + 10) + b"]"
    a = _tar_with(tmp_path, [("manifest.json", big)])
    with pytest.raises(PodreproError, match="is over 4 MiB"):
        sharing.read_archive(a)


def test_archive_that_unpacks_to_too_much_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sharing, "MAX_ARCHIVE_BYTES", 1000)  # the real limit is 64 GiB
    a = _tar_with(tmp_path, [("layer.tar", b"x" * 2000), ("manifest.json", b"[]")])
    with pytest.raises(PodreproError, match="unpacks to more than"):
        sharing.read_archive(a)


def test_import_refuses_an_archive_that_names_other_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack: an archive whose one image also carries `docker.io/library/debian:bookworm`;
    loading it would re-point that name at the archive's image for every later podman user."""
    recipe = base_recipe(lookup("arm"), "bookworm", "minbase")
    meta = sharing.ArchiveMeta(tags=(recipe.tag, "docker.io/library/debian:bookworm"), labels=recipe.labels(),
                               architecture="arm", variant="v7", os="linux")
    monkeypatch.setattr(sharing, "read_archive", lambda path: meta)

    class Engine:
        def inspect(self, ref: str) -> None:
            return None

        def load(self, path: Path) -> list[str]:
            raise AssertionError("nothing may be loaded")

    with pytest.raises(PodreproError, match=r"also names docker\.io/library/debian:bookworm"):
        sharing.import_archive(Engine(), object(), tmp_path / "x.tar")  # type: ignore[arg-type]


def test_profile_packages_go_into_a_seeded_package_base_not_a_layer(tmp_path: Path) -> None:
    """A profile's apt packages (built-in list + podrepro.toml's) are bootstrapped into a base of
    their own, whose seed is the plain base; a project Containerfile is layered on that, without
    the packages again; a rootfs base (no bootstrap) falls back to a packages layer."""

    arm = lookup("arm")
    base = base_recipe(arm, "bookworm", "minbase")
    ext = resolve_profile("generic", {"generic": {"packages": ["libssl-dev"]}})
    start, image = profile_recipes(base, ext)
    assert start is image and image.tag.startswith("localhost/podrepro/generic:arm-")
    assert set(image.data["include"]) >= {"cmake", "build-essential", "libssl-dev"}
    assert image.digest != profile_recipe(base, BUILTINS["generic"]).digest  # a package change: a new image
    # a project Containerfile goes on the project's packages' base, which it does not install again
    cf = tmp_path / "x.Containerfile"
    cf.write_text("ARG BASE\nFROM ${BASE}\n")
    own = resolve_profile("x", {"x": {"containerfile": str(cf), "packages": ["zlib1g-dev"]}})
    start, image = profile_recipes(base, own)
    assert start.data["include"] == ["zlib1g-dev"] and image.kind == "profile"
    assert image.data["base"] == start.digest and image.data["packages"] == []
    # overriding a built-in's Containerfile drops the built-in package list with it
    assert resolve_profile("jsc", {"jsc": {"containerfile": str(cf)}}).all_packages == ()
    # a rootfs base cannot be bootstrapped into: the packages go into a layer
    rb = base_recipe(arm, "bookworm", "minbase", BaseSource("rootfs", "/x.tar", "0" * 64))
    start, image = profile_recipes(rb, ext)
    assert start.digest == rb.digest and image.kind == "profile" and "libssl-dev" in image.data["packages"]

    def img(r: Recipe, created: str) -> ImageInfo:
        return ImageInfo(id=r.hash12, tags=(r.tag,), labels=r.labels(), size=0, created=created,
                         architecture="arm", os="linux")

    generic = profile_recipe(base, BUILTINS["generic"])
    plain = img(base, "2026-01-01")
    # the plain base seeds the generic package base; the generic one (more packages) seeds the extended one
    assert choose_seed([plain], generic) == plain
    gimg = img(generic, "2026-01-02")
    assert choose_seed([plain, gimg], profile_recipe(base, ext)) == gimg
    # but not the other way round: a seed with packages the recipe does not want is no candidate
    assert choose_seed([img(profile_recipe(base, ext), "2026-01-03")], generic) is None


def test_an_imported_or_pulled_base_never_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open_seed takes only a base this user's podrepro built (the index's origin "built"):
    someone else's root filesystem (imported, pulled) must not become the start of local bases."""
    import io as _io

    from podrepro.images import seed as seed_mod

    arm = lookup("arm")
    earlier = base_recipe(arm, "bookworm", "minbase")
    image = ImageInfo(id="e" * 12, tags=(earlier.tag,), labels=earlier.labels(), size=0, created="2026-01-01",
                      architecture="arm", os="linux")

    class Engine:
        def list_images(self, label: str) -> list[ImageInfo]:
            return [image]

        def remove_containers(self, *a: object, **k: object) -> list[str]:
            return []

    monkeypatch.setattr(seed_mod.SeedStream, "start", lambda self: True)
    wanted = base_recipe(arm, "bookworm", "buildd")
    lf = _io.BytesIO()
    args = (Engine(), None, wanted, tmp_path, lf)
    assert seed_mod.open_seed(*args, built=set()) is None  # type: ignore[arg-type]
    assert seed_mod.open_seed(*args, built=None) is None  # type: ignore[arg-type]
    s = seed_mod.open_seed(*args, built={earlier.tag})  # type: ignore[arg-type]
    assert s is not None and s.image is image


@pytest.mark.parametrize("store, first", [
    ([], "generic"),                                          # an empty store: one pass, no plain base
    ([("armhf", "bookworm")], "base"),                        # a base of the arch and suite: it comes first (the seed)
    ([("armhf", "trixie"), ("mipsel", "bookworm")], "generic"),  # other suites and arches do not count
])
def test_the_first_image_of_an_arch_and_suite_is_one_bootstrap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: list[tuple[str, str]], first: str) -> None:
    from podrepro.images.recipe import packages_recipe

    class Engine:
        def image_exists(self, ref: str) -> bool:
            return False

        def list_images(self, label: str) -> list[ImageInfo]:
            assert label == "io.podrepro.kind=base"
            return [ImageInfo(id=str(i), tags=(f"localhost/podrepro/base:x-{i}",),
                              labels={"io.podrepro.recipe": json.dumps({"debian_arch": a, "suite": s})},
                              size=0, created="", architecture="", os="linux")
                    for i, (a, s) in enumerate(store)]

    builder = Builder(Engine(), Paths(tmp_path / "c", tmp_path / "s", tmp_path / "k"))  # type: ignore[arg-type]
    built: list[str] = []

    def build_base(recipe: Recipe, source: BaseSource, t0: float, seed: bool = True) -> BuildResult:
        built.append(recipe.profile)
        return BuildResult(recipe.tag, True, 0.0)

    monkeypatch.setattr(builder, "_build_base", build_base)
    pkgs = packages_recipe(base_recipe(lookup("arm"), "bookworm", "minbase"), BUILTINS["generic"])
    assert pkgs is not None
    builder.ensure(pkgs)
    assert built[0] == first and built[-1] == "generic" and len(built) == (2 if first == "base" else 1)
