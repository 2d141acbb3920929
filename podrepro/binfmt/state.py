"""Reading /proc/sys/fs/binfmt_misc: the global switch and every entry, newest first."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

BINFMT_DIR = "/proc/sys/fs/binfmt_misc"
BINFMT_D = "/etc/binfmt.d"
ENV_BINFMT_DIR = "PODREPRO_BINFMT_DIR"   # tests and unusual mounts
ENV_BINFMT_D = "PODREPRO_BINFMT_D"       # tests: keep persistence files out of /etc
OWN_PREFIX = "podrepro-"
HEADER_SIZE = 128                        # BINPRM_BUF_SIZE: the kernel only ever looks at these bytes


@dataclass(frozen=True)
class Entry:
    """One binfmt_misc entry as the kernel prints it (``cat /proc/sys/fs/binfmt_misc/NAME``)."""

    name: str
    enabled: bool
    interpreter: str
    flags: str                      # as printed, e.g. "PF" or "POCF" ("C" implies "O")
    offset: int = 0
    magic: bytes = b""
    mask: bytes | None = None       # None: every bit of magic counts
    extension: str | None = None    # set for extension (type E) entries; those never match ELF
    order: int = 0                  # registration-order proxy (inode number); larger = newer

    @property
    def owned(self) -> bool:
        return self.name.startswith(OWN_PREFIX)

    def has_flag(self, flag: str) -> bool:
        return flag in self.flags

    def matches(self, header: bytes) -> bool:
        """Exactly the kernel's test: masked magic at offset, over the first 128 bytes only."""
        if self.extension is not None or not self.magic:
            return False
        if self.offset + len(self.magic) > HEADER_SIZE:
            return False
        buf = header[:HEADER_SIZE].ljust(HEADER_SIZE, b"\0")
        mask = self.mask if self.mask is not None else b"\xff" * len(self.magic)
        window = buf[self.offset:self.offset + len(self.magic)]
        return all((b ^ m) & k == 0 for b, m, k in zip(window, self.magic, mask, strict=True))

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "enabled": self.enabled, "interpreter": self.interpreter,
            "flags": self.flags, "offset": self.offset, "magic": self.magic.hex(),
            "mask": self.mask.hex() if self.mask is not None else None,
            "extension": self.extension, "podrepro": self.owned,
        }


def parse_entry(name: str, text: str, order: int = 0) -> Entry:
    """Parse the kernel's text for one entry; ValueError on anything that is not that format."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].strip() not in ("enabled", "disabled"):
        raise ValueError(f"binfmt_misc entry {name!r}: first line is not enabled/disabled")
    fields: dict[str, str] = {}
    for ln in lines[1:]:
        key, _, value = ln.partition(" ")
        fields[key.rstrip(":")] = value.strip()
    if "interpreter" not in fields:
        raise ValueError(f"binfmt_misc entry {name!r}: no interpreter line")
    try:
        magic = bytes.fromhex(fields.get("magic", ""))
        mask = bytes.fromhex(fields["mask"]) if "mask" in fields else None
        offset = int(fields.get("offset", "0"))
    except ValueError as e:
        raise ValueError(f"binfmt_misc entry {name!r}: {e}") from None
    ext = fields.get("extension")
    if ext is None and not magic:
        raise ValueError(f"binfmt_misc entry {name!r}: neither magic nor extension")
    return Entry(
        name=name, enabled=lines[0].strip() == "enabled", interpreter=fields["interpreter"],
        flags=fields.get("flags", ""), offset=offset, magic=magic, mask=mask,
        extension=ext.lstrip(".") if ext is not None else None, order=order,
    )


@dataclass(frozen=True)
class BinfmtState:
    directory: str
    mounted: bool
    enabled: bool                    # the global switch (``status``)
    entries: tuple[Entry, ...]       # newest first: the kernel's search order (see module doc)
    unreadable: tuple[str, ...] = ()

    def get(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)


def binfmt_dir() -> str:
    return os.environ.get(ENV_BINFMT_DIR) or BINFMT_DIR


def binfmt_d_dir() -> str:
    return os.environ.get(ENV_BINFMT_D) or BINFMT_D


def read_state(directory: str | None = None, *, order: Sequence[str] | None = None) -> BinfmtState:
    """Read a binfmt_misc directory (the real one, or a sample tree in the same format).

    ``order`` (names, oldest first) overrides the inode heuristic when the caller knows better;
    those names count as registered after every unlisted entry.
    """
    d = directory or binfmt_dir()
    status = os.path.join(d, "status")
    # an unmounted /proc/sys/fs/binfmt_misc is an empty directory (or missing without the module)
    if not os.path.isfile(status):
        return BinfmtState(d, mounted=False, enabled=False, entries=())
    try:
        with open(status, encoding="ascii", errors="replace") as f:
            enabled = f.read().strip() == "enabled"
    except OSError:
        enabled = False
    entries: list[Entry] = []
    bad: list[str] = []
    rank = {n: i for i, n in enumerate(order or ())}
    for name in sorted(os.listdir(d)):
        if name in ("register", "status"):
            continue
        path = os.path.join(d, name)
        try:
            st = os.stat(path)
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            # listed names are newer than every unlisted one, in the order given
            key = (1 << 62) + rank[name] if name in rank else st.st_ino
            entries.append(parse_entry(name, text, key))
        except (OSError, ValueError):
            bad.append(name)
    entries.sort(key=lambda e: e.order, reverse=True)
    return BinfmtState(d, True, enabled, tuple(entries), tuple(bad))
