"""``podrepro bundle ARCH [-o FILE] -- test|run ARGS`` and ``podrepro replay FILE``.

``bundle`` takes a snapshot of the tree (before the run: what it ran on), runs the ordinary
``podrepro test|run ARCH ARGS`` as a child (its output shown and logged, values of passed-through
environment variables redacted from the log), then writes the bundle (``bundle.manifest``): the
image as an OCI archive, the tree, the command, the host facts and the outcome.

``replay`` unpacks a bundle into a private temporary directory, rebuilds the tree (a clone of the
commit plus the diff when a repository has it, else the bundled files; or an existing tree
``--in DIR`` as it is, e.g. with a fix), loads the image after checking its digest and labels,
reruns the command the same way and compares.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro.bundle import manifest as mf
from podrepro.bundle import snapshot
from podrepro.errors import PodreproError, UsageError
from podrepro.reporting import Confirm, Notify

# options of test/run a bundle does not carry: another tree, several runs or architectures, or
# what widens the container's view of the host (a replay is someone else's tree)
REFUSED = ("--src", "--repeat", "--until-fail", "--jobs", "-j", "--junit", "--json", "--strace",
           "--host-network", "--writable-git", "--connection")
VALUED = {"--profile": "profile", "-p": "profile", "--suite": "suite", "--cpu": "cpu", "--filter": "filter",
          "-f": "filter", "--timeout-multiplier": "timeout_multiplier", "--image": "image", "--mirror": "mirror",
          "--env": "env", "-e": "env"}


def scan(args: Sequence[str]) -> dict[str, Any]:
    """The options of a test/run command line that a bundle records (up to ``--``); one that
    cannot be bundled is a UsageError."""
    found: dict[str, Any] = {"env": [], "core": False, "network": False}
    it = iter(args)
    for a in it:
        if a == "--":
            break
        name, eq, val = a.partition("=") if a.startswith("--") else (a, "", "")
        if name in REFUSED:
            raise UsageError(f"{name} cannot be bundled: a bundle is one run of one tree on one architecture, "
                             "in a container that sees no more of the host than usual", hint=f"drop {name}")
        if name in ("--core", "--network"):
            found[name[2:]] = True
        elif name in VALUED:
            v = val if eq else next(it, None)
            if v is None:
                raise UsageError(f"{name} needs a value")
            key = VALUED[name]
            found[key] = [*found["env"], v] if key == "env" else v
    if "timeout_multiplier" in found:
        try:
            found["timeout_multiplier"] = float(found["timeout_multiplier"])
        except ValueError:
            raise UsageError(f"--timeout-multiplier {found['timeout_multiplier']!r}: not a number") from None
    return found


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


def child_env() -> dict[str, str]:
    return {"PODREPRO_PROGRESS": "plain"}


def run_child(argv: list[str], cwd: Path, log: Path, *, secrets: dict[str, str], show: Notify) -> tuple[int, float]:
    """``argv`` in ``cwd``, its output (stdout and stderr) shown line by line and written to
    ``log`` with ``secrets`` redacted; (exit status, seconds). Ctrl-C reaches the child from the
    terminal (it removes its container); podrepro waits for it."""
    from podrepro.engine import process

    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = process.popen(argv, env=child_env(), cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                show(line.decode(errors="replace").rstrip("\n"))
                out.write(mf.redact(line, secrets))
            rc = proc.wait()
        except KeyboardInterrupt:
            with contextlib.suppress(KeyboardInterrupt):
                proc.wait(timeout=60)
            raise
    return rc, time.monotonic() - t0


def _parse_outcome(rc: int, log: Path) -> mf.Outcome:
    from podrepro.matrix.runner import SUMMARY

    found = list(SUMMARY.finditer(log.read_text(errors="replace")))
    if not found:
        return mf.Outcome(rc)
    m = found[-1]
    failed = tuple(t.strip() for t in (m.group(3) or "").split(",") if t.strip())
    return mf.Outcome(rc, int(m.group(1)) if m.group(1) else None, failed)


def _handler(arch: Any) -> tuple[str | None, str | None]:
    """(interpreter, flags) of the binfmt handler that runs ``arch`` here (None, None: native/none)."""
    if not arch.emulated:
        return None, None
    from podrepro.binfmt.analysis import analyze
    from podrepro.binfmt.state import read_state
    from podrepro.findings import detect_distro

    rep = analyze(read_state(), arch, detect_distro())
    if rep.entry is not None:
        return rep.entry.interpreter, rep.entry.flags
    from podrepro.binfmt.qemu import find_static_qemu

    return find_static_qemu(arch.qemu), None


@dataclass(frozen=True)
class Written:
    path: Path
    size: int
    outcome: mf.Outcome
    image: bool
    tree: bool


def bundle(arch_name: str, mode: str, args: Sequence[str], *, out: Path | None, with_image: bool, with_tree: bool,
           confirm: Confirm | None, say: Notify, show: Notify) -> Written:
    from podrepro import config, runner, workflows
    from podrepro.arches import ARCHES, lookup
    from podrepro.engine.podman import Podman
    from podrepro.images.target import target
    from podrepro.paths import get_paths

    if mode not in ("test", "run"):
        raise UsageError(f"bundle runs 'test' or 'run', not {mode!r}", hint="podrepro bundle ARCH -- test [OPTIONS]")
    arch = lookup(arch_name)
    opts = scan(args)
    cfg = config.resolve({"profile": opts.get("profile"), "suite": opts.get("suite"), "cpu": opts.get("cpu"),
                          "timeout_multiplier": opts.get("timeout_multiplier"), "mirror": opts.get("mirror")})
    t = target(cfg, arch.alias, None)
    tag = opts.get("image") or t.recipe.tag
    root, cwd = cfg.project_root, Path.cwd()
    if workflows.binfmt_mode_for(cfg, arch) == "host":
        workflows.check_binfmt(arch, confirm)
    excluded = [runner.placeholders(a, t.profile, root, 1.0)["build_dir"] for a in ARCHES]
    snap = snapshot.take(root, cwd, excluded)
    passed = mf.env_names([*cfg["env"], *opts["env"]])[1]
    literal = mf.env_names(opts["env"])[0]  # the command line's (the project's are in its tree)
    secrets = {n: os.environ[n] for n in passed if os.environ.get(n)}
    dest = out or _default_name(cwd, arch.alias, snap.commit)
    if dest.is_dir():
        raise UsageError(f"-o {dest}: is a directory")
    if not os.access(dest.parent, os.W_OK | os.X_OK):
        raise UsageError(f"-o {dest}: cannot write in {dest.parent}", hint="name a file in a directory you can write to")
    paths = get_paths()
    paths.state.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="podrepro-bundle-", dir=paths.state) as tmpd:
        tmp = Path(tmpd)
        (tmp / "result").mkdir()
        log = tmp / mf.LOG
        started = time.time()
        say(f"running podrepro {mode} {arch.alias} {' '.join(args)}".rstrip())
        rc, seconds = run_child([sys.executable, "-m", "podrepro", mode, arch.alias, *args], cwd, log,
                                secrets=secrets, show=show)
        outcome = _parse_outcome(rc, log)
        cores = []
        if opts["core"] or cfg["core"]:
            cdir = root / ".podrepro" / "cores" / arch.alias
            cores = [p for p in sorted(cdir.glob("*")) if p.is_file() and p.stat().st_mtime >= started - 1]
        eng = Podman()  # CLI calls only: no API service to stop
        image_id = eng.inspect_id_cli(tag) if eng.image_exists_cli(tag) else None
        if with_image and image_id is None:
            raise PodreproError(f"the run left no image {tag} to bundle", hint="see its output above; or --no-image")
        if with_image:
            say(f"saving {tag} as an OCI archive")
            eng.save(tag, tmp / mf.IMAGE, oci=True)
        if with_tree:
            snapshot.write_tarball(snap, tmp / mf.TREE)
        if snap.diff:
            (tmp / mf.DIFF).write_bytes(snap.diff)
        interp, flags = _handler(arch)
        man = {
            "version": mf.VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "arch": arch.alias, "mode": mode, "args": list(args),
            "filter": opts.get("filter"), "cpu": cfg["cpu"] or None, "timeout_multiplier": float(cfg["timeout_multiplier"]),
            "profile": t.profile.name,
            "env": {"literal": literal, "passed_through": passed},
            "image": {"tag": tag, "id": mf.normal_id(image_id) if image_id else None,
                      "archive": mf.IMAGE if with_image else None,
                      "recipe": t.recipe.data if not opts.get("image") else None},
            "source": {"commit": snap.commit, "subdir": snap.subdir, "name": snap.top.name,
                       "diff": mf.DIFF if snap.diff else None, "tree": mf.TREE if with_tree else None,
                       "files": len(snap.files)},
            "host": mf.host_facts(interp, flags, image_id),
            "result": {**outcome.to_json(), "seconds": round(seconds, 1), "log": mf.LOG,
                       "cores": [mf.CORES + p.name for p in cores]},
        }
        (tmp / mf.MANIFEST).write_text(json.dumps(man, indent=2) + "\n")
        part = dest.with_name(f".{dest.name}.part")
        try:
            with tarfile.open(part, "w:") as tf:
                for name in (mf.MANIFEST, mf.IMAGE, mf.DIFF, mf.TREE, mf.LOG):
                    if (tmp / name).is_file():
                        tf.add(tmp / name, arcname=name, recursive=False)
                for p in cores:
                    tf.add(p, arcname=mf.CORES + p.name, recursive=False)
            part.replace(dest)
        finally:
            part.unlink(missing_ok=True)
    return Written(dest, dest.stat().st_size, outcome, with_image, with_tree)


def _default_name(cwd: Path, alias: str, commit: str | None) -> Path:
    base = f"podrepro-bundle-{alias}-{commit[:10] if commit else 'tree'}"
    p, n = cwd / f"{base}.tar", 2
    while p.exists():
        p, n = cwd / f"{base}-{n}.tar", n + 1
    return p


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
        now = _parse_outcome(rc, log)
        then = mf.outcome_of(m)
        verdict, why = mf.compare(m["mode"], then, now)
        interp, flags = _handler(arch)
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
    if workflows.binfmt_mode_for(cfg, arch) == "host":
        workflows.check_binfmt(arch, confirm)
