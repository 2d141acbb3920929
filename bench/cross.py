#!/usr/bin/env python3
"""Benchmark: an emulated build vs a hybrid (`--cross`) build of a real upstream project. Not a test.

In one run, on the same machine, as the rootless --user (the images are built first, untimed):
  - the project's source comes from Debian's source packages (`apt-get source PACKAGE` in the
    amd64 cross image, from the mirror the machine's apt uses; nothing is committed);
  - (e) `podrepro build arm --emulated` in a fresh copy of the tree (ccache off), then
    `podrepro test arm --no-build`;
  - (h) `podrepro build arm --cross` in another fresh copy (ccache off), then the same tests,
    emulated.
  - (n) the hybrid tree's tests again with `--native-harness` (the test driver natively in the
    cross image, only the target's binaries under qemu).
Prints the medians, h/e (target <= 0.2), the test-run times (n against the fully emulated run of
the same tree) and whether all three test runs ended the same way.

    sudo python3 bench/cross.py --user podrepro-ci --python /var/tmp/podrepro-ci/venv/bin/python [--package json-c] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TALLY = re.compile(r"podrepro: (.* ran on \S+.*)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--user", required=True, help="unprivileged user with rootless podman set up")
    ap.add_argument("--python", default=sys.executable, help="python with podrepro installed, readable by --user")
    ap.add_argument("--package", default="json-c", help="Debian source package (a CMake project with ctest tests)")
    ap.add_argument("--arch", default="arm")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (the steps run as --user through runuser)")
    pw = pwd.getpwnam(args.user)
    work = Path(tempfile.mkdtemp(prefix="bench-cross-", dir="/var/tmp"))
    os.chown(work, pw.pw_uid, pw.pw_gid)
    env = ["env", "-i", f"HOME={pw.pw_dir}", f"USER={args.user}", f"XDG_RUNTIME_DIR=/run/user/{pw.pw_uid}",
           "PODREPRO_PROGRESS=none", "LANG=C.UTF-8", f"PATH={Path(args.python).parent}:/usr/bin:/bin"]

    def user(argv: list[str], cwd: Path, check: bool = True) -> tuple[float, int, str]:
        t0 = time.perf_counter()
        cp = subprocess.run(["runuser", "-u", args.user, "--", *env, *argv], cwd=cwd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if check and cp.returncode != 0:
            raise SystemExit(f"failed ({cp.returncode}): {' '.join(argv)}\n{(cp.stdout + cp.stderr)[-3000:]}")
        return dt, cp.returncode, cp.stdout + cp.stderr

    def podrepro(*a: str, cwd: Path = REPO, check: bool = True) -> tuple[float, int, str]:
        return user([args.python, "-m", "podrepro", *a], cwd, check)

    try:
        podrepro("image", "build", args.arch)
        _, _, out = podrepro("image", "build", args.arch, "--cross", "--json")
        cross_image = json.loads(out)["tag"]
        src = work / "src"
        src.mkdir()
        os.chown(src, pw.pw_uid, pw.pw_gid)
        fetch = ("sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/src.list"
                 " && apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -q install -y"
                 " --no-install-recommends dpkg-dev >/dev/null && apt-get -q source --only-source \"$0\"")
        user(["podman", "run", "--rm", "--user", "0", "-v", f"{src}:/src", "-w", "/src", cross_image,
              "sh", "-c", fetch, args.package], work)
        (tree,) = [p for p in src.iterdir() if p.is_dir()]
        print(f"{args.package}: {tree.name} (apt-get source), {args.arch}", flush=True)
        times: dict[str, list[float]] = {"emulated": [], "cross": []}
        tests: dict[str, list[tuple[float, int, str]]] = {"emulated": [], "cross": [], "native-harness": []}
        for i in range(args.runs):
            for mode in ("emulated", "cross"):
                copy = work / f"{mode}-{i}" / tree.name
                copy.parent.mkdir()
                os.chown(copy.parent, pw.pw_uid, pw.pw_gid)
                user(["cp", "-a", str(tree), str(copy)], work)
                dt, _, _ = podrepro("build", args.arch, f"--{mode}", "-e", "CCACHE_DISABLE=1", cwd=copy)
                times[mode].append(dt)
                tdt, rc, out = podrepro("test", args.arch, "--no-build", cwd=copy, check=False)
                tally = TALLY.findall(out)
                tests[mode].append((tdt, rc, tally[-1] if tally else "(no tally)"))
                print(f"  run {i + 1}: {mode:8} build {dt:7.1f} s, tests {tdt:6.1f} s, exit {rc}: "
                      f"{tally[-1] if tally else '(no tally)'}", flush=True)
                if mode == "cross":  # the same tests, the harness natively in the cross image
                    ndt, nrc, nout = podrepro("test", args.arch, "--no-build", "--native-harness", cwd=copy, check=False)
                    ntally = TALLY.findall(nout)
                    tests["native-harness"].append((ndt, nrc, ntally[-1] if ntally else "(no tally)"))
                    print(f"  run {i + 1}: native-harness tests {ndt:6.1f} s, exit {nrc}: "
                          f"{ntally[-1] if ntally else '(no tally)'}", flush=True)
        e, h = statistics.median(times["emulated"]), statistics.median(times["cross"])
        te = statistics.median(t[0] for t in tests["emulated"])
        th = statistics.median(t[0] for t in tests["cross"])
        tn = statistics.median(t[0] for t in tests["native-harness"])
        outcomes = {m: {(t[1], t[2]) for t in tests[m]} for m in tests}
        same = outcomes["emulated"] == outcomes["cross"] == outcomes["native-harness"]
        print(f"(e) emulated build {e:.1f} s, (h) hybrid build {h:.1f} s: h/e = {h / e:.3f} (target <= 0.2: "
              f"{'met' if h / e <= 0.2 else 'NOT met'})")
        print(f"tests after each: emulated tree {te:.1f} s, hybrid tree {th:.1f} s; native harness (hybrid tree) "
              f"{tn:.1f} s: n/h = {tn / th:.3f}; {'the same outcome' if same else 'DIFFERENT outcomes'}: {outcomes}")
    finally:
        subprocess.run(["runuser", "-u", args.user, "--", *env, "podman", "unshare", "rm", "-rf", str(work)],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
