#!/usr/bin/env python3
"""Benchmark: building a foreign-arch base image, podrepro vs the seed's root recipe. Not a test.

In one run, on the same machine (run as root; podrepro's steps run rootless as --user):
  (a) the seed's recipe, as root: debootstrap --foreign --variant=minbase --arch=armhf, copy
      qemu-arm-static in, chroot ... /debootstrap/debootstrap --second-stage, tar
  (b) `podrepro image build arm --profile base --rebuild`, rootless, cold (empty .deb cache), with
      the default installer (host-dpkg: the host's dpkg unpacks, maintainer scripts run emulated)
  (b') the same with `installer = "chroot"` (mmdebstrap's own way), cold, for reference
  (c) a base-recipe change with the .deb cache warm: variant minbase -> buildd (the base gains
      build-essential), seeded from (b)'s base: only the missing packages are installed
  (c-) the same buildd recipe from scratch (--rebuild: no seed), .deb cache warm, for reference
  (c'') a base-recipe change that keeps the package set (variant -> required), seeded
  (c') a profile-layer recipe change (edited Containerfile) on top of the cached base
  (d) a cache hit: `podrepro image build arm --profile base` when the image exists
Prints medians and the ratios b/a (target <= 0.8), c/b (target <= 0.5) and d (target <= 1 s).

    sudo python3 bench/images.py --user podrepro-ci --python /var/tmp/podrepro-ci/venv/bin/python [--runs 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run(argv: list[str], **kw: object) -> float:
    return run_out(argv, **kw)[0]


def run_out(argv: list[str], **kw: object) -> tuple[float, str]:
    t0 = time.perf_counter()
    cp = subprocess.run(argv, capture_output=True, **kw)  # type: ignore[call-overload]
    dt = time.perf_counter() - t0
    if cp.returncode != 0:
        raise SystemExit(f"failed ({cp.returncode}): {' '.join(argv)}\n{cp.stderr.decode(errors='replace')[-3000:]}")
    return dt, cp.stdout.decode(errors="replace")


def seed_recipe(mirror: str | None) -> float:
    d = Path(tempfile.mkdtemp(prefix="bench-seed-"))
    try:
        t0 = time.perf_counter()
        argv = ["debootstrap", "--foreign", "--variant=minbase", "--arch=armhf", "bookworm", str(d / "root")]
        if mirror:
            argv.append(mirror)
        run(argv)
        shutil.copy2(shutil.which("qemu-arm-static") or "/usr/bin/qemu-arm-static", d / "root/usr/bin/")
        run(["chroot", str(d / "root"), "/debootstrap/debootstrap", "--second-stage"])
        run(["tar", "-C", str(d / "root"), "-cf", str(d / "rootfs.tar"), "."])
        return time.perf_counter() - t0
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(d)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--user", required=True, help="unprivileged user with rootless podman set up")
    ap.add_argument("--python", default=sys.executable, help="python with podrepro installed, readable by --user")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: step (a) is the seed's root-only recipe")
    from podrepro.engine.bootstrap import host_debian_mirror

    mirror = host_debian_mirror()
    pw = pwd.getpwnam(args.user)
    work = Path(tempfile.mkdtemp(prefix="bench-images-"))
    os.chown(work, pw.pw_uid, pw.pw_gid)
    base_env = ["env", f"HOME={pw.pw_dir}", f"XDG_RUNTIME_DIR=/run/user/{pw.pw_uid}", "PODREPRO_PROGRESS=none",
                f"PATH={Path(args.python).parent}:/usr/bin:/bin"]

    def podrepro(cache: Path, *a: str, cwd: Path | None = None, env: tuple[str, ...] = ()) -> float:
        return podrepro_out(cache, *a, cwd=cwd, env=env)[0]

    def podrepro_out(cache: Path, *a: str, cwd: Path | None = None, env: tuple[str, ...] = ()) -> tuple[float, str]:
        return run_out(["runuser", "-u", args.user, "--", *base_env, f"PODREPRO_CACHE_DIR={cache}", *env,
                        args.python, "-m", "podrepro", *a], cwd=cwd or REPO)

    def seeded(cache: Path, env: tuple[str, ...]) -> float:
        """A base build that must start from an earlier base (else it does not measure (c))."""
        with contextlib.suppress(SystemExit):  # an image of this recipe left by an earlier run
            podrepro(cache, "image", "rm", "arm", "--profile", "base", env=env)
        dt, out = podrepro_out(cache, "image", "build", "arm", "--profile", "base", "--json", env=env)
        if not json.loads(out).get("seeded_from"):
            raise SystemExit(f"{' '.join(env)}: the build was not seeded from an earlier base")
        return dt

    def fresh_cache(name: str) -> Path:
        p = work / name
        p.mkdir()
        os.chown(p, pw.pw_uid, pw.pw_gid)
        return p

    a, b, b2, c, c0, c3, c2, d = [], [], [], [], [], [], [], []
    buildd, required = ("PODREPRO_VARIANT=buildd",), ("PODREPRO_VARIANT=required",)
    try:
        for i in range(args.runs):
            a.append(seed_recipe(mirror))
            b2.append(podrepro(fresh_cache(f"chroot-{i}"), "image", "build", "arm", "--profile", "base", "--rebuild",
                               env=("PODREPRO_INSTALLER=chroot",)))
            cold = fresh_cache(f"cold-{i}")
            b.append(podrepro(cold, "image", "build", "arm", "--profile", "base", "--rebuild"))
            # from scratch first: also puts build-essential's .debs in the package cache
            c0.append(podrepro(cold, "image", "build", "arm", "--profile", "base", "--rebuild", env=buildd))
            c.append(seeded(cold, buildd))
            c3.append(seeded(cold, required))
            for env in (buildd, required):
                podrepro(cold, "image", "rm", "arm", "--profile", "base", env=env)
            proj = work / f"proj-{i}"
            proj.mkdir()
            (proj / "x.Containerfile").write_text(f"ARG BASE\nFROM ${{BASE}}\nRUN echo bench-{time.time()} > /x\n")
            (proj / "podrepro.toml").write_text('[profile.x]\ncontainerfile = "x.Containerfile"\n')
            subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(proj)], check=True)
            c2.append(podrepro(cold, "image", "build", "arm", "--profile", "x", cwd=proj))
            for _ in range(5):
                d.append(podrepro(cold, "image", "build", "arm", "--profile", "base"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ma, mb, mb2, mc, mc0, mc3, mc2, md = (statistics.median(x) for x in (a, b, b2, c, c0, c3, c2, d))
    rows = [
        ("(a) seed: debootstrap --foreign + second stage, root", f"{ma:.1f}s", "", ""),
        ("(b) podrepro image build arm (base), rootless, cold", f"{mb:.1f}s", f"b/a = {mb / ma:.2f}", "<= 0.8"),
        ("(b') the same, installer = chroot", f"{mb2:.1f}s", f"b'/a = {mb2 / ma:.2f}", ""),
        ("(c) recipe change minbase -> buildd, .deb cache warm (seeded)", f"{mc:.1f}s", f"c/b = {mc / mb:.2f}",
         "<= 0.5"),
        ("(c-) the same buildd recipe from scratch (--rebuild)", f"{mc0:.1f}s", f"c-/b = {mc0 / mb:.2f}", ""),
        ("(c'') recipe change, same packages (variant required, seeded)", f"{mc3:.1f}s", f"c''/b = {mc3 / mb:.2f}", ""),
        ("(c') profile-layer change on the cached base", f"{mc2:.1f}s", f"c'/b = {mc2 / mb:.2f}", ""),
        ("(d) cache hit", f"{md:.2f}s", "", "<= 1 s"),
    ]
    w = [max(len(r[k]) for r in rows) for k in range(4)]
    print(f"runs per step: {args.runs} (cache hit: {len(d)})")
    for r in rows:
        print("  ".join(x.ljust(w[k]) for k, x in enumerate(r)))


if __name__ == "__main__":
    main()
