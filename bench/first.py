#!/usr/bin/env python3
"""Benchmark: a whole first reproduction from an empty store vs the seed's recipe for a bare base. Not a test.

In one run, on the same machine:
  (a) the seed's recipe, as root: debootstrap --foreign --variant=minbase --arch=armhf, copy
      qemu-arm-static in, chroot ... --second-stage, tar (bench/images.py's step (a))
  (f) as the rootless --user, with an empty podman store of its own (XDG_DATA_HOME,
      XDG_RUNTIME_DIR) and an empty podrepro cache (no .debs): `podrepro test arm` in a fresh copy
      of examples/wordsize, the README's first reproduction: the arm base, the generic profile's
      packages, the build and the tests, until the example's two failures are reported
  (f0) with --baseline-python: (f) again with another podrepro (an earlier version), same run
  (h) the same as (f) with `--cross --native-harness`: an amd64 base and the cross image instead
      of the arm images; the build natively, ctest natively, the test programs under qemu
Prints them, f/a (target <= 1.0), h/a, f/f0, and the parts from the progress lines. With
--runs N, (a) and (f) alternate N times and the ratio is the median of the runs' f/a (the disk
and the mirror make single runs vary by several seconds).

    sudo python3 bench/first.py --user podrepro-ci --python /var/tmp/podrepro-ci/venv/bin/python
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

BUILT = re.compile(r"built localhost/podrepro/([\w-]+):(?:arm|amd64)-\w+ in (\d+)s")


def main() -> None:
    from images import seed_recipe  # bench/images.py

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--user", required=True, help="unprivileged user with rootless podman set up")
    ap.add_argument("--python", default=sys.executable, help="python with podrepro installed, readable by --user")
    ap.add_argument("--baseline-python", help="another podrepro's python: (f0), the same reproduction with it")
    ap.add_argument("--runs", type=int, default=1,
                    help="(a) then (f), this many times in turn; the ratio is the median of the runs' f/a")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: step (a) is the seed's root-only recipe")
    from podrepro.engine.bootstrap import host_debian_mirror

    pw = pwd.getpwnam(args.user)
    pairs = []
    for run in range(1, args.runs + 1):
        a = seed_recipe(host_debian_mirror())
        print(f"run {run}: (a) seed recipe, root, armhf minbase: {a:.1f} s", flush=True)
        f = first_reproduction(args.user, pw, args.python)
        print(f"run {run}: f/a = {f / a:.2f}", flush=True)
        pairs.append((a, f))
    ratio = statistics.median(f / a for a, f in pairs)
    a = statistics.median(a for a, _ in pairs)
    f = statistics.median(f for _, f in pairs)
    print(f"median of {len(pairs)} run(s): (a) {a:.1f} s, (f) {f:.1f} s, f/a = {ratio:.2f} "
          f"(target <= 1.0: {'met' if ratio <= 1.0 else 'NOT met'})", flush=True)
    h = first_reproduction(args.user, pw, args.python, "(h) podrepro", ("--cross", "--native-harness"))
    print(f"h/a = {h / a:.2f} (the hybrid reproduction: built natively, the tests' harness native, the test "
          "programs emulated)", flush=True)
    if args.baseline_python:
        f0 = first_reproduction(args.user, pw, args.baseline_python, label="(f0) the same with the baseline podrepro")
        print(f"f/f0 = {f / f0:.2f}, f0/a = {f0 / a:.2f}")


def first_reproduction(user: str, pw: pwd.struct_passwd, python: str, label: str = "(f) podrepro",
                       extra: tuple[str, ...] = ()) -> float:
    """`podrepro test arm` in a fresh copy of the example, with an empty store and cache of its own."""
    root = Path(tempfile.mkdtemp(prefix="bench-first-", dir="/var/tmp"))
    proj = root / "wordsize"
    shutil.copytree(REPO / "examples" / "wordsize", proj, ignore=shutil.ignore_patterns("build-podrepro-*", "build"))
    (root / "config" / "containers").mkdir(parents=True)
    for conf in Path(pw.pw_dir, ".config", "containers").glob("*.conf"):
        shutil.copy(conf, root / "config" / "containers" / conf.name)  # runc, overlay: the user's own settings
    (root / "data").mkdir()
    (root / "run").mkdir(mode=0o700)
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(root)], check=True)
    store = [f"XDG_DATA_HOME={root}/data", f"XDG_CONFIG_HOME={root}/config", f"XDG_RUNTIME_DIR={root}/run"]
    env = ["env", "-i", *store, f"PODREPRO_CACHE_DIR={root}/cache", f"PODREPRO_STATE_DIR={root}/state",
           "PODREPRO_PROGRESS=plain", f"HOME={pw.pw_dir}", "LANG=C.UTF-8", f"PATH={Path(python).parent}:/usr/bin:/bin"]
    try:
        empty = subprocess.run(["runuser", "-u", user, "--", *env, "podman", "images", "-q"],
                               capture_output=True, text=True)
        if empty.returncode != 0 or empty.stdout.strip():
            raise SystemExit(f"the store is not empty: {empty.stdout}{empty.stderr}")
        t0 = time.perf_counter()
        cp = subprocess.run(["runuser", "-u", user, "--", *env, python, "-m", "podrepro", "test", "arm", *extra],
                            cwd=proj, capture_output=True, text=True)
        f = time.perf_counter() - t0
        tally = [ln for ln in cp.stderr.splitlines() if "tests ran on arm" in ln]
        if cp.returncode != 8 or not tally:
            raise SystemExit(f"the reproduction did not report the example's failures (exit {cp.returncode}):\n"
                             f"{(cp.stdout + cp.stderr)[-3000:]}")
        # "built TAG in Ns" counts from the start of that image's ensure, which includes its base
        done = [(name, int(secs)) for name, secs in BUILT.findall(cp.stderr)]
        parts, before = [], 0
        for name, secs in done:
            parts.append(f"{name} {secs - before} s")
            before = secs
        print(f"{label} test arm {' '.join(extra)} from an empty store: {f:.1f} s ({', '.join(parts)}, build + tests + the rest "
              f"{f - before:.0f} s); {tally[-1].strip()}", flush=True)
        return f
    finally:
        subprocess.run(["runuser", "-u", user, "--", *env, "podman", "system", "reset", "--force"],
                       capture_output=True)
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((root / "run" / "libpod" / "tmp" / "pause.pid").read_text()), signal.SIGKILL)
        subprocess.run(["runuser", "-u", user, "--", *env, "podman", "unshare", "rm", "-rf", str(root / "cache")],
                       capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)])

if __name__ == "__main__":
    main()
