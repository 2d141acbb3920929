"""podrepro bisect's machinery (worktree, git bisect run, the step's exit codes, clean-up) with a
stand-in podrepro; tests/e2e/test_bisect.py runs it for real on arm."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podrepro.bisect import command
from podrepro.errors import PodreproError, UsageError

FAKE = """#!/bin/sh
# stand-in for "python -m podrepro build|test ARCH ...": the tree's state file says what happens
shift 2  # -m podrepro
state=$(cat state)
case "$1" in
  build) [ "$state" = nobuild ] && { echo "build broken"; exit 1; }; echo built; exit 0 ;;
  test) [ "$state" = bad ] && { echo "1 test failed"; exit 8; }; echo "all passed"; exit 0 ;;
esac
exit 2
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _repo(tmp_path: Path, states: list[str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.invalid")
    _git(repo, "config", "user.name", "t")
    for i, st in enumerate(states):
        (repo / "state").write_text(st)
        _git(repo, "add", "state")
        _git(repo, "commit", "-q", "--allow-empty", "-m", f"commit {i}: {st}")
    return repo


def _snapshot(repo: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(repo.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(repo)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    monkeypatch.setenv("PODREPRO_STATE_DIR", str(tmp_path / "state"))
    return fake


def test_finds_the_first_bad_commit_and_leaves_the_checkout_as_it_was(tmp_path: Path, fake_python: Path) -> None:
    repo = _repo(tmp_path, ["ok", "ok", "nobuild", "ok", "ok", "ok", "bad", "bad", "bad", "bad", "bad", "bad"])
    (repo / "untracked.txt").write_text("mine")
    before = _snapshot(repo)
    commits = _git(repo, "rev-list", "--reverse", "HEAD").split()
    r = command.bisect("arm", commits[0], "HEAD", [], [], repo=repo, say=lambda line: None)
    assert r.first_bad is not None and commits[6].startswith(r.first_bad), (r, commits)
    assert r.subject == "commit 6: bad"
    assert _snapshot(repo) == before
    assert _git(repo, "worktree", "list").count("\n") == 1
    assert not (repo / ".git" / "BISECT_LOG").exists()
    assert sorted(p.name for p in r.logdir.glob("step-*.log"))  # a log per step


def test_a_skipped_commit_next_to_the_change_leaves_candidates(tmp_path: Path, fake_python: Path) -> None:
    repo = _repo(tmp_path, ["ok", "ok", "ok", "nobuild", "bad", "bad"])
    commits = _git(repo, "rev-list", "--reverse", "HEAD").split()
    r = command.bisect("arm", commits[0], "HEAD", [], [], repo=repo, say=lambda line: None)
    assert r.first_bad is None and set(r.candidates) == {commits[3], commits[4]}


def test_bad_that_passes_is_reported_not_bisected(tmp_path: Path, fake_python: Path) -> None:
    repo = _repo(tmp_path, ["ok"] * 4)
    first = _git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    r = command.bisect("amd64", first, "HEAD", [], [], repo=repo, say=lambda line: None)
    assert r.bad_passes and r.first_bad is None
    assert _git(repo, "worktree", "list").count("\n") == 1


def test_a_bad_that_does_not_build_is_an_error(tmp_path: Path, fake_python: Path) -> None:
    repo = _repo(tmp_path, ["ok", "nobuild"])
    first = _git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    with pytest.raises(PodreproError, match="nothing to bisect"):
        command.bisect("arm", first, "HEAD", [], [], repo=repo, say=lambda line: None)
    assert _git(repo, "worktree", "list").count("\n") == 1


def test_revisions_are_checked(tmp_path: Path, fake_python: Path) -> None:
    repo = _repo(tmp_path, ["ok", "bad"])
    with pytest.raises(UsageError):
        command.bisect("arm", "--upload-pack=x", "HEAD", [], [], repo=repo, say=lambda line: None)
    with pytest.raises(UsageError, match="not an ancestor"):
        command.bisect("arm", "HEAD", "HEAD~1", [], [], repo=repo, say=lambda line: None)


def test_an_interrupted_bisect_removes_its_worktree(tmp_path: Path, fake_python: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, ["ok", "bad", "bad"])
    first = _git(repo, "rev-list", "--max-parents=0", "HEAD").strip()

    def interrupted(*a: object, **k: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "_run_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        command.bisect("arm", first, "HEAD", [], [], repo=repo, say=lambda line: None)
    assert _git(repo, "worktree", "list").count("\n") == 1
    assert not any(p.name.startswith("podrepro-bisect-") for p in Path(os.environ.get("TMPDIR", "/tmp")).iterdir()
                   if p.is_dir() and p.stat().st_uid == os.getuid() and (p / ".git").exists())
