"""engine/standins.py's copier and helper stand-ins, each run for real: the decompressing copier
(perl, on .debs dpkg-deb builds) and the dpkg-maintscript-helper and deb-systemd-helper stand-ins
(sh), checked against the host's real helpers where a stand-in answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from podrepro.engine import standins

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (a Debian host)")


def _members(deb: Path) -> list[tuple[str, bytes, int]]:
    """(name, header fields but name and size, size) of each ar member."""
    data = deb.read_bytes()
    assert data[:8] == b"!<arch>\n"
    out, at = [], 8
    while at < len(data):
        h = data[at:at + 60]
        size = int(h[48:58])
        out.append((h[:16].decode().rstrip(" /"), h[16:48], size))
        at += 60 + size + size % 2
    return out


def _build(tmp: Path, name: str, compress: str = "xz") -> Path:
    pkg = tmp / f"src-{name}"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\n"
                                        "Maintainer: t <t@example.invalid>\nDescription: t\n")
    (pkg / "DEBIAN/postinst").write_text("#!/bin/sh\nexit 0\n")
    (pkg / "DEBIAN/postinst").chmod(0o755)
    (pkg / "usr/share/t").mkdir(parents=True)
    (pkg / "usr/share/t/odd").write_bytes(os.urandom(1001))
    (pkg / "usr/share/t/link").symlink_to("odd")
    deb = tmp / f"{name}_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compress}", "-b", str(pkg), str(deb)], check=True,
                   capture_output=True)
    return deb


def test_the_copier_can_be_passed_inline() -> None:
    assert "'" not in standins.REPACK_PL  # the hook passes it as perl -e '...'


def _copier(out: Path, *debs: Path) -> subprocess.CompletedProcess[str]:
    out.mkdir(exist_ok=True)
    return subprocess.run(["perl", "-e", standins.REPACK_PL, str(out), str(standins.REPACK_AHEAD), *map(str, debs)],
                          capture_output=True, text=True, timeout=60)


@needs_dpkg
@pytest.mark.parametrize("compress", ["xz", "gzip"])
def test_the_copy_is_the_same_package_with_its_data_uncompressed(tmp_path: Path, compress: str) -> None:
    deb = _build(tmp_path, "one", compress)
    cp = _copier(tmp_path / "out", deb)
    assert cp.returncode == 0 and cp.stderr == "", cp.stderr
    copy = tmp_path / "out" / deb.name
    before, after = _members(deb), _members(copy)
    assert [m[0] for m in after] == ["debian-binary", f"control.tar.{'xz' if compress == 'xz' else 'gz'}",
                                     "data.tar"]
    # the header fields (time, owner, mode) are the original's; only the data member's name and size differ
    assert [m[1] for m in after] == [m[1] for m in before]
    assert after[:2] == before[:2]

    def deb_out(*args: str) -> bytes:
        return subprocess.run(["dpkg-deb", *args], check=True, capture_output=True).stdout

    assert deb_out("--fsys-tarfile", str(copy)) == deb_out("--fsys-tarfile", str(deb))
    assert deb_out("--ctrl-tarfile", str(copy)) == deb_out("--ctrl-tarfile", str(deb))
    assert after[2][2] == len(deb_out("--fsys-tarfile", str(deb)))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [deb.name]  # no .part left


@needs_dpkg
def test_what_the_copier_cannot_convert_is_left_out_with_a_warning_and_the_rest_goes_on(tmp_path: Path) -> None:
    good = _build(tmp_path, "good")
    cut = tmp_path / "cut_1_all.deb"
    cut.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])  # a download cut short
    text = tmp_path / "text_1_all.deb"
    text.write_text("not an archive\n")
    cp = _copier(tmp_path / "out", cut, text, good)
    assert cp.returncode == 0
    warnings = [line for line in cp.stderr.splitlines() if line.startswith("W: ")]  # (and dpkg-deb's own words)
    assert len(warnings) == 2, cp.stderr
    assert warnings[0].startswith(f"W: podrepro: {cut} is unpacked from its compressed data (")
    assert warnings[1] == f"W: podrepro: {text} is unpacked from its compressed data (not an ar archive)"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([good.name, f"{cut.name}.failed",
                                                                          f"{text.name}.failed"])


def _ten(tmp: Path) -> tuple[list[Path], Path]:
    """Ten .debs (copies of one) and an empty output dir."""
    one = _build(tmp, "one")
    debs = [tmp / f"p{i}_1.0-1_all.deb" for i in range(10)]
    for d in debs:
        shutil.copy(one, d)
    (tmp / "out").mkdir()
    return debs, tmp / "out"


@needs_dpkg
def test_the_copier_keeps_at_most_its_window_ahead_of_dpkg_and_eight_copies_whatever_their_size(
        tmp_path: Path) -> None:
    debs, out = _ten(tmp_path)
    # a window of one byte: 8 copies, then it waits for dpkg (here: the test) to take one
    p = subprocess.Popen(["perl", "-e", standins.REPACK_PL, str(out), "1", *map(str, debs)], stderr=subprocess.PIPE,
                         text=True)
    try:
        def copies() -> list[str]:
            return sorted(f.name for f in out.iterdir() if f.name.endswith(".deb"))

        def wait_for(n: int) -> None:
            for _ in range(600):
                if len(copies()) >= n:
                    return
                time.sleep(0.05)
            raise AssertionError(f"no {n} copies: {copies()}")

        wait_for(8)
        time.sleep(1)  # time enough for a ninth, were it allowed
        assert copies() == [d.name for d in debs[:8]] and p.poll() is None
        (out / debs[0].name).unlink()  # dpkg has unpacked the first
        wait_for(8)
        assert copies() == [d.name for d in debs[1:9]]
        for d in debs[1:9]:
            (out / d.name).unlink()
        assert p.wait(timeout=30) == 0
        assert copies() == [debs[9].name]
    finally:
        p.kill()
        p.wait()


@needs_dpkg
def test_a_copier_held_back_goes_when_the_hook_is_gone(tmp_path: Path) -> None:
    debs, out = _ten(tmp_path)
    # the hook's subshell (here: a sh that starts the copier and is then killed)
    pidfile = tmp_path / "copier.pid"
    hook = subprocess.Popen(["sh", "-c", 'perl -e "$0" "$@" & echo $! > "$PIDFILE"; wait', standins.REPACK_PL,
                             str(out), "1", *map(str, debs)], env=dict(os.environ, PIDFILE=str(pidfile)),
                            stderr=subprocess.DEVNULL)
    for _ in range(600):
        if len([f for f in out.iterdir() if f.name.endswith(".deb")]) >= 8:
            break
        time.sleep(0.05)
    copier = int(pidfile.read_text())
    hook.kill()
    hook.wait()
    for _ in range(200):  # the copier notices within its next look at the window
        if not Path(f"/proc/{copier}").exists() or "zombie" in Path(f"/proc/{copier}/status").read_text():
            break
        time.sleep(0.05)
    else:
        os.kill(copier, 9)
        raise AssertionError("the copier outlived the hook")


# ---- dpkg-maintscript-helper's stand-in -------------------------------------------------------

REAL = "/usr/bin/dpkg-maintscript-helper"

# (script, helper arguments): the real helper does nothing here but check its arguments
NOTHING = [
    ("preinst", ["rm_conffile", "/etc/a.conf", "2017.5~~", "--", "install"]),
    ("preinst", ["rm_conffile", "/etc/a.conf", "--", "install"]),
    ("preinst", ["rm_conffile", "/etc/a.conf", "1:2.0-1", "pkg", "--", "upgrade"]),
    ("postinst", ["rm_conffile", "/etc/a.conf", "2017.5~~", "--", "configure", ""]),
    ("postinst", ["rm_conffile", "/etc/a.conf", "2017.5~~", "--", "configure"]),
    ("preinst", ["mv_conffile", "/etc/a.conf", "/etc/b.conf", "1.0", "--", "install"]),
    ("postinst", ["mv_conffile", "/etc/a.conf", "/etc/b.conf", "1.0", "--", "configure", ""]),
    ("preinst", ["dir_to_symlink", "/usr/share/z/posix/Africa", "../Africa", "2022g-1~", "--", "install"]),
    ("postinst", ["dir_to_symlink", "/usr/share/z/posix/Africa/", "../Africa", "2022g-1~", "--", "configure", ""]),
    ("preinst", ["symlink_to_dir", "/usr/share/doc/p", "q", "1.0", "--", "install"]),
    ("postinst", ["symlink_to_dir", "/usr/share/doc/p", "q", "--", "configure"]),
]

# the real helper has work to do, or something to say
REAL_ONE = [
    ("preinst", ["rm_conffile", "/etc/a.conf", "2017.5~~", "--", "upgrade", "2016.1"]),  # an upgrade
    ("postinst", ["rm_conffile", "/etc/a.conf", "2017.5~~", "--", "configure", "2016.1"]),
    ("postrm", ["rm_conffile", "/etc/a.conf", "2017.5~~", "--", "purge"]),
    ("preinst", ["rm_conffile", "etc/a.conf", "1.0", "--", "install"]),  # not absolute: its error
    ("preinst", ["mv_conffile", "/etc/a.conf", "b.conf", "1.0", "--", "install"]),
    ("preinst", ["mv_conffile", "/etc/a.conf", "--", "install"]),  # no new name
    ("preinst", ["rm_conffile", "/etc/a.conf", "x1.0", "--", "install"]),  # a version dpkg rejects
    ("preinst", ["rm_conffile", "/etc/a.conf", "1.0"]),  # no "--"
    ("preinst", ["rm_conffile", "/etc/a.conf", "1.0", "--"]),  # no action
    ("preinst", ["symlink_to_dir", "/usr/share/doc/p/", "q", "--", "install"]),  # ends with a slash
    ("preinst", ["dir_to_symlink", "/usr/share/z/Africa", "--", "install"]),  # no target
    ("preinst", ["supports", "rm_conffile"]),
    ("preinst", ["frobnicate", "/etc/a.conf", "--", "install"]),
]


def _stand_in(tmp: Path, script: str, args: list[str], text: str = standins.MAINTSCRIPT_HELPER, real_path: str = REAL,
              stderr: str = "", **env: str) -> tuple[int, str]:
    """Run a stand-in with the real helper replaced by one that says it was called."""
    real = tmp / "real-helper"
    real.write_text('#!/bin/sh\necho "REAL $*"\n')
    real.chmod(0o755)
    name = Path(real_path).name
    changed = text.replace(real_path, str(real))
    assert changed != text
    (tmp / "bin").mkdir(exist_ok=True)
    stand_in = tmp / "bin" / name
    stand_in.write_text(changed)
    stand_in.chmod(0o755)
    full = {"PATH": "/usr/bin:/bin", "DPKG_MAINTSCRIPT_NAME": script, "DPKG_MAINTSCRIPT_PACKAGE": "p",
            "DPKG_MAINTSCRIPT_ARCH": "all", "DPKG_ROOT": str(tmp / "root"), **env}
    cp = subprocess.run([str(stand_in), *args], env=full, capture_output=True, text=True, timeout=30)
    assert cp.stderr == stderr
    return cp.returncode, cp.stdout


def _answered(tmp: Path) -> list[str]:
    """What the stand-in wrote down beside itself (the hook counts it for the log)."""
    answered = tmp / "bin" / "answered"
    return answered.read_text().splitlines() if answered.exists() else []


@pytest.mark.parametrize("script, args", NOTHING)
def test_the_stand_in_answers_what_changes_nothing_on_a_fresh_install(tmp_path: Path, script: str,
                                                                      args: list[str]) -> None:
    (tmp_path / "root").mkdir()
    assert _stand_in(tmp_path, script, args) == (0, "")
    assert _answered(tmp_path) == [f"p {script} {args[0]}"]


@pytest.mark.parametrize("script, args", REAL_ONE)
def test_the_stand_in_hands_everything_else_to_the_real_helper(tmp_path: Path, script: str, args: list[str]) -> None:
    (tmp_path / "root").mkdir()
    assert _stand_in(tmp_path, script, args) == (0, f"REAL {' '.join(args)}\n")
    assert _answered(tmp_path) == []


@pytest.mark.parametrize("kind", ["dir_to_symlink", "symlink_to_dir"])
def test_a_backup_an_upgrade_left_goes_to_the_real_helper(tmp_path: Path, kind: str) -> None:
    path = "/usr/share/z/posix/Africa"
    backup = tmp_path / "root" / f"{path.lstrip('/')}.dpkg-backup"
    backup.parent.mkdir(parents=True)
    if kind == "dir_to_symlink":
        backup.mkdir()
    else:
        backup.symlink_to("elsewhere")  # dangling: still there
    args = [kind, path, "../Africa", "--", "configure", ""]
    assert _stand_in(tmp_path, "postinst", args) == (0, f"REAL {' '.join(args)}\n")


@pytest.mark.parametrize("env", [{"DPKG_DEBUG": "1"}, {"DPKG_MAINTSCRIPT_NAME": ""}, {"DPKG_MAINTSCRIPT_PACKAGE": ""}])
def test_debugging_or_a_missing_environment_goes_to_the_real_helper(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "root").mkdir()
    args = ["rm_conffile", "/etc/a.conf", "--", "install"]
    assert _stand_in(tmp_path, "preinst", args, **env) == (0, f"REAL {' '.join(args)}\n")


@pytest.mark.skipif(not Path(REAL).exists(), reason="needs the host's dpkg-maintscript-helper (a Debian host)")
@pytest.mark.parametrize("script, args", NOTHING)
def test_where_the_stand_in_answers_the_real_helper_does_nothing_either(tmp_path: Path, script: str,
                                                                        args: list[str]) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/a.conf").write_text("a\n")
    (root / "etc/a.conf.dpkg-remove").write_text("left by an old upgrade\n")  # what a purge would remove
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    cp = subprocess.run([REAL, *args], env={"PATH": "/usr/bin:/bin", "DPKG_MAINTSCRIPT_NAME": script,
                                            "DPKG_MAINTSCRIPT_PACKAGE": "p", "DPKG_MAINTSCRIPT_ARCH": "all",
                                            "DPKG_ROOT": str(root)}, capture_output=True, text=True, timeout=30)
    assert (cp.returncode, cp.stdout, cp.stderr) == (0, "", "")
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before


# ---- deb-systemd-helper's stand-in ------------------------------------------------------------

SYSTEMD_REAL = "/usr/bin/deb-systemd-helper"

# (arguments, what the real helper prints on stderr): one answer in a fresh install
ONE_ANSWER = [
    (["unmask", "fstrim.timer"], ""),
    (["unmask", "apt-daily.timer", "apt-daily-upgrade.timer"], ""),
    (["--user", "unmask", "x.service"], ""),
    (["--quiet", "was-enabled", "fstrim.timer"], ""),
    (["was-enabled", "fstrim.timer", "e2scrub_reap.service"], "enabled\nenabled\n"),
    (["--quiet", "--user", "was-enabled", "x.service"], ""),
]

SYSTEMD_REAL_ONE = [
    ["enable", "fstrim.timer"],
    ["update-state", "fstrim.timer"],
    ["unmask"],
    ["was-enabled", "--quiet", "fstrim.timer"],  # an option after the action: left to Getopt
    ["-q", "was-enabled", "fstrim.timer"],
    ["purge", "fstrim.timer"],
]


def _systemd_root(tmp: Path) -> Path:
    root = tmp / "root"
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd/system/fstrim.timer").write_text("[Install]\nWantedBy=timers.target\n")
    return root


@pytest.mark.parametrize("args, said", ONE_ANSWER)
def test_the_systemd_stand_in_answers_what_has_one_answer_in_a_fresh_install(tmp_path: Path, args: list[str],
                                                                           said: str) -> None:
    _systemd_root(tmp_path)
    assert _stand_in(tmp_path, "postinst", args, standins.SYSTEMD_HELPER, SYSTEMD_REAL, stderr=said) == (0, "")
    action = next(a for a in args if not a.startswith("-"))
    assert _answered(tmp_path) == [f"p postinst deb-systemd-helper {action}"]


@pytest.mark.parametrize("args", SYSTEMD_REAL_ONE)
def test_the_systemd_stand_in_hands_everything_else_to_the_real_helper(tmp_path: Path, args: list[str]) -> None:
    _systemd_root(tmp_path)
    assert _stand_in(tmp_path, "postinst", args, standins.SYSTEMD_HELPER, SYSTEMD_REAL) == \
        (0, f"REAL {' '.join(args)}\n")
    assert _answered(tmp_path) == []


@pytest.mark.parametrize("there, args", [
    ("etc/systemd/system/fstrim.timer", ["unmask", "fstrim.timer"]),  # masked (a link to /dev/null)
    ("var/lib/systemd/deb-systemd-helper-masked", ["unmask", "other.timer"]),  # a dir unmask would tidy
    ("var/lib/systemd/deb-systemd-user-helper-masked", ["unmask", "other.timer"]),
    ("var/lib/systemd/deb-systemd-helper-enabled/fstrim.timer.dsh-also", ["was-enabled", "fstrim.timer"]),
    ("var/lib/systemd/deb-systemd-user-helper-enabled/x.service.dsh-also", ["--user", "was-enabled", "x.service"]),
])
def test_what_an_earlier_install_left_goes_to_the_real_helper(tmp_path: Path, there: str, args: list[str]) -> None:
    root = _systemd_root(tmp_path)
    path = root / there
    path.parent.mkdir(parents=True, exist_ok=True)
    if there.endswith("-masked"):
        path.mkdir()
    elif there.endswith(".dsh-also"):
        path.write_text("/etc/systemd/system/timers.target.wants/fstrim.timer\n")
    else:
        path.symlink_to("/dev/null")
    assert _stand_in(tmp_path, "postinst", args, standins.SYSTEMD_HELPER, SYSTEMD_REAL) == \
        (0, f"REAL {' '.join(args)}\n")


@pytest.mark.parametrize("env", [{"_DEB_SYSTEMD_HELPER_DEBUG": "1"}, {"DPKG_MAINTSCRIPT_PACKAGE": ""}])
def test_systemd_debugging_or_no_package_goes_to_the_real_helper(tmp_path: Path, env: dict[str, str]) -> None:
    _systemd_root(tmp_path)
    args = ["unmask", "fstrim.timer"]
    assert _stand_in(tmp_path, "postinst", args, standins.SYSTEMD_HELPER, SYSTEMD_REAL, **env) == \
        (0, f"REAL {' '.join(args)}\n")


@pytest.mark.skipif(not Path(SYSTEMD_REAL).exists(), reason="needs the host's deb-systemd-helper (init-system-helpers)")
@pytest.mark.parametrize("args, said", ONE_ANSWER)
def test_where_the_systemd_stand_in_answers_the_real_helper_says_the_same(tmp_path: Path, args: list[str],
                                                                         said: str) -> None:
    root = _systemd_root(tmp_path)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    cp = subprocess.run(["perl", SYSTEMD_REAL, *args],
                        env={"PATH": "/usr/bin:/bin", "DPKG_MAINTSCRIPT_NAME": "postinst",
                             "DPKG_MAINTSCRIPT_PACKAGE": "p", "DPKG_ROOT": str(root)},
                        capture_output=True, text=True, timeout=30)
    assert (cp.returncode, cp.stdout, cp.stderr) == (0, "", said)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before
