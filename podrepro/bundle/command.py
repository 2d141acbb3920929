"""``podrepro bundle ARCH [-o FILE] -- test|run ARGS`` (``replay`` is in ``bundle.replay``).

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


def parse_outcome(rc: int, log: Path) -> mf.Outcome:
    from podrepro.matrix.runner import SUMMARY

    found = list(SUMMARY.finditer(log.read_text(errors="replace")))
    if not found:
        return mf.Outcome(rc)
    m = found[-1]
    failed = tuple(t.strip() for t in (m.group(3) or "").split(",") if t.strip())
    return mf.Outcome(rc, int(m.group(1)) if m.group(1) else None, failed)


def handler(arch: Any) -> tuple[str | None, str | None]:
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
    workflows.gate_binfmt(cfg, arch, confirm)
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
        outcome = parse_outcome(rc, log)
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
        interp, flags = handler(arch)
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
