"""Unit tests of the pure parts of tests/hosts/testvm.py (no VM, no root, no network)."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

_PATH = Path(__file__).resolve().parents[1] / "hosts" / "testvm.py"


def _load() -> ModuleType:
    # tests/hosts is a directory of scripts, not a package: load the file by path.
    spec = importlib.util.spec_from_file_location("testvm", _PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["testvm"] = mod  # dataclasses look the module up while the class is created
    spec.loader.exec_module(mod)
    return mod


tv = _load()


# ---- recipe hash ----

def test_recipe_hash_is_stable_and_short() -> None:
    assert tv.recipe_hash() == tv.recipe_hash()
    assert len(tv.recipe_hash()) == 16
    int(tv.recipe_hash(), 16)


def test_recipe_hash_ignores_package_order_but_not_content(monkeypatch: pytest.MonkeyPatch) -> None:
    base = tv.recipe_hash()
    monkeypatch.setattr(tv, "PACKAGES", tuple(reversed(tv.PACKAGES)))
    assert tv.recipe_hash() == base
    monkeypatch.setattr(tv, "PACKAGES", (*tv.PACKAGES, "strace"))
    assert tv.recipe_hash() != base


@pytest.mark.parametrize("attr, value", [("SUITE", "forky"), ("RECIPE_VERSION", 999), ("DISK_SIZE", "9G")])
def test_recipe_hash_changes_with_recipe(monkeypatch: pytest.MonkeyPatch, attr: str, value: object) -> None:
    base = tv.recipe_hash()
    monkeypatch.setattr(tv, attr, value)
    assert tv.recipe_hash() != base


def test_recipe_hash_covers_guest_files(monkeypatch: pytest.MonkeyPatch) -> None:
    base = tv.recipe_hash()
    files = dict(tv.GUEST_FILES)
    text, mode = files["usr/local/lib/testvm/guest.sh"]
    files["usr/local/lib/testvm/guest.sh"] = (text + "# changed\n", mode)
    monkeypatch.setattr(tv, "GUEST_FILES", files)
    assert tv.recipe_hash() != base


def test_recipe_does_not_contain_the_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    # the image is keyed by what is in it, not by which host mirror served it
    base = tv.recipe_hash()
    monkeypatch.setenv("PODREPRO_TESTVM_MIRROR", "http://mirror.invalid/debian")
    assert tv.recipe_hash() == base


def test_recipe_has_what_issue_7_needs() -> None:
    for pkg in ("linux-image-amd64", "systemd-sysv", "podman", "crun", "passt", "uidmap",
                "qemu-user-static", "python3-venv", "dbus-user-session", "libpam-systemd"):
        assert pkg in tv.PACKAGES
    assert tv.SUITE == "trixie"


# ---- share parsing ----

@pytest.mark.parametrize(
    "spec, path, tag, ro",
    [
        ("/work/main:src", "/work/main", "src", True),
        ("/work/main:src:ro", "/work/main", "src", True),
        ("/tmp/out:out:rw", "/tmp/out", "out", False),
        ("/a:b/c:tag", "/a:b/c", "tag", True),  # colons in the path
        ("/a:b:tag:rw", "/a:b", "tag", False),
        ("rel/dir:x_1.y-z", "rel/dir", "x_1.y-z", True),
    ],
)
def test_parse_share(spec: str, path: str, tag: str, ro: bool) -> None:
    s = tv.parse_share(spec)
    assert (s.host_path, s.tag, s.readonly) == (Path(path), tag, ro)
    assert s.guest_path == f"/mnt/{tag}"


@pytest.mark.parametrize("spec", ["/only/a/path", ":tag", "/dir:", "/dir:bad tag", "/dir:-x", "/d:" + "t" * 32,
                                  "/dir:testvm-ctl", "/dir:a/b"])
def test_parse_share_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        tv.parse_share(spec)


def test_duplicate_tags_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        tv.check_shares([tv.parse_share("/a:x"), tv.parse_share("/b:x:rw")])
    tv.check_shares([tv.parse_share("/a:x"), tv.parse_share("/b:y")])


# ---- kernel command line and qemu argv ----

def _spec(**kw: object) -> object:
    base = dict(kernel=Path("/c/vmlinuz"), initrd=Path("/c/initrd.img"), disk=Path("/t/overlay.qcow2"),
                shares=(tv.parse_share("/src:src"), tv.parse_share("/out:out:rw")),
                ctl_dir=Path("/t/ctl"), console="file:/t/console.log")
    base.update(kw)
    return tv.VmSpec(**base)


def test_kernel_cmdline() -> None:
    line = tv.kernel_cmdline((tv.parse_share("/src:src"), tv.parse_share("/o:out:rw")), "job")
    words = line.split()
    assert "root=/dev/vda" in words and "console=ttyS0,115200" in words
    assert "testvm.mode=job" in words
    assert "testvm.shares=src:ro,out:rw" in words
    assert "panic=-1" in words  # with -no-reboot: a guest panic ends QEMU instead of hanging
    assert not any(w.startswith("testvm.shares") for w in tv.kernel_cmdline((), "shell").split())
    with pytest.raises(ValueError):
        tv.kernel_cmdline((), "bogus")


def test_qemu_argv_tcg_job() -> None:
    argv = tv.qemu_argv(_spec())
    assert argv[0] == "qemu-system-x86_64"
    joined = shlex.join(argv)
    assert "-accel tcg,thread=multi -cpu max" in joined
    assert "-no-reboot" in argv and "-nodefaults" in argv
    assert argv[argv.index("-kernel") + 1] == "/c/vmlinuz"
    assert argv[argv.index("-initrd") + 1] == "/c/initrd.img"
    assert argv[argv.index("-serial") + 1] == "file:/t/console.log"
    assert "file=/t/overlay.qcow2,if=virtio,format=qcow2" in argv[argv.index("-drive") + 1]
    assert argv[argv.index("-nic") + 1].startswith("user,")
    assert "testvm.mode=job" in argv[argv.index("-append") + 1]


def test_qemu_argv_shares_readonly_and_ctl() -> None:
    argv = tv.qemu_argv(_spec())
    fsdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-fsdev"]
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device" and "9p" in argv[i + 1]]
    assert len(fsdevs) == len(devices) == 3
    assert "path=/src," in fsdevs[0] and fsdevs[0].endswith("readonly=on")
    assert "path=/out," in fsdevs[1] and "readonly" not in fsdevs[1]
    assert "path=/t/ctl," in fsdevs[2] and "readonly" not in fsdevs[2]
    assert [d.rsplit("mount_tag=", 1)[1] for d in devices] == ["src", "out", tv.CTL_TAG]
    # each device points at its own fsdev
    for i, (f, d) in enumerate(zip(fsdevs, devices, strict=True)):
        assert f"id=fs{i}," in f and f"fsdev=fs{i}," in d


def test_qemu_argv_kvm_and_shell() -> None:
    argv = tv.qemu_argv(_spec(accel="kvm", ctl_dir=None, console="mon:stdio", mode="shell", memory_mib=2048, cpus=1))
    assert "-accel kvm -cpu host" in shlex.join(argv)
    assert argv[argv.index("-m") + 1] == "2048" and argv[argv.index("-smp") + 1] == "1"
    assert tv.CTL_TAG not in shlex.join(argv)
    assert "testvm.mode=shell" in argv[argv.index("-append") + 1]


def test_nice_prefix() -> None:
    assert tv.nice(["qemu-system-x86_64", "-x"]) == ["nice", "-n", "10", "qemu-system-x86_64", "-x"]


# ---- job script ----

def test_job_script_quotes_and_passes_exit_code(tmp_path: Path) -> None:
    script = tv.job_script(["sh", "-c", "echo \"$1 $FOO\"; exit 7", "x", "it's"], {"FOO": "a b$c"})
    p = tmp_path / "job.sh"
    p.write_text(script)
    r = subprocess.run(["bash", str(p)], capture_output=True, text=True)
    assert r.returncode == 7
    assert r.stdout == "it's a b$c\n"


def test_job_script_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        tv.job_script([])
    with pytest.raises(ValueError):
        tv.job_script(["true"], {"BAD-NAME": "x"})


# ---- mirror from the host's apt sources ----

DEB822 = """Types: deb
# a comment
URIs: http://archive.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://archive.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_from_deb822() -> None:
    entries = tv.parse_sources(DEB822, deb822=True)
    assert entries[0] == ("http://archive.example/debian", ["bookworm", "bookworm-updates"])
    assert tv.pick_mirror(entries) == "http://archive.example/debian"
    assert tv.pick_mirror(list(reversed(entries))) == "http://archive.example/debian"


def test_mirror_from_one_line_format() -> None:
    text = ("# deb http://commented.example/debian bookworm main\n"
            "deb-src http://src.example/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian/ bookworm main\n")
    entries = tv.parse_sources(text, deb822=False)
    assert entries == [("http://one.example/debian/", ["bookworm"])]
    assert tv.pick_mirror(entries) == "http://one.example/debian"


def test_mirror_skips_disabled_and_src() -> None:
    text = "Types: deb-src\nURIs: http://a.example/debian\nSuites: x\n\nTypes: deb\nEnabled: no\nURIs: http://b.example/debian\nSuites: x\n"
    assert tv.parse_sources(text, deb822=True) == []
    assert tv.pick_mirror([]) is None


def test_mirror_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODREPRO_TESTVM_MIRROR", "http://override.example/debian")
    assert tv.host_mirror() == "http://override.example/debian"


# ---- accel choice ----

def test_pick_accel_explicit() -> None:
    assert tv.pick_accel("tcg") == "tcg"
    assert tv.pick_accel("kvm") == "kvm"
    assert tv.pick_accel("auto") in ("kvm", "tcg")


def test_cli_rejects_run_without_command() -> None:
    with pytest.raises(SystemExit) as e:
        tv.main(["run", "--"])
    assert e.value.code == 2


# ---- leftovers of a SIGKILLed run ----

def test_sweep_stale_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tv, "RUN_PARENT", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, live, foreign = (tmp_path / f"{tv.RUN_PREFIX}{n}" for n in ("stale", "live", "foreign"))
    for d in (stale, live, foreign):
        d.mkdir()
    (stale / "owner.pid").write_text(f"{dead.pid}\n")
    (live / "owner.pid").write_text(f"{os.getpid()}\n")
    tv.sweep_stale_runs()
    assert not stale.exists()
    assert live.exists() and foreign.exists()  # a running testvm's dir, and one without a pid file
