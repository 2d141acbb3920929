from __future__ import annotations

import struct

import pytest

from podrepro import arches, elfprobe

SUPPORTED = [a for a in arches.ARCHES if elfprobe.supported(a)]


@pytest.mark.parametrize("arch", SUPPORTED, ids=lambda a: a.alias)
def test_probe_is_a_static_executable_for_its_arch(arch: arches.Arch) -> None:
    b = elfprobe.build(arch, b"hi\n", exit_code=3)
    assert b[:4] == b"\x7fELF" and b[4] == arch.elf_class
    end = ">" if arch.big_endian else "<"
    e_type, e_machine = struct.unpack_from(end + "HH", b, 16)
    assert (e_type, e_machine) == (2, arch.elf_machine)
    assert b.endswith(b"hi\n")
    # exactly one program header, PT_LOAD (no PT_INTERP: static)
    if arch.elf_class == 1:
        phoff, phnum = struct.unpack_from(end + "I", b, 28)[0], struct.unpack_from(end + "H", b, 44)[0]
    else:
        phoff, phnum = struct.unpack_from(end + "Q", b, 32)[0], struct.unpack_from(end + "H", b, 56)[0]
    assert phnum == 1 and struct.unpack_from(end + "I", b, phoff)[0] == 1


@pytest.mark.parametrize("arch", SUPPORTED, ids=lambda a: a.alias)
def test_probe_matches_its_binfmt_entry(arch: arches.Arch) -> None:
    b = elfprobe.build(arch)
    assert all((b[i] & arch.mask[i]) == arch.magic[i] for i in range(len(arch.magic)))


def test_unsupported_arch_raises() -> None:
    with pytest.raises(ValueError):
        elfprobe.build(arches.lookup("i386"))
