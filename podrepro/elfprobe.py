"""Tiny hand-assembled static ELF executables: "write(1, msg); exit(code)".

They let podrepro (doctor) and its tests prove that a binfmt_misc handler really runs a foreign
binary, with no compiler, no image and no network. Each program is a handful of instructions
placed after one PT_LOAD program header that maps the whole file; there is no PT_INTERP, so the
binaries are static by construction.
"""

from __future__ import annotations

import struct

from podrepro.arches import Arch

BASE = 0x10000


def _arm(msg_off: int, n: int, code: int) -> bytes:
    # pc reads as (this instruction + 8); the adr sits at offset 4 → pc = 12
    assert n < 256 and code < 256
    words = [
        0xE3A00001,                       # mov r0, #1
        0xE28F1000 | (msg_off - 12),      # add r1, pc, #off   (adr r1, msg)
        0xE3A02000 | n,                   # mov r2, #n
        0xE3A07004,                       # mov r7, #4  (write)
        0xEF000000,                       # svc #0
        0xE3A00000 | code,                # mov r0, #code
        0xE3A07001,                       # mov r7, #1  (exit)
        0xEF000000,                       # svc #0
    ]
    return struct.pack("<8I", *words)


def _aarch64(msg_off: int, n: int, code: int) -> bytes:
    delta = msg_off - 4                   # adr at offset 4
    immlo, immhi = delta & 3, delta >> 2
    words = [
        0xD2800020,                                   # mov x0, #1
        0x10000001 | (immlo << 29) | (immhi << 5),    # adr x1, msg
        0xD2800002 | (n << 5),                        # mov x2, #n
        0xD2800808,                                   # mov x8, #64 (write)
        0xD4000001,                                   # svc #0
        0xD2800000 | (code << 5),                     # mov x0, #code
        0xD2800BA8,                                   # mov x8, #93 (exit)
        0xD4000001,                                   # svc #0
    ]
    return struct.pack("<8I", *words)


def _mips_o32(msg_addr: int, n: int, code: int, big: bool) -> bytes:
    return _mips(msg_addr, n, code, big, write_nr=4004, exit_nr=4001)


def _mips(msg_addr: int, n: int, code: int, big: bool, *, write_nr: int, exit_nr: int) -> bytes:
    # The same instructions serve o32 (write=4004, exit=4001) and n64 (write=5001, exit=5058):
    # only the syscall numbers in $v0 differ. msg_addr stays below 2**31, so lui's sign
    # extension on MIPS64 is harmless.
    assert msg_addr < 0x80000000 and n < 0x8000 and code < 0x8000
    hi, lo = msg_addr >> 16, msg_addr & 0xFFFF
    words = [
        0x24040001,                       # li   $a0, 1
        0x3C050000 | hi,                  # lui  $a1, hi
        0x34A50000 | lo,                  # ori  $a1, $a1, lo
        0x24060000 | n,                   # li   $a2, n
        0x24020000 | write_nr,            # li   $v0, write
        0x0000000C,                       # syscall
        0x24040000 | code,                # li   $a0, code
        0x24020000 | exit_nr,             # li   $v0, exit
        0x0000000C,                       # syscall
    ]
    return struct.pack((">" if big else "<") + f"{len(words)}I", *words)


def supported(arch: Arch) -> bool:
    # MIPS: o32 (ELF32) and n64 (ELF64); n32 would be ELF32 with EF_MIPS_ABI2 and is not in the table
    return arch.elf_machine in (40, 183, 8)


def build(arch: Arch, message: bytes | None = None, exit_code: int = 0) -> bytes:
    """Return the bytes of a static executable for ``arch`` that prints ``message``."""
    if not supported(arch):
        raise ValueError(f"no probe binary for {arch.alias}")
    msg = message if message is not None else f"podrepro-probe {arch.alias}\n".encode()
    end = ">" if arch.big_endian else "<"
    if arch.elf_class == 1:
        ehsize, phsize = 52, 32
    else:
        ehsize, phsize = 64, 56
    code_off = ehsize + phsize
    code_len = 36 if arch.elf_machine == 8 else 32
    msg_off = code_off + code_len
    if arch.elf_machine == 40:
        code = _arm(msg_off - code_off, len(msg), exit_code)
    elif arch.elf_machine == 183:
        code = _aarch64(msg_off - code_off, len(msg), exit_code)
    elif arch.elf_class == 1:
        code = _mips_o32(BASE + msg_off, len(msg), exit_code, arch.big_endian)
    else:
        code = _mips(BASE + msg_off, len(msg), exit_code, arch.big_endian, write_nr=5001, exit_nr=5058)
    body = code + msg
    total = code_off + len(body)
    ident = b"\x7fELF" + bytes([arch.elf_class, 2 if arch.big_endian else 1, 1, 0]) + bytes(8)
    entry = BASE + code_off
    if arch.elf_class == 1:
        eh = ident + struct.pack(
            end + "HHIIIIIHHHHHH", 2, arch.elf_machine, 1, entry, ehsize, 0, arch.elf_flags,
            ehsize, phsize, 1, 0, 0, 0,
        )
        ph = struct.pack(end + "8I", 1, 0, BASE, BASE, total, total, 5, 0x1000)
    else:
        eh = ident + struct.pack(
            end + "HHIQQQIHHHHHH", 2, arch.elf_machine, 1, entry, ehsize, 0, arch.elf_flags,
            ehsize, phsize, 1, 0, 0, 0,
        )
        ph = struct.pack(end + "IIQQQQQQ", 1, 5, 0, BASE, BASE, total, total, 0x1000)
    out = eh + ph + body
    assert len(out) == total
    return out


def header(arch: Arch) -> bytes:
    """A representative 128-byte ELF header of an ordinary executable for ``arch``.

    Used to ask "which binfmt_misc entry would the kernel pick for this arch?" by applying each
    entry's magic and mask to it, exactly as the kernel does.
    """
    end = ">" if arch.big_endian else "<"
    ident = b"\x7fELF" + bytes([arch.elf_class, 2 if arch.big_endian else 1, 1, 0]) + bytes(8)
    if arch.elf_class == 1:
        rest = struct.pack(end + "HHIIIIIHHHHHH", 2, arch.elf_machine, 1, 0x10000, 52, 0,
                           arch.elf_flags, 52, 32, 1, 0, 0, 0)
    else:
        rest = struct.pack(end + "HHIQQQIHHHHHH", 2, arch.elf_machine, 1, 0x10000, 64, 0,
                           arch.elf_flags, 64, 56, 1, 0, 0, 0)
    return (ident + rest).ljust(128, b"\0")
