"""The probe: exec a tiny static binary of an architecture on the host, the end-to-end proof
that its binfmt_misc handler works (``elfprobe`` builds it)."""

from __future__ import annotations

import os
import subprocess

from podrepro.arches import Arch
from podrepro.doctor.env import DoctorEnv
from podrepro.findings import Finding

PROBE_TIMEOUT = 30.0


def run_probe(env: DoctorEnv, arch: Arch) -> tuple[str, Finding]:
    """Exec a tiny static binary of ``arch`` on the host: the end-to-end proof a handler works."""
    import tempfile

    from podrepro import elfprobe

    a = arch.alias
    expected = f"podrepro-probe {a}\n".encode()
    try:
        with tempfile.TemporaryDirectory(prefix="podrepro-probe-", dir=env.probe_dir) as d:
            path = os.path.join(d, f"probe-{a}")
            with open(path, "wb") as f:
                f.write(elfprobe.build(arch, exit_code=7))
            os.chmod(path, 0o755)
            cp = env.run([path], timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "failed", Finding("binfmt.probe", "fail", f"{a}: probe binary hung for {PROBE_TIMEOUT:.0f} s",
                                 arch=a)
    except Exception as e:  # ENOEXEC (no handler after all), EACCES (noexec /tmp): report, never crash
        return "failed", Finding("binfmt.probe", "fail", f"{a}: probe binary did not run: {e}",
                                 f"podrepro binfmt register {a} --force", a)
    if cp.returncode == 7 and cp.stdout == expected:
        return "ok", Finding("binfmt.probe", "ok", f"{a}: probe binary ran under emulation", arch=a)
    return "failed", Finding(
        "binfmt.probe", "fail",
        f"{a}: probe binary gave exit {cp.returncode} and {cp.stdout[:60]!r} (expected 7 and {expected!r})",
        f"podrepro binfmt register {a} --force", a)
