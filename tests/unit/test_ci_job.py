"""scripts/ci-job.sh, the CI recipes' step, with a stand-in podrepro that records its calls: what
the job runs, in what order, with the image cache between two jobs. (The commands themselves,
`image export`/`import` and `test`, have their own e2e tests against real podman.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ci-job.sh"

FAKE = r"""#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$1" in
  doctor) exit "${FAKE_DOCTOR_RC:-0}" ;;
  test) echo "podrepro: 3 tests ran on $2, 2 failed: checksum, y2038" >&2; exit 8 ;;
  image)
    case "$2" in
      build) echo "{\"tag\": \"t\", \"built\": ${FAKE_BUILT:-false}}" ;;
      export) echo image > "$5" ;;
      import) exit "${FAKE_IMPORT_RC:-0}" ;;
    esac ;;
esac
exit 0
"""


def job(tmp_path: Path, *args: str, **env: str) -> tuple[int, list[str]]:
    fake = tmp_path / "podrepro"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    log = tmp_path / "calls"
    log.unlink(missing_ok=True)
    cp = subprocess.run(["bash", str(SCRIPT), "--no-setup", *args], capture_output=True, text=True, timeout=30,
                        env={"PATH": os.environ["PATH"], "PODREPRO": str(fake), "FAKE_LOG": str(log), **env})
    calls = log.read_text().splitlines() if log.exists() else []
    return cp.returncode, calls


def test_the_tests_exit_code_is_the_jobs(tmp_path: Path) -> None:
    assert job(tmp_path, "arm", "--", "--filter", "wire") == (8, ["doctor arm", "image build arm --json",
                                                                  "test arm --filter wire"])


def test_a_missing_handler_is_registered_without_asking(tmp_path: Path) -> None:
    rc, calls = job(tmp_path, "mips", FAKE_DOCTOR_RC="1")
    assert rc == 8 and calls == ["doctor mips", "binfmt register mips --yes", "image build mips --json", "test mips"]


def test_the_image_cache_between_two_jobs(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    export = f"image export arm -o {cache}/arm.tar"
    rc, first = job(tmp_path, "--image-cache", str(cache), "arm", FAKE_BUILT="true")
    assert rc == 8 and first == ["doctor arm", "image build arm --json", "test arm", export]
    rc, second = job(tmp_path, "--image-cache", str(cache), "arm")
    assert rc == 8 and second == ["doctor arm", f"image import {cache}/arm.tar", "image build arm --json", "test arm"]
    # an archive of another recipe (the image had to be built anyway) is replaced
    rc, third = job(tmp_path, "--image-cache", str(cache), "arm", FAKE_BUILT="true")
    assert rc == 8 and third[-1] == export
    # a refused archive is dropped and written afresh
    rc, fourth = job(tmp_path, "--image-cache", str(cache), "arm", FAKE_IMPORT_RC="2")
    assert rc == 8 and fourth == ["doctor arm", f"image import {cache}/arm.tar", "image build arm --json", "test arm",
                                  export]


def test_no_arch_is_a_usage_error(tmp_path: Path) -> None:
    assert job(tmp_path)[0] == 2
