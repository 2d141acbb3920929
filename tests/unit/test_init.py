"""podrepro init: the build system detected from the directory, a template podrepro's own config
loader accepts (and resolves to a profile that builds and tests), never an overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from podrepro import config, init
from podrepro.errors import UsageError
from podrepro.profiles import resolve_profile, runs_program


@pytest.mark.parametrize("marker, kind", [("CMakeLists.txt", "cmake"), ("meson.build", "meson"),
                                          ("configure.ac", "autotools"), ("configure", "autotools"),
                                          ("Makefile", "make")])
def test_detects_the_build_system(tmp_path: Path, marker: str, kind: str) -> None:
    (tmp_path / marker).write_text("")
    assert init.detect(tmp_path) == kind
    path, used, how = init.write(tmp_path)
    assert (used, how) == (kind, "detected") and path == tmp_path / "podrepro.toml"


@pytest.mark.parametrize("kind", list(init.TEMPLATES))
def test_every_template_is_a_valid_project_file(tmp_path: Path, kind: str) -> None:
    init.write(tmp_path, kind)
    data, text = config.load_toml(tmp_path / "podrepro.toml", "podrepro.toml")
    values = config.check_project_table(data, text, "podrepro.toml")
    profiles = config.check_project_profiles(data, text, "podrepro.toml", tmp_path)
    name = values.get("profile") or data.get("default_profile")
    assert isinstance(name, str)
    prof = resolve_profile(name, profiles)
    assert prof.build and prof.test and prof.build_dir
    assert init.asks_for_packages(kind) == bool(prof.packages)
    if kind != "cmake":
        # a test command of its own: ctest's -R and --timeout (generic's) are not inherited
        assert prof.timeout_option is None and prof.filter_option in (None, "TESTS=")


def test_a_profile_with_its_own_test_command_drops_the_parents_harness_options() -> None:
    own = resolve_profile("make", {"make": {"extends": "generic", "test": ["make", "check"]}})
    assert (own.filter_option, own.timeout_option, own.results) == (None, None, None)
    kept = resolve_profile("mine", {"mine": {"extends": "generic", "packages": ["zlib1g-dev"]}})
    assert (kept.filter_option, kept.timeout_option) == ("-R", "--timeout") and kept.results is not None
    named = resolve_profile("m", {"m": {"extends": "generic", "test": ["t"], "timeout_option": "--to"}})
    assert named.timeout_option == "--to" and named.filter_option is None
    # a command that still runs ctest (here behind a shell) keeps ctest's options, not its results
    for test in (["sh", "-c", 'echo x; exec ctest "$@"', "harness", "--test-dir", "b"], ["/usr/bin/ctest", "-j2"]):
        wrapped = resolve_profile("w", {"w": {"extends": "generic", "test": test}})
        assert (wrapped.filter_option, wrapped.timeout_option, wrapped.results) == ("-R", "--timeout", None)
    # a word, not a part of one
    assert not runs_program(("run-ctests.sh",), ("ctest",)) and not runs_program(("ctest2",), ("ctest",))


def test_cmake_is_the_fallback_and_nothing_is_overwritten(tmp_path: Path) -> None:
    path, used, how = init.write(tmp_path)
    assert (used, how) == ("cmake", "fallback")
    path.write_text("# mine\\n")
    with pytest.raises(UsageError, match="never overwrites"):
        init.write(tmp_path)
    assert path.read_text() == "# mine\\n"
    (tmp_path / "podrepro.toml").unlink()
    (tmp_path / "podrepro.toml").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="never overwrites"):
        init.write(tmp_path)  # a dangling symlink is not followed either
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(UsageError, match="unknown build system"):
        init.write(tmp_path / "x", "scons")
