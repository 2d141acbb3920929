"""``podrepro replay FILE``: a bundle (``bundle.manifest``) checked, its tree rebuilt, its image
loaded, its command rerun, the outcome compared."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro.bundle import manifest as mf
from podrepro.bundle import snapshot
from podrepro.bundle.command import REFUSED, VALUED, handler, parse_outcome, run_child
from podrepro.errors import PodreproError, UsageError
from podrepro.reporting import Confirm, Notify


def replay_args(args: Sequence[str], tag: str, *, network: bool, env: Sequence[str]) -> tuple[list[str], list[str]]:
    """A bundle's command line as a replay runs it, and notes. A bundle is someone else's: what
    widens the container's view is dropped unless the replaying user asks for it too (a
    pass-through ``-e NAME`` only with ``replay -e NAME``, ``--network`` only with ``replay
    --network``); ``--image`` only names the bundle's own image; refused options are refused."""
    out: list[str] = []
    notes: list[str] = []
    it = iter(args)
    for a in it:
        if a == "--":
            out += ["--", *it]
            break
        name, eq, val = a.partition("=") if a.startswith("--") else (a, "", "")
        if name in REFUSED:
            raise PodreproError(f"the bundle's command has {name}, which a bundle never carries: refused",
                                hint="ask for a bundle made with 'podrepro bundle'")
        if name == "--network" and not network:
            notes.append("the bundle's run had a network; this replay has none (replay --network to give it one)")
            continue
        if name in VALUED:
            v = val if eq else next(it, "")
            if VALUED[name] == "env" and "=" not in v and v not in env:
                notes.append(f"{v} was passed through from the host's environment when the bundle was made; "
                             f"not passed here (replay -e {v} to pass yours)")
                continue
            if VALUED[name] == "image" and v != tag:
                raise PodreproError(f"the bundle's command names another image ({v}): refused")
            out += [name, v]
            continue
        out.append(a)
    return out, notes


@dataclass(frozen=True)
class Replayed:
    verdict: str
    why: str
    facts: tuple[tuple[str, str, str], ...]
    tree: Path
    log: Path
    then: mf.Outcome
    now: mf.Outcome
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"version": mf.VERSION, "verdict": self.verdict, "why": self.why, "tree": str(self.tree),
                "log": str(self.log), "bundle": self.then.to_json(), "replay": self.now.to_json(),
                "facts": [{"fact": f, "bundle": a, "here": b} for f, a, b in self.facts], "notes": list(self.notes)}


def replay(path: Path, *, into: Path | None, repo: Path | None, bundled_tree: bool, network: bool = False,
           env: Sequence[str] = (), confirm: Confirm | None, say: Notify, show: Notify) -> Replayed:
    from podrepro.arches import lookup
    from podrepro.paths import get_paths

    paths = get_paths()
    paths.state.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="podrepro-replay-", dir=paths.state) as tmpd:
        tmp = Path(tmpd)
        m = mf.unpack(path, tmp)
        arch = lookup(m["arch"])
        src = m["source"]
        tree = _tree(m, tmp, into=into, repo=repo, bundled_tree=bundled_tree, say=say)
        cwd = tree / src["subdir"] if src.get("subdir") else tree
        tag = m["image"]["tag"]
        extra = _image(m, tmp, cwd, say=say)
        args, notes = replay_args(m["args"], tag, network=network, env=env)
        for n in notes:
            say(n)
        passed = [n for n in env if "=" not in n]
        before = args.index("--") if "--" in args else len(args)
        head = args[:before]
        if m.get("cpu") and not any(a == "--cpu" or a.startswith("--cpu=") for a in head):
            extra += ["--cpu", str(m["cpu"])]
        if m["mode"] == "test" and m.get("timeout_multiplier") and not any(
                a.startswith("--timeout-multiplier") for a in head):
            extra += ["--timeout-multiplier", f"{float(m['timeout_multiplier']):g}"]
        argv = [sys.executable, "-m", "podrepro", m["mode"], arch.alias, *head, *extra,
                *(x for n in env if n not in args for x in ("-e", n)), *args[before:]]
        _check_binfmt(arch, cwd, confirm)
        logs = paths.logs
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"replay-{arch.alias}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        say(f"replaying podrepro {m['mode']} {arch.alias} {' '.join(m['args'])} in {cwd}".rstrip())
        rc, _ = run_child(argv, cwd, log, secrets={n: os.environ[n] for n in passed if os.environ.get(n)}, show=show)
        now = parse_outcome(rc, log)
        then = mf.outcome_of(m)
        verdict, why = mf.compare(m["mode"], then, now)
        interp, flags = handler(arch)
        from podrepro.engine.podman import Podman

        here_id = None
        with contextlib.suppress(PodreproError):  # the CLI: no API service left behind
            here_id = Podman().inspect_id_cli(tag)
        facts = mf.differing_facts(m["host"], mf.host_facts(interp, flags, here_id))
        return Replayed(verdict, why, facts, tree, log, then, now, tuple(notes))


def _tree(m: dict[str, Any], tmp: Path, *, into: Path | None, repo: Path | None, bundled_tree: bool,
          say: Notify) -> Path:
    """The tree to replay in: ``into`` as it is when it holds files, else a new one (in ``into``,
    or in podrepro's state dir) from a repository that has the commit, or the bundled files."""
    from podrepro.gitrepo import has_commit, toplevel
    from podrepro.paths import get_paths

    src = m["source"]
    commit, diff = src.get("commit"), (tmp / mf.DIFF).read_bytes() if (tmp / mf.DIFF).is_file() else b""
    if into is not None and into.is_dir() and any(into.iterdir()):
        head, dirty = snapshot.describe(into)
        same = head == commit
        say(f"replaying in {into} as it is: " + (f"at {head[:12]}" if head else "not a git checkout")
            + (" with changes" if dirty else "") + ("" if same or not commit else f" (the bundle's commit: {commit[:12]})"))
        return into.resolve()
    if into is not None and into.exists() and not into.is_dir():
        raise UsageError(f"--in {into}: not a directory")
    if into is not None:
        with contextlib.suppress(OSError):
            into.rmdir()  # empty: rebuilt there
        dest = into.resolve()
    else:
        base = get_paths().state / "replays"
        base.mkdir(parents=True, exist_ok=True)
        dest = Path(tempfile.mkdtemp(prefix=f"{m['arch']}-{(commit or 'tree')[:10]}-", dir=base))
        dest.rmdir()
    found = None
    if commit and not bundled_tree:
        if repo is not None:
            found = repo
        else:
            top = toplevel(Path.cwd())
            found = top if top is not None and has_commit(top, commit) else None
    if found is not None:
        say(f"rebuilding the tree in {dest}: a clone of {found} at {commit[:12]}" + (" plus the bundled diff" if diff else ""))
        snapshot.from_repository(found, commit, diff, dest)
    elif (tmp / mf.TREE).is_file():
        say(f"rebuilding the tree in {dest} from the bundled files")
        snapshot.from_tarball(tmp / mf.TREE, dest)
    else:
        raise UsageError("this bundle holds no tree (--no-tree) and no repository here has its commit",
                         hint=f"run replay inside a clone that has {commit or 'the commit'}, or pass --repo PATH")
    return dest


def _image(m: dict[str, Any], tmp: Path, cwd: Path, *, say: Notify) -> list[str]:
    """Load the bundled image (checked first) unless it is here already; the options that make
    the replayed command use it."""
    from podrepro import config
    from podrepro.arches import lookup
    from podrepro.engine.podman import Podman
    from podrepro.images.target import target

    tag, image_id = m["image"]["tag"], m["image"].get("id")
    eng = Podman()
    archive = tmp / mf.IMAGE
    if not archive.is_file():
        say(f"the bundle holds no image: {tag} is used or built here from its recipe")
        return []
    if image_id is None:
        raise PodreproError("the bundle holds an image but not its ID", hint="ask for the bundle again")
    with eng:
        here = eng.inspect(tag)
        if here is not None and mf.normal_id(here.id) != mf.normal_id(image_id):
            say(f"{tag} here is another build of the same recipe than the bundle's; replaying in yours "
                "(remove it with 'podrepro image rm' to replay in the bundled one)")
        elif here is None:
            labels = mf.check_image_archive(archive, tag, image_id)
            say(f"loading the bundled image {tag} (digest checked)")
            eng.load_archive(archive)
            info = eng.inspect(tag)
            if info is None or mf.normal_id(info.id) != mf.normal_id(image_id):
                with contextlib.suppress(Exception):
                    eng.remove_image(tag, force=True)
                raise PodreproError(f"the loaded image is not the bundle's ({image_id[:12]})")
            from podrepro.images.sharing import record_imported
            from podrepro.paths import get_paths

            record_imported(get_paths(), tag, labels, info)
    # the tag this host computes for the same recipe (another mirror: another hash): name the image
    cfg = config.resolve({"profile": m.get("profile")}, cwd=cwd)
    if target(cfg, lookup(m["arch"]).alias, None).recipe.tag != tag and "--image" not in m["args"]:
        return ["--image", tag]
    return []


def _check_binfmt(arch: Any, cwd: Path, confirm: Confirm | None) -> None:
    from podrepro import config, workflows

    cfg = config.resolve({}, cwd=cwd)
    workflows.gate_binfmt(cfg, arch, confirm)
