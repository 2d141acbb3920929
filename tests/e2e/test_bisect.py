"""Issue 20 (bisect) end to end: the commit that broke arm, found in a worktree of its own."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import no_leftover_containers, podrepro

pytestmark = pytest.mark.e2e

CMAKE = """cmake_minimum_required(VERSION 3.13)
project(total C)
add_executable(test_total test_total.c total.c)
enable_testing()
add_test(NAME total COMMAND test_total)
"""
TEST = """#include <stdio.h>
long long total_bytes(int blocks);
int main(void) {
    long long t = total_bytes(5);  /* 5 blocks of 1 GiB */
    printf("total %lld\\n", t);
    return t == 5LL * 1024 * 1024 * 1024 ? 0 : 1;
}
"""
GOOD = "long long total_bytes(int blocks) { long long sum = 0; for (int i = 0; i < blocks; i++) sum += 1LL << 30; return sum; }\n"
# the regression: a `long` accumulator, 64 bits on amd64, 32 bits on arm
BAD = "long long total_bytes(int blocks) { long sum = 0; for (int i = 0; i < blocks; i++) sum += 1L << 30; return sum; }\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _snapshot(repo: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(repo.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(repo)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, list[str]]:
    """Twelve commits; the seventh makes the accumulator a `long`."""
    repo = tmp_path / "total"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "dev@example.invalid")
    _git(repo, "config", "user.name", "dev")
    (repo / "CMakeLists.txt").write_text(CMAKE)
    (repo / "test_total.c").write_text(TEST)
    (repo / "total.c").write_text(GOOD)
    (repo / "podrepro.toml").write_text('default_profile = "generic"\n')
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "total_bytes and its test")
    for i in range(2, 13):
        if i == 7:
            (repo / "total.c").write_text(BAD)
            msg = "total_bytes: a plain long is enough"
        else:
            with open(repo / "NOTES", "a") as f:
                f.write(f"note {i}\n")
            msg = f"notes {i}"
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", msg)
    commits = _git(repo, "rev-list", "--reverse", "HEAD").split()
    assert len(commits) == 12
    return repo, commits


def test_bisect_on_arm_finds_the_commit_and_leaves_the_checkout_alone(history: tuple[Path, list[str]]) -> None:
    repo, commits = history
    (repo / "scratch.txt").write_text("uncommitted work")  # the user's own, untracked
    before = _snapshot(repo)
    r = podrepro("bisect", "arm", "--good", commits[0], "--bad", "HEAD", cwd=repo, timeout=3600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"first bad commit on arm: {commits[6]} total_bytes: a plain long is enough" in r.stdout, r.stdout
    assert _snapshot(repo) == before
    assert _git(repo, "worktree", "list").count("\n") == 1
    assert _git(repo, "status", "--porcelain") == "?? scratch.txt\n"
    assert no_leftover_containers() == []


def test_the_same_range_on_amd64_has_no_bad_commit(history: tuple[Path, list[str]]) -> None:
    repo, commits = history
    before = _snapshot(repo)
    r = podrepro("bisect", "amd64", "--good", commits[0], "--bad", "HEAD", cwd=repo, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no bad commit: the tests pass on amd64" in r.stdout
    assert _snapshot(repo) == before
