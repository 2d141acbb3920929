"""The arch table is the single source of truth; every derived mapping must agree with it."""

from __future__ import annotations

import re

import pytest

from podrepro import arches, elfprobe
from podrepro.errors import EXIT_USAGE, UsageError

REQUIRED = {"arm", "armel", "arm64", "mips", "mips64el", "i386", "ppc64el", "s390x", "riscv64"}


def test_required_arches_present() -> None:
    assert set(arches.aliases()) >= REQUIRED


@pytest.mark.parametrize("arch", arches.ARCHES, ids=lambda a: a.alias)
def test_every_spelling_resolves_to_its_own_arch(arch: arches.Arch) -> None:
    for name in (arch.alias, arch.debian, *arch.spellings, arch.oci_platform):
        assert arches.lookup(name) is arch, name
        assert arches.lookup(name.upper()) is arch


def test_spellings_are_unambiguous() -> None:
    seen: dict[str, str] = {}
    for a in arches.ARCHES:
        for n in {a.alias, a.debian, *a.spellings}:
            assert seen.setdefault(n, a.alias) == a.alias, f"{n} claimed by {seen[n]} and {a.alias}"


def test_every_qemu_has_its_magic_and_mask_and_no_other() -> None:
    assert set(arches.QEMU_BINFMT) == {a.qemu for a in arches.ARCHES if a.qemu is not None}


@pytest.mark.parametrize("arch", arches.ARCHES, ids=lambda a: a.alias)
def test_magic_and_mask_are_consistent(arch: arches.Arch) -> None:
    if not arch.emulated:
        assert arch.magic == b"" and arch.mask == b""
        return
    assert len(arch.magic) == len(arch.mask) >= 20
    assert arch.magic[:4] == b"\x7fELF"
    # the magic must not have bits set that the mask ignores (the kernel would never match it)
    assert all(m & ~k & 0xFF == 0 for m, k in zip(arch.magic, arch.mask))
    # ELF class and byte order in the magic agree with the table
    assert arch.magic[4] == arch.elf_class
    assert arch.magic[5] == (2 if arch.big_endian else 1)
    # e_machine in the magic agrees with elf_machine
    em = arch.magic[18:20]
    assert int.from_bytes(em, "big" if arch.big_endian else "little") == arch.elf_machine


@pytest.mark.parametrize("arch", [a for a in arches.ARCHES if a.emulated], ids=lambda a: a.alias)
def test_representative_header_matches_own_magic_only(arch: arches.Arch) -> None:
    hdr = elfprobe.header(arch)

    def matches(a: arches.Arch) -> bool:
        return all((hdr[i] & a.mask[i]) == a.magic[i] for i in range(len(a.magic)))

    assert matches(arch)
    for other in arches.ARCHES:
        if other.emulated and other.qemu != arch.qemu:
            assert not matches(other), f"{arch.alias} header also matches {other.alias}"


@pytest.mark.parametrize("arch", arches.ARCHES, ids=lambda a: a.alias)
def test_oci_platform_and_names(arch: arches.Arch) -> None:
    assert re.fullmatch(r"linux/[a-z0-9]+(/v[0-9])?", arch.oci_platform)
    assert arch.suite in ("bookworm", "trixie")
    if arch.debian in ("mipsel", "mips64el"):
        assert arch.suite == "bookworm"  # Debian 13 dropped these ports
    if arch.qemu:
        assert arch.binfmt_name == f"podrepro-{arch.qemu}"


def test_table_values_from_design() -> None:
    arm, mips = arches.lookup("arm"), arches.lookup("mips")
    assert (arm.debian, arm.oci_platform, arm.uname_m, arm.qemu) == ("armhf", "linux/arm/v7", "armv7l", "arm")
    assert (mips.debian, mips.oci_platform, mips.uname_m, mips.qemu) == ("mipsel", "linux/mipsle", "mips", "mipsel")
    assert arches.lookup("aarch64").alias == "arm64"
    assert arches.lookup("x86").alias == "i386"
    assert arches.lookup("ppc64le").alias == "ppc64el"


def test_unknown_arch_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as e:
        arches.lookup("armv9")
    assert e.value.exit_code == EXIT_USAGE
    assert str(e.value).startswith("unknown architecture 'armv9'; known: arm, mips, arm64")
