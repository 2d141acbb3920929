"""``podrepro bisect ARCH --good REV --bad REV [-- test|build OPTIONS]``.

``git bisect run`` in a separate worktree (``git worktree add --detach``), so the user's
checkout, index and branches are never touched: bisect's state lives in that worktree's own
metadata and goes with it. Each step is ``podrepro build ARCH`` (a failure: git bisect's "skip",
125) then ``podrepro test ARCH --no-build`` (pass: good; failed tests: bad; no test ran: skip),
with their output in a log per step. The worktree's path stays the same for the whole bisect, so
its per-architecture build tree and ccache carry over from step to step (only what a step's
checkout changed is rebuilt). Whatever happens (the end, an error, Ctrl-C), the worktree is
removed and pruned.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from podrepro.errors import PodreproError, UsageError
from podrepro.gitrepo import git as _git
from podrepro.reporting import Notify

FIRST_BAD = re.compile(r"^([0-9a-f]{7,40}) is the first bad commit", re.M)
# skipped commits (a build that failed) next to the change: git names every candidate
CANDIDATES = re.compile(r"first bad commit could be any of:\n((?:[0-9a-f]{40}\n)+)")
REV_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/@{}~^-]{0,200}")  # a revision, never an option

def step_script(logdir: Path, python: str, arch: str, options: Sequence[str], test_options: Sequence[str]) -> str:
    """One step, run by ``git bisect run`` in the worktree: exit 0 good, 1 bad, 125 skip. Every
    value is quoted into the script (nothing is passed through a shell's word splitting)."""
    q = shlex.quote
    d, opts, topts = q(str(logdir)), " ".join(q(o) for o in options), " ".join(q(o) for o in test_options)
    return (f'n=$(cat {d}/n 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > {d}/n\n'
            f'log={d}/step-$n-$(git rev-parse --short HEAD).log\n'
            f'{q(python)} -m podrepro build {q(arch)} {opts} > "$log" 2>&1 || '
            f'{{ echo "podrepro bisect: the build failed: skip" >> "$log"; exit 125; }}\n'
            f'{q(python)} -m podrepro test {q(arch)} --no-build {opts} {topts} >> "$log" 2>&1\n'
            'rc=$?\n'
            '[ "$rc" -eq 0 ] && exit 0\n'
            'grep -q "error: no test ran" "$log" && exit 125\n'
            'exit 1\n')


@dataclass(frozen=True)
class Result:
    first_bad: str | None          # the commit, or None when ARCH passes at --bad (or skips leave several)
    subject: str
    logdir: Path
    steps: int
    bad_passes: bool = False
    candidates: tuple[str, ...] = ()   # skipped commits around the change: it is one of these


def bisect(arch_name: str, good: str, bad: str, options: Sequence[str], test_options: Sequence[str], *,
           repo: Path, say: Notify) -> Result:
    """Find the first commit between ``good`` and ``bad`` whose tests fail on ARCH."""
    from podrepro.arches import lookup

    arch = lookup(arch_name)
    for rev in (good, bad):
        if not REV_RE.fullmatch(rev):
            raise UsageError(f"not a git revision: {rev!r}", hint="e.g. --good v1.2 --bad HEAD")
    top = Path(_git(repo, "rev-parse", "--show-toplevel").stdout.strip())
    good_sha, bad_sha = (_commit(top, flag, rev) for flag, rev in (("--good", good), ("--bad", bad)))
    if _git(top, "merge-base", "--is-ancestor", good_sha, bad_sha, check=False).returncode != 0:
        raise UsageError(f"--good {good} is not an ancestor of --bad {bad}", hint="swap them?")
    # the logs go to podrepro's state dir: the user's checkout stays byte for byte as it was
    logdir = Path(tempfile.mkdtemp(prefix=f"bisect-{arch.alias}-", dir=_state_dir()))
    wt = Path(tempfile.mkdtemp(prefix="podrepro-bisect-"))
    os.rmdir(wt)  # git worktree add makes it
    step = logdir / "step.sh"
    step.write_text(step_script(logdir, sys.executable, arch.alias, options, test_options))
    env = {"PODREPRO_PROGRESS": "plain"}
    common = Path(_git(top, "rev-parse", "--git-common-dir").stdout.strip())
    packed = (common if common.is_absolute() else top / common) / "packed-refs"
    had_packed = packed.exists()
    try:
        _git(top, "worktree", "add", "--detach", str(wt), bad_sha)
        say(f"bisecting {good}..{bad} on {arch.alias} in a worktree of its own ({wt}); a log per step in {logdir}/")
        first = _run_step(wt, step, env)
        if first == 0:
            return Result(None, "", logdir, 1, bad_passes=True)
        if first == 125:
            raise PodreproError(f"at --bad {bad} the build fails or no test runs on {arch.alias}: nothing to bisect",
                                hint=f"see the log in {logdir}")
        _git(wt, "bisect", "start", bad_sha, good_sha)
        from podrepro.engine import process

        cp = process.run(["git", "-C", str(wt), "bisect", "run", "sh", str(step)], env=env)
        out = cp.stdout.decode(errors="replace")
        (logdir / "bisect.log").write_text(out + cp.stderr.decode(errors="replace"))
        m = FIRST_BAD.search(out)
        steps = int((logdir / "n").read_text().strip()) if (logdir / "n").exists() else 0
        if m is None:
            c = CANDIDATES.search(out)
            if c is None:
                raise PodreproError("git bisect ended without a first bad commit", hint=f"see {logdir / 'bisect.log'}")
            return Result(None, "", logdir, steps, candidates=tuple(c.group(1).split()))
        sha = m.group(1)
        subject = _git(top, "log", "-1", "--format=%s", sha).stdout.strip()
        return Result(sha, subject, logdir, steps)
    finally:
        _git(top, "worktree", "remove", "--force", str(wt), check=False)
        _git(top, "worktree", "prune", check=False)
        # git bisect in a worktree leaves an empty packed-refs (its header only) in the shared
        # .git: the user's repository is to be as it was, byte for byte
        if not had_packed and packed.is_file() and all(
                ln.startswith("#") for ln in packed.read_text().splitlines()):
            packed.unlink()


def _commit(top: Path, flag: str, rev: str) -> str:
    cp = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if cp.returncode != 0:
        raise UsageError(f"{flag} {rev}: no such commit in {top}", hint="see 'git log --oneline'")
    return cp.stdout.strip()


def _state_dir() -> Path:
    from podrepro.paths import get_paths

    d = get_paths().logs
    d.mkdir(parents=True, exist_ok=True)
    return d


def _run_step(wt: Path, step: Path, env: dict[str, str]) -> int:
    """The step at the worktree's commit (--bad, first): 0 good, 1 bad, 125 skip."""
    from podrepro.engine import process

    return process.run(["sh", str(step)], env=env, cwd=str(wt)).returncode
