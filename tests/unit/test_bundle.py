"""Repro bundles' logic: the tree snapshot and its rebuild, the manifest, reading a bundle from
elsewhere, the replayed command line, the comparison. tests/e2e/test_bundle_root.py makes a real
bundle as one user and replays it as another with an empty store."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from podrepro.bundle import command, manifest, replay, snapshot
from podrepro.errors import PodreproError, UsageError
from podrepro.images.recipe import LABEL, canonical_json, content_hash


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    (repo / "src").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.invalid")
    _git(repo, "config", "user.name", "t")
    (repo / ".gitignore").write_text("*.o\n")
    (repo / "src" / "a.c").write_text("int a;\n")
    (repo / "src" / "gone.c").write_text("int g;\n")
    (repo / "bin.dat").write_bytes(bytes(range(256)))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "one")
    return repo


def _dirty(repo: Path) -> None:
    (repo / "src" / "a.c").write_text("int a = 1;\n")                 # unstaged
    (repo / "staged.c").write_text("int s;\n")
    _git(repo, "add", "staged.c")                                    # staged
    (repo / "untracked.txt").write_text("new\n")                     # untracked, not ignored
    (repo / "x.o").write_text("ignored\n")                           # ignored
    (repo / "src" / "gone.c").unlink()                               # deleted
    (repo / "bin.dat").write_bytes(bytes(range(255, -1, -1)))        # binary change
    for d in ("build-podrepro-arm", ".podrepro/cores"):
        (repo / d).mkdir(parents=True)
        (repo / d / "out").write_text("output\n")
    (repo / "podrepro-bundle-arm-1.tar").write_text("an older bundle\n")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


EXCLUDED = ["build-podrepro-arm", "build-podrepro-mips"]
WANT = {".gitignore", "src/a.c", "bin.dat", "staged.c", "untracked.txt"}


def test_snapshot_holds_every_change_and_leaves_the_index_alone(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _dirty(repo)
    status = _git(repo, "status", "--porcelain")  # (git status refreshes the index: first)
    index = (repo / ".git" / "index").read_bytes()
    snap = snapshot.take(repo, repo / "src", EXCLUDED)
    assert (repo / ".git" / "index").read_bytes() == index
    assert _git(repo, "status", "--porcelain") == status
    assert snap.commit == _git(repo, "rev-parse", "HEAD").strip() and snap.subdir == "src"
    assert set(snap.files) == WANT
    for name in (b"src/a.c", b"staged.c", b"untracked.txt", b"src/gone.c", b"bin.dat"):
        assert b"diff --git a/" + name in snap.diff, name
    for name in (b"x.o", b"build-podrepro-arm", b".podrepro", b"podrepro-bundle-"):
        assert name not in snap.diff, name
    assert b"GIT binary patch" in snap.diff


def test_rebuilt_from_the_repository_and_from_the_tarball_is_the_tree(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _dirty(repo)
    snap = snapshot.take(repo, repo, EXCLUDED)
    want = {k: v for k, v in _files(repo).items() if k in WANT}
    snapshot.from_repository(repo, str(snap.commit), snap.diff, tmp_path / "clone")
    assert _files(tmp_path / "clone") == want
    tarball = tmp_path / "tree.tar.gz"
    snapshot.write_tarball(snap, tarball)
    snapshot.from_tarball(tarball, tmp_path / "files")
    assert _files(tmp_path / "files") == want


def test_a_clean_tree_has_no_diff_and_outside_git_every_file_but_outputs(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert snapshot.take(repo, repo, EXCLUDED).diff == b""
    plain = tmp_path / "plain"
    (plain / "build-podrepro-mips").mkdir(parents=True)
    (plain / "build-podrepro-mips" / "o").write_text("x")
    (plain / "main.c").write_text("int main;\n")
    (plain / "podrepro-bundle-mips-tree.tar").write_text("x")
    snap = snapshot.take(plain, plain, EXCLUDED)
    assert (snap.commit, snap.files) == (None, ("main.c",))


def test_a_missing_commit_says_how_to_replay(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    with pytest.raises(PodreproError, match="does not have commit 000000000000") as e:
        snapshot.from_repository(repo, "0" * 40, b"", tmp_path / "c")
    assert "--bundled-tree" in str(e.value.hint)


def _tarball(tmp_path: Path, *members: tarfile.TarInfo) -> Path:
    p = tmp_path / "t.tar.gz"
    with tarfile.open(p, "w:gz") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
    return p


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type, m.linkname, m.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return m


@pytest.mark.parametrize("bad", [
    _member("../escape"), _member("/abs"), _member("a/../../b"),
    _member("l", tarfile.SYMTYPE, "/etc/passwd"), _member("d/l", tarfile.SYMTYPE, "../../x"),
    _member("h", tarfile.LNKTYPE, "ok"), _member("dev", tarfile.CHRTYPE), _member("fifo", tarfile.FIFOTYPE),
])
def test_a_hostile_bundled_tree_is_refused_before_anything_is_written(tmp_path: Path, bad: tarfile.TarInfo) -> None:
    tarball = _tarball(tmp_path, _member("ok"), bad)
    with pytest.raises(PodreproError, match="refused"):
        snapshot.from_tarball(tarball, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "escape").exists()


def test_links_inside_the_tree_and_modes_survive(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o4755)
    (src / "link").symlink_to("run.sh")
    snap = snapshot.Snapshot(src, "", None, b"", ("run.sh", "link"))
    snapshot.write_tarball(snap, tmp_path / "t.tar.gz")
    snapshot.from_tarball(tmp_path / "t.tar.gz", tmp_path / "out")
    assert os.readlink(tmp_path / "out" / "link") == "run.sh"
    assert (tmp_path / "out" / "run.sh").stat().st_mode & 0o7777 == 0o755  # no setuid from someone else's file


def test_scan_records_what_a_bundle_needs_and_refuses_what_it_cannot_carry() -> None:
    got = command.scan(["-f", "wire", "--cpu=cortex-a7", "-e", "A=1", "--env", "TOKEN", "--core", "--", "-e", "X"])
    assert (got["filter"], got["cpu"], got["env"], got["core"]) == ("wire", "cortex-a7", ["A=1", "TOKEN"], True)
    assert command.scan(["--timeout-multiplier", "2.5"])["timeout_multiplier"] == 2.5
    for bad in ("--src", "--repeat", "--host-network", "--writable-git", "--junit", "--strace", "--connection"):
        with pytest.raises(UsageError, match=f"{bad} cannot be bundled"):
            command.scan([bad, "x"])
    with pytest.raises(UsageError, match="needs a value"):
        command.scan(["--filter"])


TAG = "localhost/podrepro/generic:arm-0123456789ab"


def test_a_replay_drops_what_widens_the_container_unless_the_replayer_asks() -> None:
    args = ["--network", "-e", "TOKEN", "-e", "A=1", "--filter", "wire", "--", "--network"]
    out, notes = replay.replay_args(args, TAG, network=False, env=[])
    assert out == ["-e", "A=1", "--filter", "wire", "--", "--network"]
    assert any("TOKEN" in n and "replay -e TOKEN" in n for n in notes) and any("--network" in n for n in notes)
    out, notes = replay.replay_args(args, TAG, network=True, env=["TOKEN"])
    assert out == ["--network", "-e", "TOKEN", "-e", "A=1", "--filter", "wire", "--", "--network"] and notes == []
    for refused in ("--host-network", "--connection"):  # a bundle never picks the replayer's engines either
        with pytest.raises(PodreproError, match=refused):
            replay.replay_args([refused, "x"], TAG, network=True, env=[])
    with pytest.raises(PodreproError, match="another image"):
        replay.replay_args(["--image", "localhost/podrepro/generic:arm-ffffffffffff"], TAG, network=False, env=[])
    assert replay.replay_args(["--image", TAG], TAG, network=False, env=[])[0] == ["--image", TAG]


@pytest.mark.parametrize(("mode", "then", "now", "verdict"), [
    ("test", manifest.Outcome(8, 3, ("a", "b")), manifest.Outcome(8, 3, ("b", "a")), "reproduced"),
    ("test", manifest.Outcome(8, 3, ("a", "b")), manifest.Outcome(0, 3), "not reproduced"),
    ("test", manifest.Outcome(8, 3, ("a", "b")), manifest.Outcome(8, 3, ("a",)), "different"),
    ("test", manifest.Outcome(8, 3, ("a",)), manifest.Outcome(8, 3, ("c",)), "different"),
    ("run", manifest.Outcome(3), manifest.Outcome(3), "reproduced"),
    ("run", manifest.Outcome(3), manifest.Outcome(139), "different"),
    ("run", manifest.Outcome(3), manifest.Outcome(0), "not reproduced"),
    ("run", manifest.Outcome(0), manifest.Outcome(0), "reproduced"),
])
def test_compare(mode: str, then: manifest.Outcome, now: manifest.Outcome, verdict: str) -> None:
    assert manifest.compare(mode, then, now)[0] == verdict


def test_compare_names_what_differs() -> None:
    why = manifest.compare("test", manifest.Outcome(8, 3, ("a", "b")), manifest.Outcome(8, 3, ("b", "c")))[1]
    assert why == "no longer failing: a; failing now: c"
    facts = manifest.differing_facts({"qemu": "7.2.22", "kernel": "6.1"}, {"qemu": "8.2.1", "kernel": "6.1"})
    assert facts == (("qemu", "7.2.22", "8.2.1"),)


def test_redact() -> None:
    out = manifest.redact(b"token=s3cr3t-value and s3cr3t-value; x=abc", {"T": "s3cr3t-value", "SHORT": "abc"})
    assert out == b"token=<$T> and <$T>; x=abc"


def _good_manifest() -> dict[str, object]:
    return {"version": 1, "arch": "arm", "mode": "test", "args": ["-f", "x"],
            "image": {"tag": TAG, "id": "a" * 64}, "source": {"commit": "b" * 40, "subdir": "sub"},
            "host": {}, "result": {"exit_status": 8, "failed_tests": ["x"]}, "env": {}}


@pytest.mark.parametrize(("path", "value", "msg"), [
    (("version",), 2, "version 2 bundle"), (("version",), "1", "version is missing"),
    (("mode",), "shell", "mode or arch"), (("args",), ["-f", 3], "args"),
    (("source", "commit"), "HEAD; rm -rf", "source.commit"), (("source", "subdir"), "../../etc", "source.subdir"),
    (("source", "subdir"), "/etc", "source.subdir"), (("image", "tag"), "--rm", "image"),
    (("image", "id"), "x" * 64, "image"), (("result", "exit_status"), "8", "result"),
])
def test_a_manifest_from_elsewhere_is_checked(path: tuple[str, ...], value: object, msg: str) -> None:
    m = _good_manifest()
    assert manifest.check(m, "b.tar") is m
    d: dict[str, object] = m
    for k in path[:-1]:
        d = d[k]  # type: ignore[assignment]
    d[path[-1]] = value
    with pytest.raises(PodreproError, match=msg):
        manifest.check(m, "b.tar")


def _bundle(tmp_path: Path, members: list[tuple[str, bytes]], kind: bytes = tarfile.REGTYPE) -> Path:
    p = tmp_path / "b.tar"
    with tarfile.open(p, "w:") as tf:
        for name, data in members:
            m = tarfile.TarInfo(name)
            m.size, m.type = len(data), kind if name != manifest.MANIFEST else tarfile.REGTYPE
            tf.addfile(m, io.BytesIO(data))
    return p


def test_unpack_reads_only_a_bundles_members(tmp_path: Path) -> None:
    good = json.dumps(_good_manifest()).encode()
    out = tmp_path / "u"
    out.mkdir()
    assert manifest.unpack(_bundle(tmp_path, [(manifest.MANIFEST, good), ("result/cores/core.1", b"c")]), out)["arch"] == "arm"
    assert (out / "result" / "cores" / "core.1").read_bytes() == b"c"
    for members, msg in (([(manifest.MANIFEST, good), ("../x", b"")], "unexpected member"),
                         ([(manifest.MANIFEST, good), ("result/cores/../../x", b"")], "unexpected member"),
                         ([(manifest.MANIFEST, good), (manifest.MANIFEST, good)], "appears twice"),
                         ([(manifest.LOG, b"x")], "no manifest.json"),
                         ([(manifest.MANIFEST, b"{")], "not JSON")):
        fresh = tmp_path / f"u{len(list(tmp_path.iterdir()))}"
        fresh.mkdir()
        with pytest.raises(PodreproError, match=msg):
            manifest.unpack(_bundle(tmp_path, members), fresh)
    fresh = tmp_path / "link"
    fresh.mkdir()
    with pytest.raises(PodreproError, match="unexpected member"):
        manifest.unpack(_bundle(tmp_path, [(manifest.MANIFEST, good), (manifest.LOG, b"")], kind=tarfile.SYMTYPE), fresh)
    (tmp_path / "trunc.tar").write_bytes(_bundle(tmp_path, [(manifest.MANIFEST, good)]).read_bytes()[:700])
    fresh = tmp_path / "t"
    fresh.mkdir()
    with pytest.raises(PodreproError, match="truncated"):
        manifest.unpack(tmp_path / "trunc.tar", fresh)


def _oci(tmp_path: Path, *, name: str = TAG, arch: str = "arm", tamper: bool = False) -> tuple[Path, str]:
    recipe = {"kind": "base", "arch": "arm", "suite": "bookworm"}
    h = content_hash(recipe)[:12]
    labels = {f"{LABEL}.recipe": canonical_json(recipe), f"{LABEL}.hash": h, f"{LABEL}.arch": "arm",
              f"{LABEL}.profile": "generic", f"{LABEL}.kind": "base"}
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Labels": labels}}).encode()
    cdig = hashlib.sha256(config).hexdigest()
    man = json.dumps({"schemaVersion": 2, "config": {"digest": f"sha256:{cdig}"}, "layers": []}).encode()
    mdig = hashlib.sha256(man).hexdigest()
    index = json.dumps({"manifests": [{"digest": f"sha256:{mdig}", "annotations": {
        "org.opencontainers.image.ref.name": name.replace("0123456789ab", h)}}]}).encode()
    p = tmp_path / "img.tar"
    with tarfile.open(p, "w:") as tf:
        for n, data in (("index.json", index), (f"blobs/sha256/{mdig}", man),
                        (f"blobs/sha256/{cdig}", config + (b" " if tamper else b""))):
            m = tarfile.TarInfo(n)
            m.size = len(data)
            tf.addfile(m, io.BytesIO(data))
    return p, cdig


def test_the_bundled_image_is_checked_before_it_is_loaded(tmp_path: Path) -> None:
    p, cdig = _oci(tmp_path)
    tag = TAG.replace("0123456789ab", content_hash({"kind": "base", "arch": "arm", "suite": "bookworm"})[:12])
    assert manifest.check_image_archive(p, tag, cdig)[f"{LABEL}.arch"] == "arm"
    with pytest.raises(PodreproError, match="the manifest says"):
        manifest.check_image_archive(p, tag, "f" * 64)
    with pytest.raises(PodreproError, match="named"):
        manifest.check_image_archive(p, "localhost/podrepro/generic:arm-ffffffffffff", cdig)
    p, cdig = _oci(tmp_path, tamper=True)
    with pytest.raises(PodreproError, match="does not match its digest"):
        manifest.check_image_archive(p, tag, cdig)
    p, cdig = _oci(tmp_path, arch="amd64")
    with pytest.raises(PodreproError, match="the image is amd64"):
        manifest.check_image_archive(p, tag, cdig)
