"""doctor checks against fakes: every path, command and PATH lookup comes from a DoctorEnv."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from podrepro.arches import lookup
from podrepro.cli.main import run_cli
from podrepro.doctor import checks as doctor_checks
from podrepro.doctor import env as doctor_env
from podrepro.doctor import report as doctor_report
from podrepro.doctor.env import DoctorEnv
from podrepro.engine.info import PodmanInfo
from podrepro.findings import Distro, Finding

SAMPLES = Path(__file__).parent / "samples" / "binfmt"
DEBIAN = Distro("debian", "debian", root=False)
FEDORA = Distro("fedora", "fedora", root=False)

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"

PODMAN_INFO = {  # trimmed from a real `podman info --format json` (podman 4.3.1, rootless)
    "host": {"cgroupVersion": "v1", "cgroupManager": "cgroupfs", "ociRuntime": {"name": "runc"},
             "security": {"rootless": True, "selinuxEnabled": False}},
    "store": {"graphDriverName": "overlay"},
    "version": {"Version": "4.3.1"},
}


def fake_run(info: dict[str, Any] | None = None, rc: int = 0, stderr: bytes = b"",
             probe_ok: bool = True) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    def run(argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        if argv[0] == "podman":
            return subprocess.CompletedProcess(list(argv), rc, json.dumps(info or PODMAN_INFO).encode(), stderr)
        alias = os.path.basename(argv[0]).removeprefix("probe-")
        out = f"podrepro-probe {alias}\n".encode() if probe_ok else b""
        return subprocess.CompletedProcess(list(argv), 7 if probe_ok else 126, out, b"")
    return run


@pytest.fixture
def hroot(tmp_path: Path) -> Path:
    """A host root with everything a rootless podrepro needs."""
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc/subuid").write_text("alice:100000:65536\n")
    (r / "etc/subgid").write_text("1000:100000:65536\n")
    (r / "etc/os-release").write_text("ID=debian\n")
    (r / "dev/net").mkdir(parents=True)
    (r / "dev/net/tun").write_text("")
    (r / "dev/net/tun").chmod(0o666)
    (r / "usr/share/keyrings").mkdir(parents=True)
    (r / "usr/share/keyrings/debian-archive-keyring.gpg").write_bytes(b"keys")
    from tests.unit.test_binfmt import fake_elf

    for q in ("arm", "mipsel", "mips64el"):
        fake_elf(r / f"usr/bin/qemu-{q}-static")
    mi = tmp_path / "mountinfo"
    mi.write_text(HYBRID)
    return r


def make_env(hroot: Path, tmp_path: Path, **kw: Any) -> DoctorEnv:
    tools = {"podman", "mmdebstrap", "newuidmap", "runc"}
    base = DoctorEnv(
        binfmt_dir=str(SAMPLES / "fedora"), euid=1000, user="alice", home=str(tmp_path / "home"),
        kernel_release="6.1.0-18-amd64", root=str(hroot), mountinfo=str(tmp_path / "mountinfo"),
        which=lambda n: f"/usr/bin/{n}" if n in tools else None, run=fake_run(),
    )
    return dataclasses.replace(base, **kw)


def checks(report: doctor_report.DoctorReport) -> dict[str, Finding]:
    return {f"{f.check}:{f.arch}" if f.arch else f.check: f for f in report.findings}


def test_all_good_exits_zero(hroot: Path, tmp_path: Path) -> None:
    rep = doctor_report.run_doctor([lookup("arm"), lookup("mips"), lookup("i386")], make_env(hroot, tmp_path), DEBIAN)
    c = checks(rep)
    assert rep.ok and rep.exit_code == 0, [f for f in rep.findings if f.severity == "fail"]
    assert c["podman"].message == "podman 4.3.1" and c["oci-runtime"].severity == "ok"
    assert c["binfmt.probe:arm"].severity == "ok" and rep.probes == {"arm": "ok", "mips": "ok", "i386": "unsupported"}
    assert c["binfmt.flag-c:arm"].severity == "warn"  # Fedora's F-only handler
    assert "6.1.0" in c["kernel"].message and "needs >= 6.7" in c["kernel"].message
    d = rep.to_dict()
    assert d["version"] == 1 and d["ok"] is True and d["exit_code"] == 0
    assert d["host"]["private_binfmt_possible"] is False  # type: ignore[index]
    assert set(d) == {"version", "podrepro", "ok", "exit_code", "host", "podman", "arches", "checks"}
    arm = d["arches"]["arm"]  # type: ignore[index]
    assert arm["usable"] is True and arm["probe"] == "ok" and arm["entry"]["name"] == "qemu-arm"
    assert json.loads(rep.to_json()) == d


def test_no_podman_and_no_binfmt_mount(hroot: Path, tmp_path: Path) -> None:
    empty = tmp_path / "binfmt_misc"
    empty.mkdir()
    env = make_env(hroot, tmp_path, binfmt_dir=str(empty), which=lambda n: None)
    rep = doctor_report.run_doctor([lookup("mips")], env, FEDORA)
    c = checks(rep)
    assert rep.exit_code == 1
    assert c["podman"].severity == "fail" and c["podman"].fix == "sudo dnf install -y podman"
    assert c["binfmt.mounted"].fix == f"sudo mount -t binfmt_misc binfmt_misc {empty}"
    assert c["binfmt.handler:mips"].severity == "fail"
    assert rep.to_dict()["podman"] == {"present": False}
    assert rep.probes["mips"] == "skipped"


def test_podman_info_failure_is_a_fail_line(hroot: Path, tmp_path: Path) -> None:
    env = make_env(hroot, tmp_path, run=fake_run(rc=125, stderr=b"Error: cannot find newuidmap: uidmap\n"))
    c = checks(doctor_report.run_doctor([], env, DEBIAN))
    assert c["podman"].severity == "fail" and "cannot find newuidmap" in c["podman"].message
    assert c["podman"].fix == "sudo apt-get install -y uidmap"


def test_crun_on_hybrid_cgroups(hroot: Path, tmp_path: Path) -> None:
    info = json.loads(json.dumps(PODMAN_INFO))
    info["host"]["ociRuntime"]["name"] = "crun"
    env = make_env(hroot, tmp_path, run=fake_run(info), which=lambda n: "/usr/bin/x" if n != "runc" else None)
    c = checks(doctor_report.run_doctor([], env, DEBIAN))
    conf = tmp_path / "home/.config/containers/containers.conf"
    assert c["cgroup"].message == "cgroups hybrid"
    assert c["oci-runtime"].severity == "fail"
    assert c["oci-runtime"].fix == (
        f"sudo apt-get install -y runc && mkdir -p {conf.parent} && printf '%s\\n' '[engine]' "
        f"'runtime = \"runc\"' 'cgroup_manager = \"cgroupfs\"' 'events_logger = \"file\"' > {conf}")
    # the fix really writes a config podman reads
    subprocess.run(["sh", "-c", c["oci-runtime"].fix.split(" && ", 1)[1]], check=True)
    import tomllib

    assert tomllib.loads(conf.read_text())["engine"]["runtime"] == "runc"
    # an existing file gets the edit spelled out instead of being overwritten
    c = checks(doctor_report.run_doctor([], env, DEBIAN))
    assert c["oci-runtime"].fix is not None and c["oci-runtime"].fix.endswith(
        f"edit {conf}: in its [engine] table set runtime = \"runc\", cgroup_manager = \"cgroupfs\", "
        "events_logger = \"file\"")
    # crun on pure cgroup2 is fine
    (tmp_path / "mountinfo").write_text(V2)
    c = checks(doctor_report.run_doctor([], env, DEBIAN))
    assert c["cgroup"].message == "cgroups v2" and c["oci-runtime"].severity == "ok"


def test_vfs_storage_warns_with_fix(hroot: Path, tmp_path: Path) -> None:
    info = json.loads(json.dumps(PODMAN_INFO))
    info["store"]["graphDriverName"] = "vfs"
    rep = doctor_report.run_doctor([], make_env(hroot, tmp_path, run=fake_run(info)), DEBIAN)
    f = checks(rep)["storage-driver"]
    conf = tmp_path / "home/.config/containers/storage.conf"
    assert f.severity == "warn" and "podman system reset" in f.message
    assert f.fix == (f"mkdir -p {conf.parent} && printf '%s\\n' '[storage]' 'driver = \"overlay\"' > {conf}"
                     " && podman system reset")
    assert rep.ok  # slow is not broken


def test_subids(hroot: Path, tmp_path: Path) -> None:
    c = checks(doctor_report.run_doctor([], make_env(hroot, tmp_path), DEBIAN))
    assert c["subuid"].severity == "ok" and c["subgid"].severity == "ok"  # subgid matched by uid 1000
    (hroot / "etc/subuid").write_text("bob:100000:65536\n")
    (hroot / "etc/subgid").write_text("alice:100000:1000\n")
    c = checks(doctor_report.run_doctor([], make_env(hroot, tmp_path), DEBIAN))
    assert c["subuid"].severity == "fail"
    assert c["subuid"].fix == "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"
    assert c["subgid"].severity == "warn" and "only 1000" in c["subgid"].message
    assert doctor_env.subid_count("a:1:5\na:10:5\nbad\n", "a", 7) == 10


def test_network(hroot: Path, tmp_path: Path) -> None:
    (hroot / "dev/net/tun").unlink()
    c = checks(doctor_report.run_doctor([], make_env(hroot, tmp_path), DEBIAN))
    assert c["network"].severity == "fail" and c["network"].fix is not None
    assert c["network"].fix.startswith("sudo chmod 0666 /dev/net/tun")
    conf = tmp_path / "home/.config/containers/containers.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text('[containers]\nnetns = "host"\n')
    c = checks(doctor_report.run_doctor([], make_env(hroot, tmp_path), DEBIAN))
    assert c["network"].severity == "ok" and "netns" in c["network"].message


def test_root_user_gets_warning_not_failure(hroot: Path, tmp_path: Path) -> None:
    info = json.loads(json.dumps(PODMAN_INFO))
    info["host"]["security"]["rootless"] = False
    rep = doctor_report.run_doctor([], make_env(hroot, tmp_path, euid=0, run=fake_run(info)), DEBIAN)
    c = checks(rep)
    assert c["podman.rootless"].severity == "warn" and c["subuid"].severity == "info"
    assert rep.ok


@pytest.mark.parametrize(("enforce", "mode"), [("1\n", "enforcing"), ("0\n", "permissive"), (None, "disabled")])
def test_selinux(hroot: Path, tmp_path: Path, enforce: str | None, mode: str) -> None:
    if enforce is not None:
        (hroot / "sys/fs/selinux").mkdir(parents=True)
        (hroot / "sys/fs/selinux/enforce").write_text(enforce)
    c = checks(doctor_report.run_doctor([], make_env(hroot, tmp_path), DEBIAN))
    assert c["selinux"].message.startswith(f"SELinux {mode}")
    if mode == "enforcing":
        # what doctor says is what a run does: the same option in the run's podman argv, no relabelling
        from podrepro.arches import lookup
        from podrepro.runner import RunSpec, run_argv

        argv = run_argv("podman", RunSpec(arch=lookup("arm"), image="i", command=("true",), project_root=tmp_path,
                                          workdir=tmp_path, selinux=True), {})
        opt = argv[argv.index("--security-opt") + 1]
        assert f"--security-opt {opt}" in c["selinux"].message and "relabel" in c["selinux"].message
        assert not any(v.endswith((":z", ":Z")) for v in argv)


def test_bootstrap_tools_missing(hroot: Path, tmp_path: Path) -> None:
    (hroot / "usr/share/keyrings/debian-archive-keyring.gpg").unlink()
    env = make_env(hroot, tmp_path, which=lambda n: "/usr/bin/podman" if n == "podman" else None)
    c = checks(doctor_report.run_doctor([], env, FEDORA))
    assert c["mmdebstrap"].fix == "sudo dnf install -y mmdebstrap"
    assert c["debian-archive-keyring"].fix == "sudo dnf install -y debian-keyring"


def test_qemu_missing_for_unusable_arch_fails(hroot: Path, tmp_path: Path) -> None:
    env = make_env(hroot, tmp_path, binfmt_dir=str(SAMPLES / "misc"))
    c = checks(doctor_report.run_doctor([lookup("s390x")], env, DEBIAN))
    assert c["qemu-user-static"].severity == "fail"
    assert c["qemu-user-static"].fix == "sudo apt-get install -y qemu-user-static"
    assert c["binfmt.handler:s390x"].fix == "podrepro binfmt register s390x"


def test_the_kernel_rule_is_the_one_private_binfmt_uses(hroot: Path, tmp_path: Path) -> None:
    from podrepro import privbinfmt

    for release, possible in (("6.18.44", True), ("6.6.9", False)):
        rep = doctor_report.run_doctor([], dataclasses.replace(make_env(hroot, tmp_path), kernel_release=release), DEBIAN)
        assert ("zero-sudo emulation possible" in checks(rep)["kernel"].message) is possible
        assert rep.to_dict()["host"]["private_binfmt_possible"] is possible  # type: ignore[index]
        # --private-binfmt's auto mode decides by the same rule
        assert privbinfmt.resolve_mode("auto", host_usable=lambda: False, kernel_release=release) == (
            "private" if possible else "host")


def test_probe_failure_makes_arch_unusable(hroot: Path, tmp_path: Path) -> None:
    rep = doctor_report.run_doctor([lookup("arm")], make_env(hroot, tmp_path, run=fake_run(probe_ok=False)), DEBIAN)
    assert rep.exit_code == 1 and rep.probes["arm"] == "failed"
    assert rep.to_dict()["arches"]["arm"]["usable"] is False  # type: ignore[index]
    assert checks(rep)["binfmt.probe:arm"].fix == "podrepro binfmt register arm --force"


def test_crashing_check_becomes_a_fail_line(hroot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(env: DoctorEnv) -> list[Finding]:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(doctor_checks, "check_selinux", boom)
    rep = doctor_report.run_doctor([], make_env(hroot, tmp_path), DEBIAN)
    assert checks(rep)["internal"].message == "check selinux crashed: RuntimeError: kaboom"


def test_cgroup_version_parser() -> None:
    assert doctor_env.cgroup_version(HYBRID) == "hybrid"
    assert doctor_env.cgroup_version(V2) == "v2"
    assert doctor_env.cgroup_version("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n") == "v1"
    assert doctor_env.cgroup_version("") is None and doctor_env.cgroup_version(None) is None


def test_podman_info_parsing(hroot: Path, tmp_path: Path) -> None:
    assert doctor_env.podman_info(make_env(hroot, tmp_path)) == PodmanInfo(
        True, "4.3.1", True, "v1", "runc", "overlay")

    def timeout(argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        raise subprocess.TimeoutExpired(argv, 60)

    assert "did not answer" in (doctor_env.podman_info(make_env(hroot, tmp_path, run=timeout)).error or "")


# --- the CLI: exit codes, no traceback ----------------------------------------------------------


def test_cli_doctor_without_podman_or_binfmt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "binfmt_misc"
    empty.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))          # no podman, nothing else either
    monkeypatch.setenv("PODREPRO_BINFMT_DIR", str(empty))
    assert run_cli(["doctor", "mips", "--json"]) == 1
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert d["version"] == 1 and d["exit_code"] == 1 and d["podman"] == {"present": False}
    fixes = {c["check"]: c["fix"] for c in d["checks"] if c["severity"] == "fail"}
    assert fixes["podman"].endswith("podman")
    assert fixes["binfmt.mounted"].endswith(f"mount -t binfmt_misc binfmt_misc {empty}")
    assert "Traceback" not in err
    assert run_cli(["doctor", "mips"]) == 1
    out, err = capsys.readouterr()
    assert "FAIL  podman" in out and "fix: " in out and "not ready" in out and "Traceback" not in err


def test_cli_register_refuses_without_tty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_binfmt import fake_elf

    d = tmp_path / "bm"
    shutil.copytree(SAMPLES / "misc", d)
    qemu = fake_elf(tmp_path / "bin" / "qemu-mipsel-static")
    monkeypatch.setenv("PATH", f"{qemu.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PODREPRO_BINFMT_DIR", str(d))
    monkeypatch.setenv("PODREPRO_BINFMT_D", str(tmp_path / "binfmt.d"))
    from podrepro.binfmt import register as binfmt_register

    monkeypatch.setattr(binfmt_register, "privilege_prefix", lambda euid, which: ())
    monkeypatch.setattr(binfmt_register, "root_owned_chain", lambda path, root="/": True)  # a fake qemu in tmp
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115 - closed by pytest's teardown
    assert run_cli(["binfmt", "register", "mips"]) == 1
    out, err = capsys.readouterr()
    assert f"tee {d}/register" in out and str(qemu) in out
    assert "refusing to register without confirmation: stdin is not a terminal" in err and "--yes" in err
    assert not (d / "podrepro-mipsel").exists() and not (tmp_path / "binfmt.d").exists()


def test_cli_register_nothing_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_binfmt import fake_elf

    d = tmp_path / "bm"
    shutil.copytree(SAMPLES / "misc", d)
    qemu = fake_elf(tmp_path / "bin" / "qemu-arm-static")
    a = lookup("arm")
    (d / "qemu-arm").write_text(f"enabled\ninterpreter {qemu}\nflags: F\noffset 0\n"
                                f"magic {a.magic.hex()}\nmask {a.mask.hex()}\n")
    monkeypatch.setenv("PODREPRO_BINFMT_DIR", str(d))
    assert run_cli(["binfmt", "register", "arm", "armel"]) == 0
    out, _ = capsys.readouterr()
    assert "handler qemu-arm is usable; nothing to do" in out and "no change made" in out
