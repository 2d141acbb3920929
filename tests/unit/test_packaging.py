"""The wheel ships the built-in Containerfiles (the profiles are useless without them)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contains_containerfiles_and_entry_point(tmp_path: Path) -> None:
    cp = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                         "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr
    (whl,) = tmp_path.glob("podrepro-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    for cf in (REPO / "containerfiles").glob("*.Containerfile"):
        assert f"podrepro/containerfiles/{cf.name}" in names
    ep = next(n for n in names if n.endswith("entry_points.txt"))
    assert "podrepro = podrepro.cli.entry:main" in zipfile.ZipFile(whl).read(ep).decode()


def test_builtin_profiles_find_their_containerfiles() -> None:
    from podrepro.profiles import BUILTINS

    for p in BUILTINS.values():
        path = p.containerfile_path()
        assert path is None or path.is_file(), p.name
