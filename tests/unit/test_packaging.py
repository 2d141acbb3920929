"""The wheel ships the built-in Containerfiles (the profiles are useless without them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # build from a copy: a build writes egg-info/build dirs into the source tree
    tmp_path = tmp_path_factory.mktemp("wheel")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    (src / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "podrepro", src / "scripts" / "podrepro")
    for d in ("podrepro", "containerfiles"):
        shutil.copytree(REPO / d, src / d, ignore=shutil.ignore_patterns("__pycache__"))
    cp = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                         "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr
    (whl,) = tmp_path.glob("podrepro-*.whl")
    return whl


def test_wheel_contains_containerfiles_and_command(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for cf in (REPO / "containerfiles").glob("*.Containerfile"):
        assert f"podrepro/containerfiles/{cf.name}" in names
    # every module of every subpackage (pyproject.toml lists the packages one by one)
    for py in (REPO / "podrepro").rglob("*.py"):
        assert py.relative_to(REPO).as_posix() in names, py
    # the command: a script whose '#!python' line the installer rewrites (not an entry point)
    script = next(n for n in names if n.endswith(".data/scripts/podrepro"))
    text = zipfile.ZipFile(wheel).read(script).decode()
    assert text.startswith("#!python\n") and "from podrepro.cli.entry import main" in text
    assert not any(n.endswith("entry_points.txt") for n in names)


def test_installed_command_runs(wheel: Path, tmp_path: Path) -> None:
    """pip installs the script with its shebang pointing at the venv's Python, and it works."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    cp = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                         "--no-deps", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr
    exe = venv / "bin" / "podrepro"
    assert exe.read_text().splitlines()[0] == f"#!{venv / 'bin' / 'python'}"
    # the dependencies (typer, ...) come from the test's own environment, after the venv's own
    # site-packages (a .pth file appends; PYTHONPATH would shadow the installed podrepro)
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "zz_test_deps.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(__import__("podrepro").__version__)
    assert str(venv) in subprocess.run([str(venv / "bin" / "python"), "-c", "import podrepro; print(podrepro.__file__)"],
                                       capture_output=True, text=True, env=env, cwd=tmp_path).stdout


def test_builtin_profiles_find_their_containerfiles() -> None:
    from podrepro.profiles import BUILTINS

    for p in BUILTINS.values():
        path = p.containerfile_path()
        assert path is None or path.is_file(), p.name
