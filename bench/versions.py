#!/usr/bin/env python3
"""Benchmark: two installed versions of podrepro on the hot path, alternating. Not a test.

    python bench/versions.py BEFORE/bin/podrepro AFTER/bin/podrepro [--rounds 40] [--dir PROJECT]

Times `podrepro run arm -- true` (from a saved run plan, as a user's second run is) for each
version in turn, in the same loop, and prints both medians and after/before. Used for a change
that must not slow the hot path down (issue 13's refactor). Run it as the user whose podman
store has the arm image.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path


def timed(cmd: str, cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([cmd, "run", "arm", "--", "true"], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1] / "examples" / "wordsize")
    a = ap.parse_args()
    for cmd in (a.before, a.after, a.before, a.after):  # each saves its plan, then uses it
        timed(cmd, a.dir)
    before, after = [], []
    for _ in range(a.rounds):
        before.append(timed(a.before, a.dir))
        after.append(timed(a.after, a.dir))
    mb, ma = statistics.median(before), statistics.median(after)
    print(f"podrepro run arm -- true: before {mb:.4f} s, after {ma:.4f} s, after/before {ma / mb:.3f} "
          f"({a.rounds} alternating rounds)")


if __name__ == "__main__":
    main()
