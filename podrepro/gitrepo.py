"""git, through the subprocess chokepoint: what bisect and bundles ask of a repository."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from podrepro.errors import PodreproError


def git(repo: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None,
        input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """``git -C repo ARGS`` with text output; ``check``: a failure is one PodreproError line."""
    cp = git_bytes(repo, *args, check=check, env=env, input=input)
    return subprocess.CompletedProcess(cp.args, cp.returncode, cp.stdout.decode(errors="replace"),
                                       cp.stderr.decode(errors="replace"))


def git_bytes(repo: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None,
              input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    from podrepro.engine import process

    cp = process.run(["git", "-C", str(repo), *args], env=env, input=input)
    if check and cp.returncode != 0:
        said = (cp.stderr or cp.stdout).decode(errors="replace").strip().splitlines()
        raise PodreproError(f"git {' '.join(args[:2])} failed: {said[-1] if said else f'exit {cp.returncode}'}",
                            hint="check the revisions and that this is a git repository")
    return cp


def toplevel(path: Path) -> Path | None:
    """The working tree's top directory of the repository ``path`` is in; None outside one."""
    cp = git(path, "rev-parse", "--show-toplevel", check=False)
    return Path(cp.stdout.strip()) if cp.returncode == 0 and cp.stdout.strip() else None


def has_commit(repo: Path, sha: str) -> bool:
    return git(repo, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0
