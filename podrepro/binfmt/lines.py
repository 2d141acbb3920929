"""Register lines (``:name:M:offset:magic:mask:interpreter:flags``): podrepro's own, and the ones
in binfmt.d files."""

from __future__ import annotations

import os

from podrepro.arches import Arch
from podrepro.binfmt.state import Entry


def escape(data: bytes) -> str:
    r"""binfmt_misc's ``\xNN`` notation for every byte (so ':' or '\' in magic can never break the line)."""
    return "".join(f"\\x{b:02x}" for b in data)


def entry_name(arch: Arch) -> str:
    name = arch.binfmt_name
    if name is None:
        raise ValueError(f"{arch.alias} runs natively; it has no binfmt entry")
    return name


def conf_name(arch: Arch) -> str:
    """binfmt.d file name; ``zz-`` sorts after distro files so ours is registered last at boot."""
    return f"zz-{entry_name(arch)}.conf"


def build_flags(preserve_argv0: bool) -> str:
    return "FPC" if preserve_argv0 else "FC"


def register_line(arch: Arch, interpreter: str, flags: str) -> str:
    """``:name:M:offset:magic:mask:interpreter:flags`` for podrepro's own entry for ``arch``."""
    if ":" in interpreter or "\n" in interpreter or not interpreter.startswith("/"):
        raise ValueError(f"interpreter path unusable in a binfmt_misc line: {interpreter!r}")
    if not set(flags) <= set("POCF"):
        raise ValueError(f"unknown binfmt_misc flags {flags!r}")
    return f":{entry_name(arch)}:M:0:{escape(arch.magic)}:{escape(arch.mask)}:{interpreter}:{flags}"


def _unescape(field_text: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(field_text):
        if field_text.startswith("\\x", i) and i + 4 <= len(field_text):
            out.append(int(field_text[i + 2:i + 4], 16))
            i += 4
        else:
            out += field_text[i].encode("latin-1")
            i += 1
    return bytes(out)


def parse_register_line(line: str) -> Entry:
    r"""Parse a register line (as in binfmt.d files: ``:qemu-arm:M::\x7fELF...:...:/usr/bin/x:F``)."""
    s = line.strip()
    if len(s) < 2:
        raise ValueError("empty register line")
    delim = s[0]
    parts = s[1:].split(delim)
    if len(parts) != 7:
        raise ValueError(f"register line needs 7 fields, got {len(parts)}: {line!r}")
    name, kind, offset, magic, mask, interp, flags = parts
    if kind == "E":
        return Entry(name, True, interp, flags, extension=magic)
    if kind != "M":
        raise ValueError(f"register line type must be M or E: {line!r}")
    return Entry(name, True, interp, flags, int(offset or "0"), _unescape(magic),
                 _unescape(mask) if mask else None)


def read_binfmt_d(directory: str) -> dict[str, Entry]:
    """Entries of the register lines in a binfmt.d directory, keyed by file name."""
    out: dict[str, Entry] = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for n in names:
        if not n.endswith(".conf"):
            continue
        try:
            with open(os.path.join(directory, n), encoding="utf-8", errors="replace") as f:
                for ln in f:
                    if ln.strip() and ln.lstrip()[0] not in "#;":
                        out[n] = parse_register_line(ln)
                        break
        except (OSError, ValueError):
            continue
    return out
