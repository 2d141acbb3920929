#!/usr/bin/env python3
"""Benchmark: a matrix run against the same architectures one after the other. Not a test.

In one run, on the same machine, alternating (the host is shared and noisy):
  (s) `podrepro test arm` then `podrepro test mips`, each in a fresh copy of examples/wordsize
      (its build tree empty; the images and ccache as the runs before left them): the sum
  (m) `podrepro test arm,mips` in a fresh copy: both at once (`--jobs` defaults to the cores)
Prints the medians and m/s (target <= 0.75 on two cores or more: the architectures overlap).
Run it as the user whose podman store has the images (they are built first, outside the timing),
with the Python of podrepro's environment:

    python bench/matrix.py [--runs 3] [--arches arm,mips]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
_CMD = Path(PY).parent / "podrepro"
PODREPRO = [str(_CMD)] if _CMD.is_file() else [PY, "-m", "podrepro"]
# the example's tests fail on purpose on 32-bit targets: ctest's 8 (one arch) and 1 (a matrix)
OK_CODES = (0, 1, 8)


def fresh(tmp: Path, n: str) -> Path:
    dst = tmp / n
    shutil.copytree(REPO / "examples" / "wordsize", dst, ignore=shutil.ignore_patterns("build-podrepro-*", ".podrepro"))
    return dst


def timed(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    cp = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if cp.returncode not in OK_CODES:
        raise SystemExit(f"failed ({cp.returncode}): {' '.join(argv)}\n{cp.stderr.decode()[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--arches", default="arm,mips")
    args = ap.parse_args()
    arches = args.arches.split(",")
    sums, mats = [], []
    with tempfile.TemporaryDirectory(prefix="podrepro-bench-matrix-") as t:
        tmp = Path(t)
        for a in arches:  # images (and a first ccache) outside the timing
            timed([*PODREPRO, "test", a], fresh(tmp, f"warm-{a}"))
        for i in range(args.runs):
            sums.append(sum(timed([*PODREPRO, "test", a], fresh(tmp, f"s{i}-{a}")) for a in arches))
            mats.append(timed([*PODREPRO, "test", args.arches], fresh(tmp, f"m{i}")))
            print(f"run {i + 1}: one after the other {sums[-1]:.1f} s, matrix {mats[-1]:.1f} s", flush=True)
    s, m = statistics.median(sums), statistics.median(mats)
    print(f"(s) {' then '.join(arches)}: {s:.1f} s (median of {args.runs})")
    print(f"(m) test {args.arches}: {m:.1f} s")
    print(f"m/s = {m / s:.2f} (target <= 0.75: {'met' if m / s <= 0.75 else 'NOT met'})")


if __name__ == "__main__":
    main()
