"""The architecture table: the single source of truth for every spelling of an architecture.

Every other mapping in podrepro (CLI aliases, Debian arch, OCI platform, ``uname -m``, qemu-user
binary, binfmt_misc magic/mask) is derived from the frozen records below; ``tests/unit/test_arches.py``
checks them against each other so they cannot drift.

binfmt_misc magic and mask belong to a qemu-user binary (arm and armel share qemu-arm, and so one
binfmt_misc entry): ``QEMU_BINFMT`` holds them per binary, and a record's ``magic``/``mask`` come
from its ``qemu``. The values are the facts from QEMU's ``scripts/qemu-binfmt-conf.sh``
(QEMU 7.2, the version Debian 12 ships as qemu-user-static; identical to the files it installs in
``/usr/lib/binfmt.d/``). The mipsel/mips entries use QEMU 7.2's o32-only masks (byte 36, EF_MIPS_ABI2,
must be clear) so an n32 binary is not claimed by the o32 emulator.
"""

from __future__ import annotations

from dataclasses import dataclass

from podrepro.errors import UsageError


def _hex(s: str) -> bytes:
    r"""Decode qemu-binfmt-conf.sh's ``\xNN`` notation."""
    return bytes(int(h, 16) for h in s.split("\\x")[1:])


@dataclass(frozen=True)
class Arch:
    alias: str                 # canonical CLI name
    spellings: tuple[str, ...]  # other accepted input names
    debian: str                # Debian architecture (dpkg --print-architecture)
    oci_arch: str              # OCI/GOARCH architecture
    oci_variant: str | None    # OCI variant (v7, v5, ...)
    uname_m: str               # what `uname -m` prints inside the container
    qemu: str | None           # qemu-user name (qemu-<name>-static); None = runs natively on x86_64
    suite: str                 # default Debian suite
    elf_class: int             # 1 = ELF32, 2 = ELF64
    big_endian: bool
    elf_machine: int           # e_machine
    elf_flags: int = 0         # e_flags of an ordinary userland binary of this ABI
    note: str = ""

    @property
    def oci_platform(self) -> str:
        p = f"linux/{self.oci_arch}"
        return f"{p}/{self.oci_variant}" if self.oci_variant else p

    @property
    def emulated(self) -> bool:
        return self.qemu is not None

    @property
    def magic(self) -> bytes:
        """binfmt_misc magic (an ELF header prefix) of this arch's qemu; b"" when it runs natively."""
        return QEMU_BINFMT[self.qemu][0] if self.qemu else b""

    @property
    def mask(self) -> bytes:
        return QEMU_BINFMT[self.qemu][1] if self.qemu else b""

    @property
    def binfmt_name(self) -> str | None:
        """Name of podrepro's own binfmt_misc entry for this arch's qemu (shared by arm/armel)."""
        return f"podrepro-{self.qemu}" if self.qemu else None

    def to_dict(self) -> dict[str, object]:
        return {
            "alias": self.alias,
            "spellings": list(self.spellings),
            "debian": self.debian,
            "oci_platform": self.oci_platform,
            "oci_os": "linux",
            "oci_arch": self.oci_arch,
            "oci_variant": self.oci_variant,
            "uname_m": self.uname_m,
            "qemu": self.qemu,
            "suite": self.suite,
            "endian": "big" if self.big_endian else "little",
            "bits": 32 if self.elf_class == 1 else 64,
            "note": self.note,
        }


_ELF32_LE_MASK = _hex(r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff")

# (magic, mask) per qemu-user binary: qemu-binfmt-conf.sh's <name>_magic and <name>_mask
QEMU_BINFMT: dict[str, tuple[bytes, bytes]] = {
    "arm": (_hex(r"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00"),
            _ELF32_LE_MASK),
    "mipsel": (
        _hex(r"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00"
             r"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
        _hex(r"\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
             r"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20"),
    ),
    "aarch64": (_hex(r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"),
                _ELF32_LE_MASK),
    "mips64el": (_hex(r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00"),
                 _hex(r"\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff")),
    "ppc64le": (_hex(r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15\x00"),
                _hex(r"\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00")),
    "s390x": (_hex(r"\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16"),
              _hex(r"\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff")),
    "riscv64": (_hex(r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00"),
                _ELF32_LE_MASK),
}

ARCHES: tuple[Arch, ...] = (
    Arch(
        alias="arm", spellings=("armhf", "armv7", "armv7l", "armv7hl", "arm32", "arm32v7", "arm/v7"),
        debian="armhf", oci_arch="arm", oci_variant="v7", uname_m="armv7l", qemu="arm",
        suite="bookworm", elf_class=1, big_endian=False, elf_machine=40,
        elf_flags=0x05000400,  # EABI5, hard-float
    ),
    Arch(
        alias="mips", spellings=("mipsel", "mipsle", "mips32el", "mips32le"),
        debian="mipsel", oci_arch="mipsle", oci_variant=None, uname_m="mips", qemu="mipsel",
        suite="bookworm", elf_class=1, big_endian=False, elf_machine=8,
        elf_flags=0x50001007,  # o32, MIPS32R2, PIC|CPIC|NOREORDER
        note="Debian 13 dropped mipsel; bookworm is the last suite",
    ),
    Arch(
        alias="arm64", spellings=("aarch64", "arm64v8", "armv8", "arm64/v8"),
        debian="arm64", oci_arch="arm64", oci_variant=None, uname_m="aarch64", qemu="aarch64",
        suite="trixie", elf_class=2, big_endian=False, elf_machine=183,
    ),
    Arch(
        alias="armel", spellings=("armv5", "armv5l", "armv5tel", "arm32v5", "arm/v5"),
        debian="armel", oci_arch="arm", oci_variant="v5", uname_m="armv7l", qemu="arm",
        suite="bookworm", elf_class=1, big_endian=False, elf_machine=40,
        elf_flags=0x05000200,  # EABI5, soft-float
        note="qemu-arm's default CPU reports armv7l",
    ),
    Arch(
        alias="mips64el", spellings=("mips64le", "mips64"),
        debian="mips64el", oci_arch="mips64le", oci_variant=None, uname_m="mips64", qemu="mips64el",
        suite="bookworm", elf_class=2, big_endian=False, elf_machine=8, elf_flags=0x80000007,
        note="Debian 13 dropped mips64el; bookworm is the last suite",
    ),
    Arch(
        alias="i386", spellings=("x86", "i686", "i586", "386", "ia32"),
        debian="i386", oci_arch="386", oci_variant=None, uname_m="i686", qemu=None,
        suite="bookworm", elf_class=1, big_endian=False, elf_machine=3,
        note="runs natively on x86_64 (no qemu); uname -m says i686 only where the runtime sets the 32-bit personality",
    ),
    Arch(
        alias="ppc64el", spellings=("ppc64le", "powerpc64le"),
        debian="ppc64el", oci_arch="ppc64le", oci_variant=None, uname_m="ppc64le", qemu="ppc64le",
        suite="trixie", elf_class=2, big_endian=False, elf_machine=21, elf_flags=2,
    ),
    Arch(
        alias="s390x", spellings=("s390", "systemz"),
        debian="s390x", oci_arch="s390x", oci_variant=None, uname_m="s390x", qemu="s390x",
        suite="trixie", elf_class=2, big_endian=True, elf_machine=22,
        note="big-endian: shows byte-order bugs",
    ),
    Arch(
        alias="riscv64", spellings=("riscv", "rv64", "rv64gc"),
        debian="riscv64", oci_arch="riscv64", oci_variant=None, uname_m="riscv64", qemu="riscv64",
        suite="trixie", elf_class=2, big_endian=False, elf_machine=243,
        elf_flags=0x5,  # RVC, double-float ABI
    ),
)

# the host: the build machine of hybrid cross builds (``podrepro.cross``), and a native target of
# its own (triage's 64-bit little-endian comparator; "does it fail natively too?")
HOST = Arch(
    alias="amd64", spellings=("x86_64", "x86-64", "x64"), debian="amd64", oci_arch="amd64", oci_variant=None,
    uname_m="x86_64", qemu=None, suite="bookworm", elf_class=2, big_endian=False, elf_machine=62,
    note="the host itself: runs natively (no qemu); the build machine of cross builds",
)
ARCHES = (*ARCHES, HOST)

_BY_NAME: dict[str, Arch] = {}
for _a in ARCHES:
    for _n in (_a.alias, _a.debian, *_a.spellings):
        # first writer wins; the alias of an arch always beats another arch's spelling
        _BY_NAME.setdefault(_n.lower(), _a)
for _a in ARCHES:
    _BY_NAME[_a.alias] = _a
# OCI platform strings are accepted as input too ("linux/arm/v7")
for _a in ARCHES:
    _BY_NAME.setdefault(_a.oci_platform, _a)


def aliases() -> list[str]:
    return [a.alias for a in ARCHES]


def lookup(name: str) -> Arch:
    """Resolve any accepted spelling to its Arch; unknown names raise a one-line UsageError."""
    key = name.strip().lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    raise UsageError(
        f"unknown architecture {name!r}; known: {', '.join(aliases())}",
        hint="run 'podrepro arches' to see every accepted spelling",
    )


def by_qemu(qemu: str) -> list[Arch]:
    return [a for a in ARCHES if a.qemu == qemu]
