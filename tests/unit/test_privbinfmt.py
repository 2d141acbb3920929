"""Zero-sudo emulation: mode choice, the shim's compile-once cache, the podman argv."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from podrepro import elfprobe, privbinfmt
from podrepro.arches import lookup
from podrepro.binfmt.lines import parse_register_line, register_line
from podrepro.binfmt.qemu import kernel_supported
from podrepro.engine import info
from podrepro.errors import HostNotReady, UsageError
from podrepro.findings import Distro
from podrepro.paths import Paths

MIPS64EL = lookup("mips64el")
ARM = lookup("arm")
DEBIAN = Distro("debian", "debian", root=False)
FEDORA = Distro("fedora", "fedora", root=False)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(cache=tmp_path / "cache", config=tmp_path / "config", state=tmp_path / "state")


class FakeCC:
    """Stands in for process.run: records each argv and 'compiles' by writing the -o file."""

    def __init__(self, returncode: int = 0, stderr: bytes = b"") -> None:
        self.calls: list[list[str]] = []
        self.returncode, self.stderr = returncode, stderr

    def __call__(self, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        self.calls.append(argv)
        if self.returncode == 0:
            out = Path(argv[argv.index("-o") + 1])
            out.write_bytes(b"\x7fELF fake shim")
            out.chmod(0o755)
        return subprocess.CompletedProcess(argv, self.returncode, b"", self.stderr)


def _which(*present: str) -> Any:
    return lambda name: f"/usr/bin/{name}" if name in present else None


# ---------------------------------------------------------------------------------------------
# kernel and mode


@pytest.mark.parametrize(("release", "ok"), [
    ("6.18.44", True), ("6.7.0", True), ("6.7", True), ("7.0.1-arch1", True),
    ("6.6.30-1-amd64", False), ("6.1.0-28-amd64", False), ("5.15.0", False), ("weird", False),
])
def test_kernel_supported(release: str, ok: bool) -> None:
    assert kernel_supported(release) is ok


def _never() -> bool:
    raise AssertionError("host handler must not be looked at")


def test_resolve_mode_host_and_private_are_taken_as_said() -> None:
    assert privbinfmt.resolve_mode("host", host_usable=_never, kernel_release="6.1.0") == "host"
    assert privbinfmt.resolve_mode("private", host_usable=_never, kernel_release="6.18.0") == "private"


def test_resolve_mode_private_on_old_kernel_explains() -> None:
    with pytest.raises(HostNotReady) as e:
        privbinfmt.resolve_mode("private", host_usable=_never, kernel_release="6.1.0-28-amd64")
    assert "needs Linux >= 6.7 (this is 6.1.0-28-amd64)" in e.value.message
    assert e.value.hint == "register a host handler once instead: podrepro binfmt register ARCH"


@pytest.mark.parametrize(("host_ok", "release", "mode"), [
    (True, "6.18.0", "host"),      # a working host handler costs nothing: prefer it
    (False, "6.18.0", "private"),
    (False, "6.1.0", "host"),      # neither: host mode, whose check prints the fix
    (True, "6.1.0", "host"),
])
def test_resolve_mode_auto(host_ok: bool, release: str, mode: str) -> None:
    assert privbinfmt.resolve_mode("auto", host_usable=lambda: host_ok, kernel_release=release) == mode


def test_bad_setting_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="binfmt_mode must be one of host, private, auto"):
        privbinfmt.resolve_mode("sometimes", host_usable=_never)


# ---------------------------------------------------------------------------------------------
# the shim source, its hash, compiling once


def test_shim_source_is_shipped_with_the_package() -> None:
    src = privbinfmt.shim_source()
    assert b"unshare(CLONE_NEWUSER | CLONE_NEWNS)" in src and b"PR_CAPBSET_DROP" in src


def test_source_hash_depends_on_source_and_flags() -> None:
    h = privbinfmt.source_hash(b"int main(){}")
    assert h == privbinfmt.source_hash(b"int main(){}") and len(h) == 16
    assert h != privbinfmt.source_hash(b"int main(){return 1;}")
    assert h != privbinfmt.source_hash(b"int main(){}", ("-static", "-O2"))


def test_compile_argv_is_static_and_small() -> None:
    assert privbinfmt.compile_argv("/usr/bin/cc", Path("/t/s.c"), Path("/t/out")) == [
        "/usr/bin/cc", "-static", "-Os", "-s", "-o", "/t/out", "/t/s.c"]


def test_ensure_helper_compiles_once_per_source(paths: Paths) -> None:
    cc = FakeCC()
    first = privbinfmt.ensure_helper(paths, run=cc, which=_which("cc"), distro=DEBIAN, source=b"v1")
    assert first == paths.cache / "native" / f"binfmt-shim-{privbinfmt.source_hash(b'v1')}"
    assert first.read_bytes() == b"\x7fELF fake shim"
    assert len(cc.calls) == 1 and cc.calls[0][0] == "/usr/bin/cc" and "-static" in cc.calls[0]
    assert (paths.cache / "CACHEDIR.TAG").is_file()

    again = privbinfmt.ensure_helper(paths, run=cc, which=_which("cc"), distro=DEBIAN, source=b"v1")
    assert again == first and len(cc.calls) == 1          # cached: no compiler run

    newer = privbinfmt.ensure_helper(paths, run=cc, which=_which("cc"), distro=DEBIAN, source=b"v2")
    assert newer != first and len(cc.calls) == 2
    assert not first.exists()                               # the stale helper is removed
    assert sorted(p.name for p in (paths.cache / "native").iterdir()) == [newer.name]  # no temp dirs left


def test_ensure_helper_prefers_cc_then_gcc(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC", raising=False)
    cc = FakeCC()
    privbinfmt.ensure_helper(paths, run=cc, which=_which("gcc", "clang"), distro=DEBIAN, source=b"x")
    assert cc.calls[0][0] == "/usr/bin/gcc"


@pytest.mark.parametrize(("distro", "hint"), [
    (DEBIAN, "sudo apt-get install -y gcc libc6-dev"),
    (FEDORA, "sudo dnf install -y gcc glibc-static"),
    (Distro("debian", "debian", root=True), "apt-get install -y gcc libc6-dev"),
])
def test_no_compiler_says_what_to_install(paths: Paths, distro: Distro, hint: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(HostNotReady) as e:
        privbinfmt.ensure_helper(paths, run=FakeCC(), which=_which(), distro=distro, source=b"x")
    assert "no C compiler" in e.value.message and e.value.hint == hint


def test_missing_static_libc_says_what_to_install(paths: Paths) -> None:
    cc = FakeCC(1, b"/usr/bin/ld: cannot find -lc: No such file or directory\ncollect2: error: ld returned 1 exit status\n")
    with pytest.raises(HostNotReady) as e:
        privbinfmt.ensure_helper(paths, run=cc, which=_which("cc"), distro=FEDORA, source=b"x")
    assert "static C library is missing" in e.value.message
    assert e.value.hint == "sudo dnf install -y gcc glibc-static"
    assert list((paths.cache / "native").iterdir()) == []   # nothing half-written stays behind


def test_other_compile_failure_shows_the_last_line(paths: Paths) -> None:
    cc = FakeCC(1, b"s.c:1: error: something\n")
    with pytest.raises(HostNotReady, match=r"compiling it failed: s\.c:1: error: something"):
        privbinfmt.ensure_helper(paths, run=cc, which=_which("cc"), distro=DEBIAN, source=b"x")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_the_real_shim_compiles_without_warnings(tmp_path: Path) -> None:
    src = tmp_path / privbinfmt.SOURCE
    src.write_bytes(privbinfmt.shim_source())
    cp = subprocess.run(["cc", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", str(src)],
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr


# ---------------------------------------------------------------------------------------------
# flags and the podman argv


@pytest.mark.parametrize(("qemu", "version", "kernel", "want"), [
    ("/dev/.podrepro/qemu-arm-static", (7, 2), (6, 18), "FPC"),
    ("/dev/.podrepro/qemu-arm-static", (5, 2), (6, 18), "FC"),     # qemu cannot tell P was used
    ("/dev/.podrepro/qemu-arm-static", None, (6, 18), "FC"),       # unknown version: no P
    ("/dev/.podrepro/arm-binfmt-P", None, (6, 18), "FPC"),         # Debian's P wrapper name
])
def test_flags(qemu: str, version: tuple[int, int] | None, kernel: tuple[int, int], want: str) -> None:
    assert privbinfmt.flags(qemu, version, kernel) == want


def test_qemu_keeps_its_basename_inside() -> None:
    assert privbinfmt.qemu_in_container("/usr/bin/qemu-arm-static") == "/dev/.podrepro/qemu-arm-static"
    assert privbinfmt.qemu_in_container("/usr/libexec/qemu-binfmt/arm-binfmt-P") == "/dev/.podrepro/arm-binfmt-P"


def test_podman_args() -> None:
    args = privbinfmt.podman_args(MIPS64EL, "/c/native/binfmt-shim-abc", "/usr/bin/qemu-mips64el-static",
                                  user=(1000, 1001), flag_set="FPC")
    assert args[:6] == [
        "--volume", "/c/native/binfmt-shim-abc:/dev/.podrepro/binfmt-shim:ro",
        "--volume", "/usr/bin/qemu-mips64el-static:/dev/.podrepro/qemu-mips64el-static:ro",
        "--user", "0:0",
    ]
    assert args[6] == "--entrypoint" and len(args) == 8
    ep = json.loads(args[7])
    assert ep[:2] == ["/dev/.podrepro/binfmt-shim", "-r"]
    assert ep[3:] == ["-u", "1000", "-g", "1001", "--"]
    line = ep[2]
    assert line == register_line(MIPS64EL, "/dev/.podrepro/qemu-mips64el-static", "FPC")
    entry = parse_register_line(line)
    assert entry.interpreter == "/dev/.podrepro/qemu-mips64el-static" and entry.flags == "FPC"
    assert entry.matches(elfprobe.header(MIPS64EL)) and not entry.matches(elfprobe.header(ARM))


def test_podman_args_entrypoint_is_valid_json_despite_backslashes() -> None:
    raw = privbinfmt.podman_args(ARM, "/h", "/usr/bin/qemu-arm-static")[-1]
    assert "\\\\x7f" in raw                      # escaped for JSON, so podman parses the array
    assert json.loads(raw)[-1] == "--"           # no user: the command runs as root, no -u/-g
    assert "-u" not in json.loads(raw)


def test_shim_argv_several_lines() -> None:
    assert privbinfmt.shim_argv(["A", "B"], user=None) == ["/dev/.podrepro/binfmt-shim", "-r", "A", "-r", "B", "--"]


def test_find_qemu(tmp_path: Path) -> None:
    with pytest.raises(HostNotReady) as e:
        privbinfmt.find_qemu(ARM, DEBIAN, which=_which(), root=str(tmp_path))
    assert e.value.hint == "sudo apt-get install -y qemu-user-static"
    with pytest.raises(UsageError, match="runs natively"):
        privbinfmt.find_qemu(lookup("i386"), DEBIAN)


def test_prepare(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    assert privbinfmt.prepare(lookup("i386"), paths) == []
    with pytest.raises(HostNotReady, match=r"needs Linux >= 6\.7"):
        privbinfmt.prepare(ARM, paths, kernel_release="6.1.0")
    monkeypatch.setattr(privbinfmt, "find_qemu", lambda arch: "/usr/bin/qemu-arm-static")
    monkeypatch.setattr(privbinfmt, "ensure_helper", lambda p: p.cache / "native" / "binfmt-shim-x")
    args = privbinfmt.prepare(ARM, paths, user=(5, 6), qemu_version=lambda q: (7, 2), kernel_release="6.18.1")
    assert args == privbinfmt.podman_args(ARM, paths.cache / "native" / "binfmt-shim-x",
                                          "/usr/bin/qemu-arm-static", user=(5, 6), flag_set="FPC")


# ---------------------------------------------------------------------------------------------
# podman build: the OCI-runtime wrapper


def _wrapper_module() -> Any:
    """native/oci_wrapper.py as a module (it is a script template, not a package module)."""
    import importlib.util

    path = Path(privbinfmt.__file__).parent / "native" / privbinfmt.WRAPPER_SOURCE
    spec = importlib.util.spec_from_file_location("podrepro_oci_wrapper", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CONFIG = {"runtime": "/usr/bin/runc", "shim_inside": "/dev/.podrepro/binfmt-shim", "lines": [":L:"],
          "mounts": [["/c/shim", "/dev/.podrepro/binfmt-shim"], ["/usr/bin/qemu-arm-static", "/dev/.podrepro/qemu-arm-static"]]}
CAPS = ["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"]


@pytest.mark.parametrize(("args", "index"), [
    (["create", "--bundle", "/b", "id"], 0),
    (["--root", "/r", "--log-format", "json", "create", "--bundle", "/b", "id"], 4),
    (["--root", "create", "run"], 2),        # a value that looks like a subcommand is still a value
    (["--systemd-cgroup", "start", "id"], 1),
    (["--version"], None),
])
def test_wrapper_finds_the_subcommand(args: list[str], index: int | None) -> None:
    assert _wrapper_module()._subcommand(args) == index


def test_wrapper_finds_the_bundle() -> None:
    w = _wrapper_module()
    assert w._bundle(["--bundle", "/b", "--pid-file", "/b/pid", "id"]) == "/b"
    assert w._bundle(["-b", "/x", "id"]) == "/x"
    assert w._bundle(["--bundle=/y", "id"]) == "/y"
    assert w._bundle(["id"]) == "."


def test_wrapper_root_step() -> None:
    spec = {"process": {"args": ["/bin/sh", "-c", "make"], "user": {"uid": 0, "gid": 0, "additionalGids": [0]},
                        "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS}},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]}
    out = _wrapper_module().patch_spec(spec, CONFIG)
    assert out["process"]["args"] == ["/dev/.podrepro/binfmt-shim", "-r", ":L:", "--", "/bin/sh", "-c", "make"]
    assert out["process"]["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert out["mounts"][1:] == [
        {"destination": "/dev/.podrepro/binfmt-shim", "type": "bind", "source": "/c/shim",
         "options": ["bind", "ro", "nosuid", "nodev"]},
        {"destination": "/dev/.podrepro/qemu-arm-static", "type": "bind", "source": "/usr/bin/qemu-arm-static",
         "options": ["bind", "ro", "nosuid", "nodev"]},
    ]


def test_wrapper_non_root_step_starts_as_root_and_hands_over_the_user() -> None:
    spec = {"process": {"args": ["id"], "user": {"uid": 4242, "gid": 4243, "additionalGids": [4243, 27]},
                        "capabilities": {"bounding": CAPS, "effective": [], "permitted": []}}}
    p = _wrapper_module().patch_spec(spec, CONFIG)["process"]
    assert p["args"] == ["/dev/.podrepro/binfmt-shim", "-r", ":L:", "-u", "4242", "-g", "4243", "-G", "4243,27",
                         "--", "id"]
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert p["capabilities"]["effective"] == CAPS == p["capabilities"]["permitted"]


def test_wrapper_main_patches_create_and_execs_the_real_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = _wrapper_module()
    (tmp_path / "config.json").write_text(json.dumps({"process": {"args": ["true"], "user": {"uid": 0, "gid": 0}}}))
    execs: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(w.os, "execv", lambda path, argv: execs.append((path, argv)))
    w.main(["wrapper", "--root", "/r", "create", "--bundle", str(tmp_path), "id"], CONFIG)
    assert execs == [("/usr/bin/runc", ["/usr/bin/runc", "--root", "/r", "create", "--bundle", str(tmp_path), "id"])]
    assert json.loads((tmp_path / "config.json").read_text())["process"]["args"][0] == "/dev/.podrepro/binfmt-shim"
    w.main(["wrapper", "start", "id"], CONFIG)               # anything else: untouched, passed through
    assert execs[-1] == ("/usr/bin/runc", ["/usr/bin/runc", "start", "id"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_runtime_wrapper_file(paths: Paths) -> None:
    kw: dict[str, Any] = {"runtime": "/usr/bin/runc", "helper": "/c/shim", "qemu": "/usr/bin/qemu-arm-static",
                          "flag_set": "FPC", "python": "/venv/bin/python3"}
    w = privbinfmt.ensure_runtime_wrapper(paths, ARM, **kw)
    text = w.read_text()
    assert text.startswith("#!/venv/bin/python3 -I\nCONFIG = {")
    config = json.loads(text.splitlines()[1].removeprefix("CONFIG = "))
    assert config["lines"] == [register_line(ARM, "/dev/.podrepro/qemu-arm-static", "FPC")]
    assert config["mounts"][1] == ["/usr/bin/qemu-arm-static", "/dev/.podrepro/qemu-arm-static"]
    assert w.stat().st_mode & 0o777 == 0o755
    assert privbinfmt.ensure_runtime_wrapper(paths, ARM, **kw) == w           # same content, same file
    assert privbinfmt.ensure_runtime_wrapper(paths, ARM, **{**kw, "runtime": "/usr/bin/crun"}) != w
    with pytest.raises(HostNotReady, match="whitespace"):
        privbinfmt.ensure_runtime_wrapper(paths, ARM, **{**kw, "python": "/my venv/bin/python3"})


def test_oci_runtime_path() -> None:
    def fake(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        assert argv[1:] == ["info", "--format", "{{.Host.OCIRuntime.Path}}"]
        return subprocess.CompletedProcess(argv, 0, b"/usr/bin/runc\n", b"")

    assert info.oci_runtime_path(run=fake) == "/usr/bin/runc"
    with pytest.raises(HostNotReady):
        info.oci_runtime_path(run=lambda argv, **kw: subprocess.CompletedProcess(argv, 125, b"", b"boom"))
