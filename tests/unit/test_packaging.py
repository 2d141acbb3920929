"""The wheel ships the built-in Containerfiles (the profiles are useless without them)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contains_containerfiles_and_entry_point(tmp_path: Path) -> None:
    # build from a copy: a build writes egg-info/build dirs into the source tree
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    for d in ("podrepro", "containerfiles"):
        shutil.copytree(REPO / d, src / d, ignore=shutil.ignore_patterns("__pycache__"))
    cp = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                         "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=300)
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
