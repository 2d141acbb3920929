#!/usr/bin/env python3
"""Benchmark: podrepro's overhead on a container run, start-up time, ccache. Not a test.

In one run, on the same machine, alternating to cancel out drift on a shared, noisy host:
  (1) `podrepro run arm -- true`  vs  `podman run --rm --platform linux/arm/v7 --pull=never
      --network none IMAGE true` on the same cached image           target: median ratio <= 1.10
  (2) `podrepro --help`  vs  `python -c 'import typer'`              target: <= 2x
  (3) the example project's second build with ccache vs its first   target: <= 0.3x
      first: `podrepro build arm` in a fresh copy, ccache empty (configure + every compile);
      second: `podrepro build arm` again after `cmake --build DIR --target clean` removed every
      object from the kept per-arch build tree, so every compile runs again and only ccache can
      answer it. For reference it also times the same clean rebuild with ccache off, and a build
      from an empty build tree with a warm ccache (which re-runs CMake's emulated configure).
Prints a table of medians and ratios. Run it as the user whose podman store has the images, with
the Python of the environment podrepro is installed in (the `podrepro` command next to it is
what gets timed, as a user would run it):
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
_CMD = Path(PY).parent / "podrepro"
PODREPRO = [str(_CMD)] if _CMD.is_file() else [PY, "-m", "podrepro"]


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
    cp = subprocess.run([*PODREPRO, "image", "build", arch, "--json"], cwd=project,
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
    # the first (warm-up) run saves the run plan that the timed runs use
    pr, pm = alternate([*PODREPRO, "run", "arm", "--", "true"],
                       ["podman", "run", "--rm", "--platform", "linux/arm/v7", "--pull=never", "--network", "none",
                        tag, "true"], args.runs, cwd=project)
    rows.append(("podrepro run arm -- true / podman run", f"{pr:.3f}s", f"{pm:.3f}s", f"{pr / pm:.2f}", "<= 1.10"))

    ph, pt = alternate([*PODREPRO, "--help"], [PY, "-c", "import typer"], args.runs)
    rows.append(("podrepro --help / import typer", f"{ph:.3f}s", f"{pt:.3f}s", f"{ph / pt:.2f}", "<= 2"))

    if not args.skip_ccache:
        with tempfile.TemporaryDirectory() as d:
            proj = Path(d) / "wordsize"
            shutil.copytree(project, proj)
            cache = Path(d) / "cache"
            env = dict(os.environ, PODREPRO_CACHE_DIR=str(cache))
            # the images live in podman's store; only ccache starts empty in this private cache dir
            build = [*PODREPRO, "build", "arm"]
            clean = [*PODREPRO, "run", "arm", "--", "cmake", "--build", "build-podrepro-arm", "--target", "clean"]
            first = timed(build, cwd=proj, env=env)
            timed(clean, cwd=proj, env=env)
            second = timed(build, cwd=proj, env=env)
            timed(clean, cwd=proj, env=env)
            nocache = timed([*PODREPRO, "build", "-e", "CCACHE_DISABLE=1", "arm"], cwd=proj, env=env)
            shutil.rmtree(proj / "build-podrepro-arm")
            fresh = timed(build, cwd=proj, env=env)
            rows.append(("example rebuild, warm ccache / first build", f"{second:.1f}s", f"{first:.1f}s",
                         f"{second / first:.2f}", "<= 0.3"))
            rows.append(("  (same rebuild, ccache off / first build)", f"{nocache:.1f}s", f"{first:.1f}s",
                         f"{nocache / first:.2f}", ""))
            rows.append(("  (empty build tree, warm ccache / first)", f"{fresh:.1f}s", f"{first:.1f}s",
                         f"{fresh / first:.2f}", ""))

    w = [max(len(r[i]) for r in [*rows, ("what", "measured", "baseline", "ratio", "target")]) for i in range(5)]
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(("what", "measured", "baseline", "ratio", "target"))))
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))


if __name__ == "__main__":
    main()
