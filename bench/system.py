#!/usr/bin/env python3
"""Benchmark: ``run --system`` (a full-system VM) against ``run`` (qemu-user), same image. Not a test.

In one run, alternating, for each architecture (the base profile's image, cached, and its
kernel fetched before the timing):
  (u) ``podrepro run ARCH --profile base -- CMD``           qemu-user in a container
  (v) ``podrepro run --system ARCH --profile base -- CMD``  a qemu-system VM with Debian's kernel
for CMD = ``true`` (what starting costs) and a shell loop of 20,000 iterations (what running
costs). Prints the medians and v/u. Run it as the user whose store has the images, with the
Python of podrepro's environment:

    python bench/system.py [--runs 3] [--arches arm,mips]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
_CMD = Path(PY).parent / "podrepro"
PODREPRO = [str(_CMD)] if _CMD.is_file() else [PY, "-m", "podrepro"]
LOOP = 'i=0; while [ "$i" -lt 20000 ]; do i=$((i+1)); done; echo "$i"'


def timed(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    cp = subprocess.run(argv, cwd=cwd, capture_output=True)
    if cp.returncode != 0:
        raise SystemExit(f"failed ({cp.returncode}): {' '.join(argv)}\n{cp.stderr.decode()[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--arches", default="arm,mips")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="podrepro-bench-system-") as t:
        cwd = Path(t)
        for arch in args.arches.split(","):
            user = [*PODREPRO, "run", arch, "--profile", "base", "--"]
            system = [*PODREPRO, "run", "--system", arch, "--profile", "base", "--"]
            timed([*system, "true"], cwd)  # the image and the kernel, outside the timing
            timed([*user, "true"], cwd)
            for label, cmd in (("true", ["true"]), ("20,000-iteration shell loop", ["sh", "-c", LOOP])):
                us, vs = [], []
                for _ in range(args.runs):
                    us.append(timed([*user, *cmd], cwd))
                    vs.append(timed([*system, *cmd], cwd))
                u, v = statistics.median(us), statistics.median(vs)
                print(f"{arch} {label}: (u) run {u:.1f} s, (v) run --system {v:.1f} s, v/u = {v / u:.1f}", flush=True)


if __name__ == "__main__":
    main()
