"""Run plans: a saved argv is used only while every input it was decided from is unchanged.

The end-to-end proof that a plan's argv equals the slow path's is in tests/e2e/test_run.py; here
each kind of input is changed in turn and must send the run back to the slow path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from podrepro import config, runplan
from podrepro.errors import PodreproError

REPO = Path(__file__).resolve().parents[2]
ARGV = ["podman", "run", "--rm", "IMAGE"]


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    cache = tmp_path / "cache"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for k in list(os.environ):
        if k.startswith(runplan.ENV_PREFIXES):
            monkeypatch.delenv(k)
    monkeypatch.setenv("PODREPRO_CACHE_DIR", str(cache))
    monkeypatch.setenv("TERM", "xterm")
    return os.environ  # type: ignore[return-value]


def _deps(tmp_path: Path) -> list[runplan.Dep]:
    (tmp_path / "conf.toml").write_text("a = 1\n")
    (tmp_path / "proc").mkdir(exist_ok=True)
    (tmp_path / "proc" / "qemu-arm").write_text("enabled\ninterpreter /usr/bin/qemu-arm-static\n")
    (tmp_path / "ccache").mkdir(exist_ok=True)
    return [runplan.fingerprint(runplan.STAT, str(tmp_path / "conf.toml")),
            runplan.fingerprint(runplan.EXISTS, str(tmp_path / "work" / "podrepro.toml")),
            runplan.fingerprint(runplan.EXISTS, str(tmp_path / "ccache")),
            runplan.fingerprint(runplan.CONTENT, str(tmp_path / "proc" / "qemu-arm")),
            runplan.fingerprint(runplan.LISTING, str(tmp_path / "proc"))]


def _save(tmp_path: Path, names: tuple[str, ...] = (), touch: Path | None = None) -> None:
    stamp = touch or tmp_path / "stamp"
    stamp.touch()
    runplan.save("arm", ARGV, _deps(tmp_path), names, touch=str(stamp))


def test_unchanged_inputs_give_the_saved_argv(env: dict[str, str], tmp_path: Path) -> None:
    _save(tmp_path)
    assert runplan.lookup("arm") == ARGV
    assert Path(runplan.plans_file()).parent == tmp_path / "cache"


def test_a_hit_records_the_images_last_use(env: dict[str, str], tmp_path: Path) -> None:
    _save(tmp_path)
    stamp = tmp_path / "stamp"
    os.utime(stamp, ns=(1, 1))
    assert runplan.lookup("arm") == ARGV
    assert stamp.stat().st_mtime_ns > 1


def test_the_stamp_gone_means_the_slow_path(env: dict[str, str], tmp_path: Path) -> None:
    _save(tmp_path)
    (tmp_path / "stamp").unlink()
    assert runplan.lookup("arm") is None


@pytest.mark.parametrize("change", [
    "config-edited", "project-file-created", "ccache-removed", "handler-disabled", "handler-added",
])
def test_any_changed_input_misses(env: dict[str, str], tmp_path: Path, change: str) -> None:
    _save(tmp_path)
    assert runplan.lookup("arm") == ARGV
    if change == "config-edited":
        conf = tmp_path / "conf.toml"
        conf.write_text("a = 2\n")
        os.utime(conf, ns=(conf.stat().st_atime_ns, conf.stat().st_mtime_ns + 10**9))
    elif change == "project-file-created":
        (tmp_path / "work" / "podrepro.toml").write_text("")
    elif change == "ccache-removed":
        (tmp_path / "ccache").rmdir()
    elif change == "handler-disabled":
        (tmp_path / "proc" / "qemu-arm").write_text("disabled\ninterpreter /usr/bin/qemu-arm-static\n")
    else:
        (tmp_path / "proc" / "qemu-arm-2").write_text("enabled\n")
    assert runplan.lookup("arm") is None


def test_same_size_rewrite_of_a_file_misses(env: dict[str, str], tmp_path: Path) -> None:
    _save(tmp_path)
    conf = tmp_path / "conf.toml"
    st = conf.stat()
    conf.write_text("b = 1\n")  # same size; the mtime (ns) tells
    os.utime(conf, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert runplan.lookup("arm") is None


@pytest.mark.parametrize("var,value", [
    ("PODREPRO_PROFILE", "jsc"), ("PODREPRO_PODMAN", "/usr/local/bin/podman"), ("XDG_CONFIG_HOME", "/x"),
    ("CONTAINERS_STORAGE_CONF", "/s.conf"), ("GIT_DIR", "/g"), ("HOME", "/elsewhere"),
])
def test_a_relevant_environment_change_misses(env: dict[str, str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv("MYVAR", "1")
    _save(tmp_path, names=("MYVAR",))  # MYVAR: passed through by the config's env list
    assert runplan.lookup("arm") == ARGV
    monkeypatch.setenv(var, value)
    assert runplan.lookup("arm") is None


def test_a_passed_through_variable_counts_by_presence_not_value(env: dict[str, str], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """podman reads a passed-through variable itself (`--env NAME`): a new value needs no new
    plan, and the value is never written into the plans file; (un)setting it does miss."""
    monkeypatch.setenv("MYVAR", "s3cr3t-value")
    _save(tmp_path, names=("MYVAR",))
    assert b"s3cr3t-value" not in Path(runplan.plans_file()).read_bytes()
    monkeypatch.setenv("MYVAR", "another")
    assert runplan.lookup("arm") == ARGV
    monkeypatch.delenv("MYVAR")
    assert runplan.lookup("arm") is None


def test_an_unrelated_environment_change_still_hits(env: dict[str, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _save(tmp_path)
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    assert runplan.lookup("arm") == ARGV


def test_plans_are_per_directory_and_per_arch(env: dict[str, str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _save(tmp_path)
    assert runplan.lookup("mips") is None
    assert runplan.lookup("armhf") is None  # saved under the name as typed
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    assert runplan.lookup("arm") is None


def test_tty_state_is_part_of_the_key() -> None:
    assert runplan.key("arm", "/p", True, True) != runplan.key("arm", "/p", False, False)
    assert runplan.key("arm", "/p", True, False) != runplan.key("arm", "/p", False, True)


@pytest.mark.parametrize("var", [runplan.DISABLE_VAR, "PODREPRO_VERBOSE"])
def test_switches_that_turn_plans_off(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      var: str) -> None:
    _save(tmp_path)
    monkeypatch.setenv(var, "1")
    assert runplan.lookup("arm") is None


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage", b"\xe9" * 100])
def test_a_corrupt_plans_file_is_a_miss_not_a_crash(env: dict[str, str], tmp_path: Path, content: bytes) -> None:
    _save(tmp_path)
    Path(runplan.plans_file()).write_bytes(content)
    assert runplan.lookup("arm") is None
    _save(tmp_path)  # and the next slow path rewrites it
    assert runplan.lookup("arm") == ARGV


def test_a_plan_of_another_podrepro_version_is_ignored(env: dict[str, str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _save(tmp_path)
    monkeypatch.setattr("podrepro.__version__", "99.0")
    assert runplan.lookup("arm") is None


def test_a_bad_argv_in_the_file_is_not_executed(env: dict[str, str], tmp_path: Path) -> None:
    runplan.save("arm", [], _deps(tmp_path), ())
    assert runplan.lookup("arm") is None


def test_saving_is_bounded(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(runplan.MAX_PLANS + 5):
        d = tmp_path / f"d{i}"
        d.mkdir()
        monkeypatch.chdir(d)
        runplan.save("arm", ARGV, [], ())
    assert len(runplan._load(runplan.plans_file())) == runplan.MAX_PLANS
    assert runplan.lookup("arm") == ARGV  # the newest survives
    monkeypatch.chdir(tmp_path / "d0")
    assert runplan.lookup("arm") is None  # the oldest went


def test_saving_never_fails_the_run(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("PODREPRO_CACHE_DIR", str(blocker / "cache"))  # under a regular file
    runplan.save("arm", ARGV, [], ())
    assert runplan.lookup("arm") is None
    assert not list(tmp_path.glob("**/*.tmp"))


def test_try_exec_execs_plan_plus_command_and_audits_it(env: dict[str, str], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _save(tmp_path)
    log = tmp_path / "audit.log"
    monkeypatch.setenv("PODREPRO_AUDIT_LOG", str(log))
    _save(tmp_path)  # the audit log's variable is part of the environment snapshot
    seen: list[list[str]] = []

    def fake_exec(file: str, args: list[str]) -> None:
        seen.append(args)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execvp", fake_exec)
    with pytest.raises(SystemExit):
        runplan.try_exec("arm", ["sh", "-c", "echo '$(id)'; true"])
    assert seen == [[*ARGV, "sh", "-c", "echo '$(id)'; true"]]
    rec = json.loads(log.read_text().splitlines()[-1])
    assert rec["how"] == "exec-plan" and rec["argv"] == seen[0]


def test_try_exec_returns_without_a_plan(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "execvp", lambda *a: pytest.fail("must not exec"))
    runplan.try_exec("arm", ["true"])  # returns: the caller takes the full path


def test_try_exec_returns_when_the_program_is_gone(env: dict[str, str], tmp_path: Path) -> None:
    runplan.save("arm", [str(tmp_path / "no-such-podman"), "run"], [], ())
    runplan.try_exec("arm", ["true"])  # returns instead of failing: the slow path then reports it properly


def test_the_hot_path_imports_only_what_it_must(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; before = set(sys.modules); from podrepro import runplan; "
            "runplan.lookup('arm'); print('\\n'.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PODREPRO_CACHE_DIR=str(tmp_path), PYTHONPATH=str(REPO)),
                         cwd=tmp_path).stdout
    loaded = set(out.split())
    assert {"typing", "re", "json", "pathlib", "dataclasses"}.isdisjoint(loaded), loaded
    # and of podrepro's own modules, only these two (PODREPRO_AUDIT_LOG adds podrepro.audit)
    assert {m for m in loaded if m.split(".")[0] == "podrepro"} == {"podrepro", "podrepro.runplan"}, loaded


# ---- what the slow path fingerprints: the project-root discovery -------------------------------


def test_discovery_stops_at_the_project_file(tmp_path: Path) -> None:
    (tmp_path / "podrepro.toml").write_text("")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    paths = config.discovery_paths(sub, tmp_path / "podrepro.toml")
    assert paths == [sub / "podrepro.toml", sub / ".git", tmp_path / "a" / "podrepro.toml", tmp_path / "a" / ".git",
                     tmp_path / "podrepro.toml", tmp_path / ".git"]


def test_discovery_without_a_project_file_covers_git_everywhere_up(tmp_path: Path) -> None:
    sub = tmp_path / "a"
    sub.mkdir()
    paths = config.discovery_paths(sub, None)
    assert sub / ".git" in paths and tmp_path / ".git" in paths and Path("/.git") in paths
    assert Path("/podrepro.toml") in paths


# ---- a plan is exec'd: only from a cache dir nobody else can write -----------------------------


@pytest.mark.parametrize("what", ["dir", "file"])
def test_plan_in_a_writable_place_is_not_used(env: dict[str, str], what: str) -> None:
    runplan.save("arm", ["podman", "run"], [], ())
    assert runplan.lookup("arm") == ["podman", "run"]
    path = Path(runplan.plans_file())
    target = path.parent if what == "dir" else path
    target.chmod(target.stat().st_mode | 0o002)
    assert runplan.lookup("arm") is None, "another user could have written that plan"
    target.chmod(target.stat().st_mode & ~0o022)
    assert runplan.lookup("arm") == ["podman", "run"]


def test_the_slow_path_refuses_a_shared_cache_dir(tmp_path: Path) -> None:
    from podrepro.paths import Paths

    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    p = Paths(cache=cache, config=tmp_path / "c", state=tmp_path / "s")
    with pytest.raises(PodreproError, match="is writable by others"):
        p.ensure_cache()
    cache.chmod(0o700)
    assert p.ensure_cache() == cache


def test_a_watched_run_passes_its_output_on_and_names_what_it_shows(capfd: pytest.CaptureFixture[str]) -> None:
    """A run whose output is not a terminal, where a known qemu-user artefact can show: its
    output goes on as it comes and, after a failure, the matching line (podrepro.fidelity)."""
    from podrepro.arches import lookup
    from podrepro.fidelity.artefacts import watch_list

    watch = watch_list(lookup("arm"))
    assert any("readdir-cookies" in line for _, line in watch)
    failing = "echo 'readdir .: Value too large for defined data type'; echo err >&2; exit 1"
    assert runplan.run_watched(["sh", "-c", failing], watch, how="watch") == 1
    out, err = capfd.readouterr()
    assert out == "readdir .: Value too large for defined data type\n"
    assert err.startswith("err\n") and "podrepro: this failure may be a qemu-user artefact" in err and "readdir-cookies" in err
    assert runplan.run_watched(["sh", "-c", "echo 'Value too large for defined data type'"], watch, how="watch") == 0
    assert "podrepro:" not in capfd.readouterr().err  # a run that passed says nothing
    assert runplan.run_watched(["sh", "-c", "echo fine; exit 3"], watch, how="watch") == 3
    assert "podrepro:" not in capfd.readouterr().err  # nor one whose output shows no evidence
    # only the first keep_bytes are read
    late = "head -c 5000 /dev/zero | tr '\\0' x; echo; echo 'Value too large for defined data type'; exit 1"
    assert runplan.run_watched(["sh", "-c", late], watch, how="watch", keep_bytes=1000) == 1
    assert "podrepro:" not in capfd.readouterr().err
    # the robust-futex class's pattern is case-insensitive in the table: it stays so
    assert runplan.run_watched(["sh", "-c", "echo 'OWNER DIED'; exit 1"], watch, how="watch") == 1
    assert "robust-futex" in capfd.readouterr().err


def test_a_plan_that_reads_its_output_runs_watched(env: dict[str, str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    runplan.save("arm", ARGV, _deps(tmp_path), (), watch=[("Value too large", "a line")])
    monkeypatch.setattr(os, "execvp", lambda *a: pytest.fail("exec'd a plan that reads its output"))
    seen: list[tuple[list[str], object]] = []

    def watched(argv: list[str], watch: object, *, how: str) -> int:
        seen.append((argv, watch))
        assert how == "watch-plan"
        return 5

    monkeypatch.setattr(runplan, "run_watched", watched)
    with pytest.raises(SystemExit) as e:
        runplan.try_exec("arm", ["ls"])
    assert e.value.code == 5 and seen == [([*ARGV, "ls"], [["Value too large", "a line"]])]
