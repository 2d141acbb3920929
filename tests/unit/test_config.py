"""One rule per test for the precedence resolver: default < user file < podrepro.toml < env < flag."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podrepro import config
from podrepro.errors import EXIT_USAGE, ConfigError


@pytest.fixture(autouse=True)
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Approvals (`podrepro trust`) live in the state dir: a private one per test."""
    monkeypatch.setenv("PODREPRO_STATE_DIR", str(tmp_path / "state"))


def _resolve(tmp: Path, *, user: str | None = None, project: str | None = None,
             env: dict[str, str] | None = None, cli: dict[str, object] | None = None) -> config.Config:
    uf = tmp / "user" / "config.toml"
    uf.parent.mkdir(exist_ok=True)
    if user is not None:
        uf.write_text(user)
    proj = tmp / "proj"
    (proj / "sub").mkdir(parents=True, exist_ok=True)
    if project is not None:
        (proj / "podrepro.toml").write_text(project)
    return config.resolve(cli or {}, cwd=proj / "sub", environ=env or {}, user_file=uf)


def test_defaults(tmp_path: Path) -> None:
    c = _resolve(tmp_path)
    assert c["suite"] == "auto" and c.source("suite") == "default"
    assert c["network"] is False


def test_user_file_beats_default(tmp_path: Path) -> None:
    c = _resolve(tmp_path, user='suite = "bullseye"\n')
    assert c["suite"] == "bullseye" and c.source("suite").startswith("user config")


def test_project_beats_user(tmp_path: Path) -> None:
    c = _resolve(tmp_path, user='suite = "bullseye"\n', project='suite = "bookworm"\n')
    assert c["suite"] == "bookworm" and c.source("suite").startswith("project")
    assert c.project_root == (tmp_path / "proj").resolve()


def test_env_beats_project(tmp_path: Path) -> None:
    c = _resolve(tmp_path, project='suite = "bookworm"\n', env={"PODREPRO_SUITE": "trixie"})
    assert c["suite"] == "trixie" and c.source("suite") == "env PODREPRO_SUITE"


def test_flag_beats_env(tmp_path: Path) -> None:
    c = _resolve(tmp_path, env={"PODREPRO_SUITE": "trixie"}, cli={"suite": "sid"})
    assert c["suite"] == "sid" and c.source("suite") == "flag --suite"


def test_none_flag_does_not_override(tmp_path: Path) -> None:
    c = _resolve(tmp_path, env={"PODREPRO_SUITE": "trixie"}, cli={"suite": None})
    assert c.source("suite") == "env PODREPRO_SUITE"


def test_env_types_are_coerced(tmp_path: Path) -> None:
    c = _resolve(tmp_path, env={"PODREPRO_NETWORK": "yes", "PODREPRO_TIMEOUT_MULTIPLIER": "2.5",
                                "PODREPRO_ENV": "A=1,B"})
    assert c["network"] is True and c["timeout_multiplier"] == 2.5 and c["env"] == ["A=1", "B"]


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        _resolve(tmp_path, project='suite = "bookworm"\nnetwork = = true\n')
    assert e.value.exit_code == EXIT_USAGE
    assert e.value.message.startswith("podrepro.toml:2: ")


@pytest.mark.parametrize("text, needle", [
    ('bogus = 1\n', "unknown key 'bogus'"),
    ('network = "maybe"\n', "must be true or false"),
    ('timeout_multiplier = "x"\n', "must be a number"),
    ('timeout_multiplier = -1\n', "between 0 and 1000"),
    ('suite = 5\n', "must be a string"),
    ('variant = "huge"\n', "must be one of"),
    ('env = [1, 2]\n', "list of strings"),
    ('privileged = true\n', "not allowed in a project file"),
    ('cap_add = ["SYS_ADMIN"]\n', "not allowed in a project file"),
    ('userns = "host"\n', "not allowed in a project file"),
    ('volumes = ["/:/host"]\n', "not allowed in a project file"),
    ('network = "host"\n', "not allowed in a project file"),
    ('[profile.x]\nprivileged = true\n', "not allowed in a profile"),
    ('[profile.x]\ncontainerfile = "missing.Containerfile"\n', "not found"),
    ('[profile.x]\nbuild_dir = "../outside"\n', "inside the project"),
    ('[profile.x]\nbuild = 5\n', "must be a command"),
    ('[profile."X Y"]\n', "profile name"),
    ('profile = 3\n', "must be a string"),
])
def test_bad_project_values(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        _resolve(tmp_path, project=text)
    assert needle in e.value.message
    assert e.value.message.startswith("podrepro.toml:")


def test_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="limit"):
        _resolve(tmp_path, project="# " + "x" * (config.MAX_CONFIG_BYTES + 10) + "\n")


def test_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "podrepro.toml").write_bytes(b"suite = \"\xff\"\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        _resolve(tmp_path)


def test_profile_containerfile_resolved_relative_to_file(tmp_path: Path) -> None:
    from podrepro import trust
    from podrepro.paths import get_paths

    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "my.Containerfile").write_text("ARG BASE\nFROM ${BASE}\n")
    text = '[profile.mine]\ncontainerfile = "my.Containerfile"\ntest = ["make", "check"]\n'
    c = _resolve(tmp_path, project=text)
    # not approved yet: the Containerfile is ignored, and one notice says so
    assert "containerfile" not in c.profiles["mine"] and len(c.notices) == 1
    assert "profile.mine.containerfile (my.Containerfile)" in c.notices[0] and "podrepro trust" in c.notices[0]
    trust.approve(get_paths(), tmp_path / "proj" / "podrepro.toml")
    c = _resolve(tmp_path, project=text)
    assert c.profiles["mine"]["containerfile"] == str((tmp_path / "proj" / "my.Containerfile").resolve())
    assert c.notices == ()


def test_project_root_walks_up(tmp_path: Path) -> None:
    c = _resolve(tmp_path, project="")
    assert c.project_file == (tmp_path / "proj" / "podrepro.toml").resolve()


def test_src_flag_must_be_a_directory(tmp_path: Path) -> None:
    from podrepro.errors import UsageError

    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        config.resolve({}, src=f, environ={}, user_file=tmp_path / "none.toml")
    with pytest.raises(UsageError, match="no such directory"):
        config.resolve({}, src=tmp_path / "nope", environ={}, user_file=tmp_path / "none.toml")


def test_default_profile_spelling_coexists_with_profile_tables(tmp_path: Path) -> None:
    c = _resolve(tmp_path, project='default_profile = "mine"\n[profile.mine]\ntest = ["make", "check"]\n')
    assert c["profile"] == "mine" and c.source("profile").startswith("project")
    assert c.profiles["mine"]["test"] == ["make", "check"]


# ---- where the project file is looked for (security: a file another user planted) -------------

def test_search_stops_at_the_git_top_level(tmp_path: Path) -> None:
    # a podrepro.toml above the repository (say in a shared parent directory) is not this project's
    (tmp_path / "podrepro.toml").write_text('default_profile = "base"\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    root, pfile = config.find_project_root(repo / "src", environ={})
    assert (root, pfile) == (repo, None)
    # inside the repository it is found as before
    (repo / "podrepro.toml").write_text("")
    assert config.find_project_root(repo / "src", environ={}) == (repo, repo / "podrepro.toml")


def test_a_project_file_of_another_user_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "podrepro.toml").write_text('default_profile = "base"\n')
    sub = tmp_path / "work"
    sub.mkdir()
    assert config.find_project_root(sub, environ={})[1] == tmp_path / "podrepro.toml"
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 4242 if real_uid else 4242)  # we are someone else now
    if real_uid == 0:
        # root owns the file: root's files are trusted; make it another user's
        os.chown(tmp_path / "podrepro.toml", 4243, 4243)
    assert config.find_project_root(sub, environ={}) == (sub, None)


def test_git_ceiling_directories_end_the_search(tmp_path: Path) -> None:
    (tmp_path / "podrepro.toml").write_text("")
    sub = tmp_path / "a"
    sub.mkdir()
    assert config.find_project_root(sub, environ={"GIT_CEILING_DIRECTORIES": str(tmp_path)}) == (sub, None)
