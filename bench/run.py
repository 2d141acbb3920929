#!/usr/bin/env python3
"""Benchmark: podrepro's overhead on a container run, and start-up time. Not a test.

In one run, on the same machine, alternating to cancel out drift on a shared, noisy host:
  (1) `podrepro run arm -- true`  vs  `podman run --rm --platform linux/arm/v7 --pull=never
      --network none IMAGE true` on the same cached image           target: median ratio <= 1.10
  (2) `podrepro --help`  vs  `python -c 'import typer'`              target: <= 2x
  (3) the example project's second build with ccache vs its first   target: <= 0.3x
Prints a table of medians and ratios. Run it as the user whose podman store has the images:
    python bench/run.py [--runs 10] [--skip-ccache]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def timed(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    cp = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if cp.returncode != 0:
        raise SystemExit(f"benchmark command failed ({cp.returncode}): {' '.join(argv)}\n{cp.stderr.decode()[-2000:]}")
    return dt


def alternate(a: list[str], b: list[str], runs: int, cwd: Path | None = None) -> tuple[float, float]:
    ta, tb = [], []
    timed(a, cwd)
    timed(b, cwd)  # warm both
    for _ in range(runs):
        ta.append(timed(a, cwd))
        tb.append(timed(b, cwd))
    return statistics.median(ta), statistics.median(tb)


def image_tag(project: Path, arch: str) -> str:
    cp = subprocess.run([PY, "-m", "podrepro", "image", "build", arch, "--json"], cwd=project,
                        capture_output=True, text=True, check=True)
    import json

    return str(json.loads(cp.stdout)["tag"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--skip-ccache", action="store_true")
    args = ap.parse_args()
    project = REPO / "examples" / "wordsize"
    rows: list[tuple[str, str, str, str, str]] = []

    tag = image_tag(project, "arm")
    pr, pm = alternate([PY, "-m", "podrepro", "run", "arm", "--", "true"],
                       ["podman", "run", "--rm", "--platform", "linux/arm/v7", "--pull=never", "--network", "none",
                        tag, "true"], args.runs, cwd=project)
    rows.append(("podrepro run arm -- true / podman run", f"{pr:.3f}s", f"{pm:.3f}s", f"{pr / pm:.2f}", "<= 1.10"))

    ph, pt = alternate([PY, "-m", "podrepro", "--help"], [PY, "-c", "import typer"], args.runs)
    rows.append(("podrepro --help / import typer", f"{ph:.3f}s", f"{pt:.3f}s", f"{ph / pt:.2f}", "<= 2"))

    if not args.skip_ccache:
        with tempfile.TemporaryDirectory() as d:
            proj = Path(d) / "wordsize"
            shutil.copytree(project, proj)
            cache = Path(d) / "cache"
            env = dict(os.environ, PODREPRO_CACHE_DIR=str(cache))
            # the images live in podman's store; only ccache starts empty in this private cache dir
            first = timed([PY, "-m", "podrepro", "build", "arm"], cwd=proj, env=env)
            shutil.rmtree(proj / "build-podrepro-arm")
            second = timed([PY, "-m", "podrepro", "build", "arm"], cwd=proj, env=env)
            rows.append(("example build, warm ccache / cold", f"{second:.1f}s", f"{first:.1f}s",
                         f"{second / first:.2f}", "<= 0.3"))

    w = [max(len(r[i]) for r in [*rows, ("what", "measured", "baseline", "ratio", "target")]) for i in range(5)]
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(("what", "measured", "baseline", "ratio", "target"))))
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))


if __name__ == "__main__":
    main()
