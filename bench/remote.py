#!/usr/bin/env python3
"""Benchmark: getting an image and a tree to a remote podman engine, and a run there. Not a test.

In one run, against one ``podman system connection`` (the image removed there before each
transfer), alternating:
  (s) ``podman save | podman --connection NAME load``: a stream (what podrepro does)
  (c) ``podman image scp TAG NAME::``: podman's own transfer
  (t) ``podrepro test arm`` here vs ``podrepro test arm --connection NAME`` in fresh copies of
      examples/wordsize (the image already there): what a remote run costs over a local one
      (the sync up, the engine through ssh, the build directory back)
Prints the medians and c/s, remote/local. Run it as the user who has the connection and the
image, with the Python of podrepro's environment:

    python bench/remote.py --connection peer [--image TAG] [--runs 3]
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


def sh(cmd: str, *, may_fail: bool = False) -> float | None:
    t0 = time.perf_counter()
    cp = subprocess.run(["sh", "-c", cmd], capture_output=True)
    if cp.returncode != 0:
        if may_fail:
            print(f"(c) failed: {cmd}: {cp.stderr.decode().strip().splitlines()[-1]}", flush=True)
            return None
        raise SystemExit(f"failed: {cmd}\n{cp.stderr.decode()[-2000:]}")
    return time.perf_counter() - t0


def timed(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    cp = subprocess.run(argv, cwd=cwd, capture_output=True)
    if cp.returncode not in (0, 8):  # 8: the example's tests fail on arm on purpose
        raise SystemExit(f"failed ({cp.returncode}): {' '.join(argv)}\n{cp.stderr.decode()[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connection", required=True)
    ap.add_argument("--image", default=None, help="default: the generic arm image of this podrepro")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    c = args.connection
    tag = args.image or subprocess.run(
        [*PODREPRO, "image", "build", "arm"], capture_output=True, text=True, check=True).stdout.split()[0]
    size = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True,
                          text=True, check=True).stdout.strip()
    rm = f"podman --connection {c} rmi -f {tag} >/dev/null 2>&1; true"
    streams: list[float] = []
    scps: list[float] = []
    local: list[float] = []
    remote: list[float] = []
    scp_ok = True
    with tempfile.TemporaryDirectory(prefix="podrepro-bench-remote-") as t:
        for i in range(args.runs):
            sh(rm)
            streams.append(sh(f"podman save --format docker-archive {tag} | podman --connection {c} load -q") or 0.0)
            if scp_ok:
                sh(rm)
                got = sh(f"podman image scp {tag} {c}::", may_fail=True)
                scp_ok = got is not None
                if got is not None:
                    scps.append(got)
                else:  # the stream puts it back for the runs below
                    sh(f"podman save --format docker-archive {tag} | podman --connection {c} load -q")
            for name, into, extra in (("l", local, []), ("r", remote, ["--connection", c])):
                proj = Path(t) / f"{name}{i}"
                shutil.copytree(REPO / "examples" / "wordsize", proj,
                                ignore=shutil.ignore_patterns("build-podrepro-*", ".podrepro"))
                into.append(timed([*PODREPRO, "test", "arm", *extra], proj))
            print(f"run {i + 1}: stream {streams[-1]:.1f} s, test here {local[-1]:.1f} s, there {remote[-1]:.1f} s",
                  flush=True)
    s, lo, re_ = (statistics.median(x) for x in (streams, local, remote))
    print(f"image {tag}: {int(size) / 1e6:.0f} MB")
    print(f"(s) podman save | podman --connection {c} load: {s:.1f} s (median of {args.runs})")
    if scps:
        sc = statistics.median(scps)
        print(f"(c) podman image scp: {sc:.1f} s   c/s = {sc / s:.2f}")
    print(f"(t) podrepro test arm here {lo:.1f} s, --connection {c} {re_:.1f} s   remote/local = {re_ / lo:.2f}")


if __name__ == "__main__":
    main()
