"""binfmt_misc model over real-format sample trees (tests/unit/samples/binfmt, see its README)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from podrepro import elfprobe
from podrepro.arches import ARCHES, Arch, lookup
from podrepro.binfmt import register as binfmt_register
from podrepro.binfmt.analysis import analyze, global_findings
from podrepro.binfmt.elf import elf_is_static, inspect_interpreter
from podrepro.binfmt.lines import build_flags, parse_register_line, read_binfmt_d, register_line
from podrepro.binfmt.qemu import (
    find_static_qemu,
    parse_kernel_version,
    parse_qemu_version,
    preserve_argv0_supported,
    root_owned_chain,
)
from podrepro.binfmt.register import (
    Command,
    HostFacts,
    ensure_handler,
    execute,
    plan_register,
    plan_unregister,
    privilege_prefix,
    register_commands,
    tee,
    unregister_commands,
)
from podrepro.binfmt.state import ENV_BINFMT_D, Entry, parse_entry, read_state
from podrepro.errors import HostNotReady, PodreproError
from podrepro.findings import Distro, Finding, detect_distro

SAMPLES = Path(__file__).parent / "samples" / "binfmt"
DEBIAN = Distro("debian", "debian", root=False)
FEDORA = Distro("fedora", "fedora", root=False)
EMULATED = [a for a in ARCHES if a.emulated]


def fake_elf(path: Path, *, interp: str | None = None) -> Path:
    """A minimal x86_64 ELF: PT_LOAD, plus PT_INTERP when ``interp`` (i.e. dynamically linked)."""
    phs = [struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 0x1000, 0x1000, 0x1000)]
    if interp:
        phs.insert(0, struct.pack("<IIQQQQQQ", 3, 4, 0x200, 0, 0, len(interp) + 1, len(interp) + 1, 1))
    eh = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, len(phs), 0, 0, 0)
    data = (eh + b"".join(phs)).ljust(0x200, b"\0") + (interp or "").encode() + b"\0"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o755)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A host root where every qemu of the table exists the way Debian installs it."""
    r = tmp_path / "root"
    for q in {a.qemu for a in EMULATED}:
        fake_elf(r / f"usr/bin/qemu-{q}-static")
        link = r / f"usr/libexec/qemu-binfmt/{q}-binfmt-P"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f"../../bin/qemu-{q}-static")  # relative, exactly as Debian ships it
    return r


def tree(tmp_path: Path, sample: str) -> Path:
    dst = tmp_path / sample
    shutil.copytree(SAMPLES / sample, dst)
    return dst


def set_field(entry: Path, key: str, value: str) -> None:
    lines = entry.read_text().splitlines()
    out = [f"{key} {value}" if ln.split(" ")[0] == key else ln for ln in lines]
    assert out != lines, f"no {key} line in {entry}"
    entry.write_text("\n".join(out) + "\n")


def by_check(findings: tuple[Finding, ...] | list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


# --- parsing -----------------------------------------------------------------------------------


def test_debian_tree_parses_every_entry() -> None:
    st = read_state(str(SAMPLES / "debian-bookworm"))
    assert st.mounted and st.enabled and not st.unreadable
    names = {e.name for e in st.entries}
    assert len(names) == 32 and "register" not in names and "status" not in names
    arm = st.get("qemu-arm")
    assert arm is not None
    assert (arm.enabled, arm.interpreter, arm.flags, arm.offset) == (
        True, "/usr/libexec/qemu-binfmt/arm-binfmt-P", "PF", 0)
    assert arm.magic == lookup("arm").magic and arm.mask == lookup("arm").mask
    jar = st.get("jar")
    assert jar is not None and jar.mask is None and jar.magic == b"PK\x03\x04" and jar.flags == ""
    mipsel = st.get("qemu-mipsel")
    assert mipsel is not None and len(mipsel.magic) == 37  # QEMU 7.2's o32-only mask reaches byte 36


def test_extension_entry_is_parsed_and_never_matches_elf() -> None:
    st = read_state(str(SAMPLES / "misc"))
    e = st.get("DOSWin")
    assert e is not None and e.extension == "exe" and e.magic == b"" and e.interpreter == "/usr/bin/wine"
    assert not any(e.matches(elfprobe.header(a)) for a in ARCHES)


def test_malformed_entry_is_reported_not_raised(tmp_path: Path) -> None:
    d = tree(tmp_path, "misc")
    (d / "garbage").write_text("what is this\n")
    st = read_state(str(d))
    assert st.unreadable == ("garbage",) and st.get("jar") is not None
    with pytest.raises(ValueError):
        parse_entry("x", "enabled\nflags: F\n")


def test_order_override_and_inode_default(tmp_path: Path) -> None:
    d = tree(tmp_path, "fedora")
    st = read_state(str(d), order=["qemu-arm", "qemu-aarch64"])
    assert st.entries[0].name == "qemu-aarch64"  # named last = newest = first in the kernel's search
    st2 = read_state(str(d))
    inos = [e.order for e in st2.entries]
    assert inos == sorted(inos, reverse=True)


# --- the kernel's match -------------------------------------------------------------------------


@pytest.mark.parametrize("arch", EMULATED, ids=lambda a: a.alias)
def test_debian_handlers_match_by_magic_not_name(arch: Arch) -> None:
    st = read_state(str(SAMPLES / "debian-bookworm"))
    hits = [e.name for e in st.entries if e.matches(elfprobe.header(arch))]
    assert hits == [f"qemu-{arch.qemu}"]


def test_mipsel_o32_entry_does_not_claim_n32() -> None:
    st = read_state(str(SAMPLES / "debian-bookworm"))
    mips = lookup("mips")
    n32 = bytearray(elfprobe.header(mips))
    n32[36] |= 0x20  # EF_MIPS_ABI2 in e_flags' low byte (ELF32 LE: e_flags at offset 36)
    hits = [e.name for e in st.entries if e.matches(bytes(n32))]
    assert hits == ["qemu-mipsn32el"]


def test_mask_and_offset_semantics() -> None:
    e = Entry("t", True, "/x", "F", offset=2, magic=b"\xab\x00", mask=b"\xff\x0f")
    assert e.matches(b"\0\0\xab\xf0")           # high nibble of the 2nd byte is masked out
    assert not e.matches(b"\0\0\xab\x01")
    beyond = Entry("t", True, "/x", "F", offset=127, magic=b"\x01\x02")
    assert not beyond.matches(b"\x01" * 200)    # the kernel only sees 128 bytes


def test_mips64el_probe_is_claimed_only_by_mips64el() -> None:
    st = read_state(str(SAMPLES / "debian-bookworm"))
    probe = elfprobe.build(lookup("mips64el"))
    assert [e.name for e in st.entries if e.matches(probe)] == ["qemu-mips64el"]
    assert struct.unpack_from("<HH", probe, 16) == (2, 8) and probe[4] == 2


# --- verdicts (every finding) ----------------------------------------------------------------------


@pytest.mark.parametrize("arch", EMULATED, ids=lambda a: a.alias)
def test_debian_handlers_are_usable_but_lack_c(arch: Arch, root: Path) -> None:
    st = read_state(str(SAMPLES / "debian-bookworm"))
    r = analyze(st, arch, DEBIAN, root=str(root))
    assert r.usable and r.entry is not None and r.entry.name == f"qemu-{arch.qemu}"
    assert r.interpreter is not None and r.interpreter.static is True
    assert r.interpreter.resolved == f"/usr/bin/qemu-{arch.qemu}-static"  # symlink followed
    f = by_check(r.findings)
    assert f["binfmt.handler"].severity == "ok"
    assert f["binfmt.flag-c"].severity == "warn"
    assert f["binfmt.flag-c"].fix == f"podrepro binfmt register {arch.alias} --force"
    assert not r.problems


def test_fedora_static_handlers(root: Path) -> None:
    st = read_state(str(SAMPLES / "fedora"))
    arm, armel = (analyze(st, lookup(n), FEDORA, root=str(root)) for n in ("arm", "armel"))
    assert arm.usable and armel.usable
    assert arm.entry == armel.entry and arm.entry is not None and arm.entry.name == "qemu-arm"
    assert arm.entry.interpreter == "/usr/bin/qemu-arm-static" and arm.entry.flags == "F"
    assert by_check(arm.findings)["binfmt.flag-c"].severity == "warn"


def test_not_mounted(tmp_path: Path) -> None:
    empty = tmp_path / "binfmt_misc"
    empty.mkdir()
    st = read_state(str(empty))
    assert not st.mounted
    g = global_findings(st, DEBIAN)
    assert g[0].severity == "fail" and g[0].fix == f"sudo mount -t binfmt_misc binfmt_misc {empty}"
    r = analyze(st, lookup("arm"), DEBIAN)
    assert not r.usable and "not mounted" in r.findings[0].message
    assert not read_state(str(tmp_path / "missing")).mounted


def test_disabled_globally(tmp_path: Path) -> None:
    d = tree(tmp_path, "fedora")
    (d / "status").write_text("disabled\n")
    st = read_state(str(d))
    g = global_findings(st, Distro("fedora", "fedora", root=True))
    assert g[0].check == "binfmt.enabled" and g[0].severity == "fail"
    assert g[0].fix == f"echo 1 | tee {d}/status"
    assert not analyze(st, lookup("arm"), FEDORA).usable


def test_no_handler(root: Path) -> None:
    st = read_state(str(SAMPLES / "misc"))
    r = analyze(st, lookup("mips"), DEBIAN, root=str(root))
    assert not r.usable and r.entry is None
    f = r.problems[0]
    assert (f.check, f.fix) == ("binfmt.handler", "podrepro binfmt register mips")
    assert "no binfmt_misc handler" in f.message


def test_handler_disabled(tmp_path: Path, root: Path) -> None:
    d = tree(tmp_path, "debian-bookworm")
    entry = d / "qemu-mips64el"
    entry.write_text(entry.read_text().replace("enabled", "disabled", 1))
    r = analyze(read_state(str(d)), lookup("mips64el"), DEBIAN, root=str(root))
    assert not r.usable and [e.name for e in r.matching] == ["qemu-mips64el"]
    assert r.problems[0].message == "mips64el: handler qemu-mips64el is disabled"
    assert r.problems[0].fix == "podrepro binfmt register mips64el"


def test_interpreter_missing_without_f_fails(tmp_path: Path, root: Path) -> None:
    d = tree(tmp_path, "debian-bookworm")
    set_field(d / "qemu-arm", "flags:", "P")
    (root / "usr/bin/qemu-arm-static").unlink()  # the symlink now dangles
    r = analyze(read_state(str(d)), lookup("arm"), DEBIAN, root=str(root))
    f = by_check(r.problems)
    assert not r.usable and "missing" in f["binfmt.interpreter"].message
    assert f["binfmt.interpreter"].fix == "sudo apt-get install -y qemu-user-static && podrepro binfmt register arm"
    assert "binfmt.flag-f" in f


def test_interpreter_missing_with_f_still_runs(root: Path) -> None:
    (root / "usr/bin/qemu-arm-static").unlink()
    st = read_state(str(SAMPLES / "debian-bookworm"))
    r = analyze(st, lookup("arm"), DEBIAN, root=str(root))
    assert r.usable  # the kernel holds the file it opened at registration (flag F)
    assert by_check(r.findings)["binfmt.interpreter"].severity == "warn"


def test_interpreter_dynamic(tmp_path: Path, root: Path) -> None:
    fake_elf(root / "usr/bin/qemu-arm", interp="/lib64/ld-linux-x86-64.so.2")
    d = tree(tmp_path, "fedora")
    set_field(d / "qemu-arm", "interpreter", "/usr/bin/qemu-arm")
    r = analyze(read_state(str(d)), lookup("arm"), FEDORA, root=str(root))
    f = by_check(r.problems)["binfmt.interpreter"]
    assert not r.usable and "dynamically linked" in f.message and "qemu-user-binfmt" in f.message
    assert f.fix == "sudo dnf remove -y qemu-user-binfmt && sudo dnf install -y qemu-user-static && podrepro binfmt register arm"
    r = analyze(read_state(str(d)), lookup("arm"), DEBIAN, root=str(root))
    assert str(by_check(r.problems)["binfmt.interpreter"].fix).startswith("sudo apt-get remove -y qemu-user-binfmt && ")


def test_interpreter_not_elf(tmp_path: Path, root: Path) -> None:
    (root / "usr/bin/qemu-wrapper").write_text("#!/bin/sh\nexec qemu-arm \"$@\"\n")
    d = tree(tmp_path, "fedora")
    set_field(d / "qemu-arm", "interpreter", "/usr/bin/qemu-wrapper")
    r = analyze(read_state(str(d)), lookup("arm"), FEDORA, root=str(root))
    assert not r.usable and "not an ELF" in by_check(r.problems)["binfmt.interpreter"].message


def test_flag_f_missing(tmp_path: Path, root: Path) -> None:
    d = tree(tmp_path, "fedora")
    set_field(d / "qemu-riscv64", "flags:", "")
    r = analyze(read_state(str(d)), lookup("riscv64"), FEDORA, root=str(root))
    f = by_check(r.findings)
    assert not r.usable and f["binfmt.flag-f"].severity == "fail"
    assert f["binfmt.flag-f"].fix == "podrepro binfmt register riscv64"
    assert f["binfmt.flag-c"].severity == "warn"


def _add_podrepro_arm(d: Path, flags: str = "POCF", interp: str = "/usr/bin/qemu-arm-static",
                      enabled: bool = True) -> None:
    a = lookup("arm")
    (d / "podrepro-arm").write_text(
        f"{'enabled' if enabled else 'disabled'}\ninterpreter {interp}\nflags: {flags}\noffset 0\n"
        f"magic {a.magic.hex()}\nmask {a.mask.hex()}\n")


def test_shadowing_newest_wins(tmp_path: Path, root: Path) -> None:
    d = tree(tmp_path, "fedora")
    _add_podrepro_arm(d)
    st = read_state(str(d), order=["qemu-arm", "podrepro-arm"])
    r = analyze(st, lookup("arm"), FEDORA, root=str(root))
    assert r.usable and r.entry is not None and r.entry.name == "podrepro-arm"
    assert [e.name for e in r.matching] == ["podrepro-arm", "qemu-arm"]
    sh = by_check(r.findings)["binfmt.shadowing"]
    assert sh.severity == "warn" and "podrepro-arm duplicates qemu-arm" in sh.message
    assert "binfmt.flag-c" not in by_check(r.findings)

    # registered the other way round, the distro's F-only entry wins and podrepro's is useless
    st = read_state(str(d), order=["podrepro-arm", "qemu-arm"])
    r = analyze(st, lookup("arm"), FEDORA, root=str(root))
    assert r.entry is not None and r.entry.name == "qemu-arm"
    assert by_check(r.findings)["binfmt.shadowing"].fix == "podrepro binfmt unregister arm"


def test_shadowing_with_different_masks_says_shadows(tmp_path: Path, root: Path) -> None:
    d = tree(tmp_path, "fedora")
    a = lookup("arm")
    (d / "arm-any").write_text(f"enabled\ninterpreter /usr/bin/qemu-arm-static\nflags: F\noffset 0\n"
                               f"magic {a.magic[:19].hex()}\n")
    st = read_state(str(d), order=["qemu-arm", "arm-any"])
    r = analyze(st, a, FEDORA, root=str(root))
    assert "arm-any shadows qemu-arm" in by_check(r.findings)["binfmt.shadowing"].message


def test_native_arch_needs_nothing() -> None:
    r = analyze(read_state(str(SAMPLES / "misc")), lookup("i386"), DEBIAN)
    assert r.usable and r.entry is None and "natively" in r.findings[0].message


# --- ELF static check ---------------------------------------------------------------------------


def test_elf_is_static(tmp_path: Path) -> None:
    assert elf_is_static(fake_elf(tmp_path / "s").read_bytes())
    assert not elf_is_static(fake_elf(tmp_path / "d", interp="/lib/ld.so").read_bytes())
    for a in ARCHES:
        if elfprobe.supported(a):
            assert elf_is_static(elfprobe.build(a))
    with pytest.raises(ValueError):
        elf_is_static(b"#!/bin/sh\n" + bytes(100))


def test_absolute_symlinks_resolve_inside_root(tmp_path: Path) -> None:
    r = tmp_path / "r"
    fake_elf(r / "opt/qemu/qemu-arm")
    (r / "usr/bin").mkdir(parents=True)
    (r / "usr/bin/qemu-arm-static").symlink_to("/opt/qemu/qemu-arm")
    info = inspect_interpreter("/usr/bin/qemu-arm-static", str(r))
    assert info.exists and info.static and info.resolved == "/opt/qemu/qemu-arm"
    assert not inspect_interpreter("/nope", str(r)).exists


# --- register lines and commands ------------------------------------------------------------------


ARM_LINE = (
    ":podrepro-arm:M:0:"
    r"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00:"
    r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:"
    "/usr/bin/qemu-arm-static:FPC"
)


def test_register_line_exact() -> None:
    assert register_line(lookup("arm"), "/usr/bin/qemu-arm-static", "FPC") == ARM_LINE
    assert register_line(lookup("armel"), "/usr/bin/qemu-arm-static", "FPC") == ARM_LINE
    with pytest.raises(ValueError):
        register_line(lookup("arm"), "/odd:path", "F")
    with pytest.raises(ValueError):
        register_line(lookup("i386"), "/x", "F")


@pytest.mark.parametrize("arch", EMULATED, ids=lambda a: a.alias)
def test_register_line_roundtrips_and_matches(arch: Arch) -> None:
    e = parse_register_line(register_line(arch, f"/usr/bin/qemu-{arch.qemu}-static", "FC"))
    assert (e.name, e.magic, e.mask, e.flags) == (arch.binfmt_name, arch.magic, arch.mask, "FC")
    assert e.matches(elfprobe.header(arch))


def test_fedora_binfmt_d_files_parse_and_match() -> None:
    files = read_binfmt_d(str(SAMPLES / "fedora-binfmt.d"))
    arm = files["qemu-arm-static.conf"]
    assert arm.name == "qemu-arm" and arm.flags == "F" and arm.interpreter == "/usr/bin/qemu-arm-static"
    assert arm.magic == lookup("arm").magic  # "\x7fELF" literal letters decoded like the kernel
    for a in EMULATED:
        assert files[f"qemu-{a.qemu}-static.conf"].matches(elfprobe.header(a))


def test_preserve_argv0_rule() -> None:
    f = preserve_argv0_supported
    assert f("/usr/libexec/qemu-binfmt/arm-binfmt-P", None, None)      # Debian's name-based hack
    assert f("/usr/bin/qemu-arm-static", (7, 2), (6, 1))
    assert not f("/usr/bin/qemu-arm-static", (5, 2), (6, 1))          # qemu too old
    assert not f("/usr/bin/qemu-arm-static", (7, 2), (5, 10))         # kernel lacks AT_FLAGS bit
    assert not f("/usr/bin/qemu-arm-static", None, (6, 1))
    assert build_flags(True) == "FPC" and build_flags(False) == "FC"
    assert parse_qemu_version("qemu-arm version 7.2.22 (Debian 1:7.2+dfsg-7)") == (7, 2)
    assert parse_kernel_version("6.18.44-fc-v782") == (6, 18)


def test_register_commands_exact_argv() -> None:
    arm = lookup("arm")
    cmds = register_commands(arm, ARM_LINE, directory="/proc/sys/fs/binfmt_misc",
                                    binfmt_d="/etc/binfmt.d", prefix=("sudo",))
    assert [c.argv for c in cmds] == [
        ("sudo", "tee", "/proc/sys/fs/binfmt_misc/register"),
        ("sudo", "mkdir", "-p", "/etc/binfmt.d"),
        ("sudo", "tee", "/etc/binfmt.d/zz-podrepro-arm.conf"),
    ]
    assert cmds[0].input == (ARM_LINE + "\n").encode()
    assert cmds[2].input is not None and cmds[2].input.endswith((ARM_LINE + "\n").encode())
    assert cmds[2].input.startswith(b"# podrepro binfmt register arm")
    assert cmds[1].input is None
    no_persist = register_commands(arm, ARM_LINE, directory="/b", binfmt_d=None)
    assert [c.argv for c in no_persist] == [("tee", "/b/register")]


def test_unregister_commands_exact_argv_and_refusals() -> None:
    cmds = unregister_commands("podrepro-arm", "/etc/binfmt.d/zz-podrepro-arm.conf",
                                      directory="/proc/sys/fs/binfmt_misc", prefix=("sudo",))
    assert [(c.argv, c.input) for c in cmds] == [
        (("sudo", "tee", "/proc/sys/fs/binfmt_misc/podrepro-arm"), b"-1\n"),
        (("sudo", "rm", "-f", "/etc/binfmt.d/zz-podrepro-arm.conf"), None),
    ]
    with pytest.raises(ValueError):
        unregister_commands("qemu-arm", None, directory="/b")
    with pytest.raises(ValueError):
        unregister_commands(None, "/usr/lib/binfmt.d/qemu-arm.conf", directory="/b")


def test_command_display_is_copy_pasteable() -> None:
    c = tee("/proc/sys/fs/binfmt_misc/register", ARM_LINE + "\n", ("sudo",))
    shown = c.display()
    assert shown == f"printf '%s\\n' '{ARM_LINE}' | sudo tee /proc/sys/fs/binfmt_misc/register >/dev/null"
    # and the shell really produces the bytes we would feed
    out = subprocess.run(["sh", "-c", shown.split(" | ")[0]], capture_output=True, check=True).stdout
    assert out == c.input
    assert Command(("rm", "-f", "/a b")).display() == "rm -f '/a b'"


# --- planning -------------------------------------------------------------------------------------


def facts(d: Path, root: Path, binfmt_d: Path | None, *, prefix: tuple[str, ...] = ()) -> HostFacts:
    return HostFacts(directory=str(d), binfmt_d=str(binfmt_d) if binfmt_d else None, prefix=prefix,
                     root=str(root), which=lambda _n: None, qemu_version=lambda _p: (7, 2), kernel=(6, 1),
                     trusted=lambda _p: True)  # the fake root's files are the test user's


def test_plan_nothing_when_usable(root: Path, tmp_path: Path) -> None:
    d = SAMPLES / "debian-bookworm"
    plans = plan_register([lookup("arm"), lookup("armel"), lookup("i386")],
                                 read_state(str(d)), DEBIAN, facts(d, root, tmp_path))
    assert len(plans) == 1  # arm and armel share qemu-arm; i386 is native
    p = plans[0]
    assert (p.action, p.arches, p.name, p.commands) == ("nothing", ("arm", "armel"), "podrepro-arm", ())
    assert "qemu-arm is usable" in p.reason


def test_plan_register_when_disabled(tmp_path: Path, root: Path) -> None:
    d = tree(tmp_path, "debian-bookworm")
    e = d / "qemu-mips64el"
    e.write_text(e.read_text().replace("enabled", "disabled", 1))
    bd = tmp_path / "binfmt.d"
    (p,) = plan_register([lookup("mips64el")], read_state(str(d)), DEBIAN,
                                facts(d, root, bd, prefix=("sudo",)))
    line = register_line(lookup("mips64el"), "/usr/bin/qemu-mips64el-static", "FPC")
    assert (p.action, p.line, p.reason) == ("register", line, "handler qemu-mips64el is disabled")
    assert [c.argv for c in p.commands] == [
        ("sudo", "tee", f"{d}/register"),
        ("sudo", "mkdir", "-p", str(bd)),
        ("sudo", "tee", f"{bd}/zz-podrepro-mips64el.conf"),
    ]
    assert not any(str(d / "qemu-mips64el") in c.argv for c in p.commands)  # never touches Debian's


def test_plan_force_adds_own_once(tmp_path: Path, root: Path) -> None:
    d = tree(tmp_path, "fedora")
    st = read_state(str(d))
    (p,) = plan_register([lookup("arm")], st, FEDORA, facts(d, root, None), force=True)
    assert p.action == "register" and p.reason == "forced (--force)"
    assert [c.argv for c in p.commands] == [("tee", f"{d}/register")]
    # once podrepro's own entry is the newest usable one, --force changes nothing
    _add_podrepro_arm(d)
    st = read_state(str(d), order=["qemu-arm", "podrepro-arm"])
    (p,) = plan_register([lookup("arm")], st, FEDORA, facts(d, root, None), force=True)
    assert p.action == "nothing" and "podrepro-arm is already registered" in p.reason


def test_plan_replaces_own_broken_entry(tmp_path: Path, root: Path) -> None:
    d = tree(tmp_path, "misc")
    _add_podrepro_arm(d, interp="/usr/bin/qemu-arm-gone", flags="OC")
    (p,) = plan_register([lookup("arm")], read_state(str(d)), DEBIAN, facts(d, root, None))
    assert p.action == "replace"
    assert [(c.argv, c.input) for c in p.commands] == [
        (("tee", f"{d}/podrepro-arm"), b"-1\n"),
        (("tee", f"{d}/register"), (register_line(lookup("arm"), "/usr/bin/qemu-arm-static", "FPC") + "\n").encode()),
    ]


def test_plan_reenables_own_disabled_entry(tmp_path: Path, root: Path) -> None:
    d = tree(tmp_path, "misc")
    _add_podrepro_arm(d, enabled=False)
    (p,) = plan_register([lookup("arm")], read_state(str(d)), DEBIAN, facts(d, root, None))
    assert p.action == "enable"
    assert [(c.argv, c.input) for c in p.commands] == [(("tee", f"{d}/podrepro-arm"), b"1\n")]


def test_plan_mounts_and_enables_first(tmp_path: Path, root: Path) -> None:
    empty = tmp_path / "bm"
    empty.mkdir()
    (p,) = plan_register([lookup("arm")], read_state(str(empty)), DEBIAN,
                                facts(empty, root, None, prefix=("sudo",)))
    assert p.commands[0].argv == ("sudo", "mount", "-t", "binfmt_misc", "binfmt_misc", str(empty))
    d = tree(tmp_path, "misc")
    (d / "status").write_text("disabled\n")
    (p,) = plan_register([lookup("arm")], read_state(str(d)), DEBIAN, facts(d, root, None))
    assert (p.commands[0].argv, p.commands[0].input) == (("tee", f"{d}/status"), b"1\n")


@pytest.mark.parametrize(("distro", "install"), [
    (DEBIAN, "sudo apt-get install -y qemu-user-static"),
    (FEDORA, "sudo dnf install -y qemu-user-static"),
    (Distro("arch", "unknown"), "install qemu-user-static with your distribution's package manager"),
])
def test_plan_without_qemu_says_how_to_install(tmp_path: Path, distro: Distro, install: str) -> None:
    d = SAMPLES / "misc"
    with pytest.raises(HostNotReady) as ei:
        plan_register([lookup("s390x")], read_state(str(d)), distro,
                             facts(d, tmp_path / "emptyroot", None))
    assert "no static qemu-s390x" in ei.value.message and ei.value.hint == install


def test_dynamic_qemu_is_not_used_for_registration(root: Path) -> None:
    fake_elf(root / "usr/bin/qemu-arm-static", interp="/lib/ld.so")
    (root / "usr/libexec/qemu-binfmt/arm-binfmt-P").unlink()
    assert find_static_qemu("arm", which=lambda _n: None, root=str(root)) is None
    fake_elf(root / "usr/libexec/qemu-binfmt/arm-binfmt-P")
    assert find_static_qemu("arm", which=lambda _n: None, root=str(root)) == \
        "/usr/libexec/qemu-binfmt/arm-binfmt-P"


def test_plan_unregister_only_own(tmp_path: Path) -> None:
    d = tree(tmp_path, "debian-bookworm")
    bd = tmp_path / "binfmt.d"
    bd.mkdir()
    (bd / "zz-podrepro-arm.conf").write_text(ARM_LINE + "\n")
    (bd / "qemu-arm.conf").write_text("not ours\n")
    _add_podrepro_arm(d)
    st = read_state(str(d))
    plans = plan_unregister(list(ARCHES), st, facts(d, tmp_path, bd))
    acting = [p for p in plans if p.commands]
    assert [p.name for p in acting] == ["podrepro-arm"] and acting[0].arches == ("arm", "armel")
    assert [c.argv for c in acting[0].commands] == [
        ("tee", f"{d}/podrepro-arm"), ("rm", "-f", f"{bd}/zz-podrepro-arm.conf")]
    touched = {a for p in plans for c in p.commands for a in c.argv}
    assert not any("qemu-" in t for t in touched)


def test_privilege_prefix() -> None:
    assert privilege_prefix(0, lambda _n: None) == ()
    assert privilege_prefix(1000, lambda n: f"/usr/bin/{n}") == ("sudo",)
    with pytest.raises(HostNotReady) as ei:
        privilege_prefix(1000, lambda _n: None)
    assert "sudo is not installed" in ei.value.message and ei.value.hint and "root" in ei.value.hint


def test_execute_feeds_input_and_stops_at_first_failure() -> None:
    calls: list[tuple[list[str], bytes | None]] = []

    def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
        calls.append((argv, kw.get("input")))  # type: ignore[arg-type]
        rc = 1 if argv[-1].endswith("register") else 0
        return subprocess.CompletedProcess(argv, rc, b"", b"tee: /b/register: Invalid argument\n")

    execute([Command(("mkdir", "-p", "/x"))], run=run)
    with pytest.raises(PodreproError) as ei:
        execute([tee("/b/register", "L\n"), Command(("rm", "-f", "/y"))], run=run)
    assert "Invalid argument" in ei.value.message
    assert calls == [(["mkdir", "-p", "/x"], None), (["tee", "/b/register"], b"L\n")]


# --- distro ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "family", "cmd"), [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n', "debian", "apt-get install -y debian-archive-keyring"),
    ("ID=ubuntu\nID_LIKE=debian\n", "debian", "apt-get install -y debian-archive-keyring"),
    ('ID=fedora\nVERSION_ID=40\n', "fedora", "dnf install -y debian-keyring"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora", "dnf install -y debian-keyring"),
])
def test_detect_distro(tmp_path: Path, text: str, family: str, cmd: str) -> None:
    p = tmp_path / "os-release"
    p.write_text(text)
    d = detect_distro(str(p), root=True)
    assert d.family == family and d.install("debian-archive-keyring") == cmd
    assert detect_distro(str(p), root=False).install("podman").startswith("sudo ")
    assert detect_distro(str(tmp_path / "none")).family == "unknown"


# --- ensure_handler -----------------------------------------------------------------------------------


def test_ensure_handler(tmp_path: Path) -> None:
    assert ensure_handler(lookup("i386"), directory=str(tmp_path)) is None
    d = tree(tmp_path, "misc")
    with pytest.raises(HostNotReady) as ei:
        ensure_handler(lookup("mips"), directory=str(d))
    assert ei.value.hint == "run: podrepro binfmt register mips"
    assert "no binfmt_misc handler for mips" in ei.value.message
    # usable: a static interpreter at an absolute host path, flags F
    qemu = fake_elf(tmp_path / "bin" / "qemu-mipsel-static")
    a = lookup("mips")
    (d / "qemu-mipsel").write_text(f"enabled\ninterpreter {qemu}\nflags: F\noffset 0\n"
                                   f"magic {a.magic.hex()}\nmask {a.mask.hex()}\n")
    r = ensure_handler(a, directory=str(d))
    assert r is not None and r.usable and r.entry is not None and r.entry.name == "qemu-mipsel"


def test_ensure_handler_interactive_declined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tree(tmp_path, "misc")
    qemu = fake_elf(tmp_path / "bin" / "qemu-arm-static")
    monkeypatch.setenv("PATH", f"{qemu.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv(ENV_BINFMT_D, str(tmp_path / "bd"))
    asked: list[str] = []

    def no(q: str) -> bool:
        asked.append(q)
        return False

    monkeypatch.setattr(binfmt_register, "privilege_prefix", lambda euid, which: ())
    monkeypatch.setattr(binfmt_register, "root_owned_chain", lambda path, root="/": True)  # a fake qemu in tmp
    with pytest.raises(HostNotReady):
        ensure_handler(lookup("arm"), confirm=no, directory=str(d))
    assert len(asked) == 1 and f"tee {d}/register" in asked[0] and str(qemu) in asked[0]
    assert not (d / "podrepro-arm").exists()


def test_a_qemu_in_the_users_path_never_becomes_a_system_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack: ~/.local/bin/qemu-arm-static (anyone's file) first on PATH. `binfmt register`
    runs as root and would make it the system-wide F+C handler every user's arm binaries (and
    setuid ones, as root) run through. Only a root-owned qemu in root-owned directories counts."""
    d = tree(tmp_path, "misc")
    evil = fake_elf(tmp_path / "home" / ".local" / "bin" / "qemu-arm-static")
    monkeypatch.setenv("PATH", f"{evil.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    state = read_state(str(d))
    f = HostFacts(directory=str(d), binfmt_d=None, which=lambda n: str(evil) if n == "qemu-arm-static" else None,
                  qemu_version=lambda _p: (7, 2), kernel=(6, 1))
    # the evil file is static and first in line, but it is not root-owned all the way up
    assert find_static_qemu("arm", which=f.which) == str(evil)
    if Path("/usr/bin/qemu-arm-static").exists():  # the distro's, root-owned: that one is chosen
        plans = plan_register([lookup("arm")], state, DEBIAN, f, force=True)
        assert plans and all("/usr/bin/qemu-arm-static" in (p.line or "") for p in plans), plans
        assert all(str(evil) not in (p.line or "") for p in plans)
    else:
        with pytest.raises(HostNotReady, match="is not root-owned all the way up"):
            plan_register([lookup("arm")], state, DEBIAN, f, force=True)


def test_root_owned_chain(tmp_path: Path) -> None:
    assert root_owned_chain("/bin/sh")  # root's own file, root's dirs
    mine = tmp_path / "qemu"
    mine.write_text("x")
    assert not root_owned_chain(str(mine))  # a user's file, or under the world-writable /tmp
