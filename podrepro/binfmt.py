"""The host's binfmt_misc, as the kernel sees it: read it, judge it per architecture, plan a fix.

How the kernel picks a handler (fs/binfmt_misc.c): ``bm_register_write`` adds every new entry at
the *head* of its list (``list_add``) and ``check_file`` walks that list from the head, skipping
disabled entries, and returns the first whose magic matches ``(header[offset+i] ^ magic[i]) &
mask[i] == 0`` for every byte. So the most recently registered enabled match wins, names do not
matter, and a disabled entry is as good as absent.

/proc does not show the registration order. We order entries by inode number, newest last:
binfmt_misc gets each entry's inode from ``get_next_ino()`` at registration, which grows
monotonically per CPU (in batches of 1024), so it is right in practice but not guaranteed — which
is why more than one enabled match is always reported as shadowing, and why ``podrepro doctor``
also *executes* a probe binary: the probe is the ground truth. (File times are useless here:
enabling or disabling an entry bumps its mtime.)

podrepro only ever creates, enables or removes entries named ``podrepro-<qemu>`` (one per qemu
binary, so arm and armel share ``podrepro-arm``) and their persistence files
``<binfmt.d>/zz-podrepro-<qemu>.conf``. The ``zz-`` prefix matters: systemd-binfmt registers
the files of all binfmt.d directories sorted by file name, so sorting after the distro's
``qemu-*.conf`` makes podrepro's entry the newest after every boot too — the one that wins.

Flags podrepro registers: ``F`` (the kernel opens the interpreter at registration, so it runs
inside containers that do not contain qemu), ``C`` (credentials from the binary, not the
interpreter: setuid/sudo inside containers work; implies ``O``) and ``P`` (preserve argv[0]) only
where the interpreter can tell it was started with P — see ``preserve_argv0_supported``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from podrepro.arches import Arch
from podrepro.reporting import Confirm

BINFMT_DIR = "/proc/sys/fs/binfmt_misc"
BINFMT_D = "/etc/binfmt.d"
ENV_BINFMT_DIR = "PODREPRO_BINFMT_DIR"   # tests and unusual mounts
ENV_BINFMT_D = "PODREPRO_BINFMT_D"       # tests: keep persistence files out of /etc
OWN_PREFIX = "podrepro-"
HEADER_SIZE = 128                        # BINPRM_BUF_SIZE: the kernel only ever looks at these bytes

Severity = Literal["ok", "info", "warn", "fail"]
SEVERITIES: tuple[Severity, ...] = ("ok", "info", "warn", "fail")


@dataclass(frozen=True)
class Finding:
    """One line of a report: what was checked, how bad it is, what was found, how to fix it."""

    check: str                  # stable id, e.g. "binfmt.handler", "podman", "storage-driver"
    severity: Severity
    message: str
    fix: str | None = None      # the exact command (or config edit) that fixes it
    arch: str | None = None     # canonical alias when the finding is about one architecture

    def to_dict(self) -> dict[str, object]:
        return {"check": self.check, "arch": self.arch, "severity": self.severity,
                "message": self.message, "fix": self.fix}


# ---------------------------------------------------------------------------------------------
# distro-aware install commands (needed by fixes here and in host.py)

# logical package -> {family: package name}
_PACKAGES: dict[str, dict[str, str]] = {
    "qemu-user-static": {"debian": "qemu-user-static", "fedora": "qemu-user-static"},
    "podman": {"debian": "podman", "fedora": "podman"},
    "mmdebstrap": {"debian": "mmdebstrap", "fedora": "mmdebstrap"},
    "debian-archive-keyring": {"debian": "debian-archive-keyring", "fedora": "debian-keyring"},
    "uidmap": {"debian": "uidmap", "fedora": "shadow-utils"},
    "runc": {"debian": "runc", "fedora": "runc"},
    "sudo": {"debian": "sudo", "fedora": "sudo"},
}


@dataclass(frozen=True)
class Distro:
    id: str                                            # os-release ID ("debian", "fedora", ...)
    family: Literal["debian", "fedora", "unknown"]
    root: bool = False                                 # fixes for root need no "sudo "

    @property
    def sudo(self) -> str:
        return "" if self.root else "sudo "

    def install(self, *packages: str) -> str:
        """The install command for logical package names, in this distro's spelling."""
        if self.family == "unknown":
            names = " ".join(packages)
            return f"install {names} with your distribution's package manager"
        names = " ".join(_PACKAGES.get(p, {}).get(self.family, p) for p in packages)
        tool = "apt-get install -y" if self.family == "debian" else "dnf install -y"
        return f"{self.sudo}{tool} {names}"


def detect_distro(os_release: str = "/etc/os-release", *, root: bool | None = None) -> Distro:
    """Read os-release (ID and ID_LIKE) into apt-family vs dnf-family; never raises."""
    fields: dict[str, str] = {}
    try:
        with open(os_release, encoding="utf-8", errors="replace") as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep:
                    fields[k] = v.strip().strip("\"'")
    except OSError:
        pass
    did = fields.get("ID", "unknown").lower()
    like = {did, *fields.get("ID_LIKE", "").lower().split()}
    family: Literal["debian", "fedora", "unknown"] = "unknown"
    if like & {"debian", "ubuntu"}:
        family = "debian"
    elif like & {"fedora", "rhel", "centos"}:
        family = "fedora"
    return Distro(did, family, os.geteuid() == 0 if root is None else root)


# ---------------------------------------------------------------------------------------------
# parsing /proc/sys/fs/binfmt_misc


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


# ---------------------------------------------------------------------------------------------
# interpreters: present? static?

PT_INTERP = 3


def elf_is_static(data: bytes) -> bool:
    """True when the ELF has no PT_INTERP program header (static or static-pie).

    ValueError when ``data`` (the file's first few KiB) is not an ELF we can read.
    """
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ValueError("not an ELF file")
    end = "<" if data[5] == 1 else ">"
    if data[4] == 1:
        phoff = struct.unpack_from(end + "I", data, 28)[0]
        phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
    else:
        if len(data) < 64:
            raise ValueError("truncated ELF header")
        phoff = struct.unpack_from(end + "Q", data, 32)[0]
        phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
    if phnum and (phentsize < 4 or phoff + phentsize * phnum > len(data)):
        raise ValueError("program headers beyond the part read")
    return all(struct.unpack_from(end + "I", data, phoff + i * phentsize)[0] != PT_INTERP
               for i in range(phnum))


@dataclass(frozen=True)
class Interpreter:
    path: str                    # as registered
    resolved: str | None         # after following symlinks (within ``root``)
    exists: bool
    static: bool | None          # None: missing or not an ELF
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "resolved": self.resolved, "exists": self.exists,
                "static": self.static, "error": self.error}


def _resolve(root: Path, path: str, hops: int = 40) -> PurePosixPath:
    """realpath(path) as seen with ``root`` as /, so sample trees' absolute symlinks stay inside."""
    todo = list(PurePosixPath(path).parts[1:])
    cur = PurePosixPath("/")
    while todo:
        head = todo.pop(0)
        if head in ("", "."):
            continue
        if head == "..":
            cur = cur.parent
            continue
        host = root / (cur / head).relative_to("/")
        if host.is_symlink():
            hops -= 1
            if hops < 0:
                raise OSError(f"too many levels of symbolic links: {path}")
            target = PurePosixPath(os.readlink(host))
            if target.is_absolute():
                cur = PurePosixPath("/")
                todo = list(target.parts[1:]) + todo
            else:
                todo = list(target.parts) + todo
        else:
            cur = cur / head
    return cur


def inspect_interpreter(path: str, root: str = "/") -> Interpreter:
    """Does the interpreter exist (following symlinks) and is it static (no PT_INTERP)?"""
    try:
        resolved = _resolve(Path(root), path)
        host = Path(root) / resolved.relative_to("/")
        with open(host, "rb") as f:
            data = f.read(64 * 1024)
    except FileNotFoundError:
        return Interpreter(path, None, False, None, "no such file")
    except OSError as e:
        return Interpreter(path, None, False, None, e.strerror or str(e))
    try:
        static = elf_is_static(data)
    except ValueError as e:
        return Interpreter(path, str(resolved), True, None, str(e))
    return Interpreter(path, str(resolved), True, static)


# ---------------------------------------------------------------------------------------------
# per-architecture verdict


@dataclass(frozen=True)
class ArchReport:
    arch: Arch
    usable: bool
    entry: Entry | None                          # the entry the kernel would use (None: none)
    matching: tuple[Entry, ...] = ()             # every entry whose magic matches, newest first
    interpreter: Interpreter | None = None
    findings: tuple[Finding, ...] = field(default=())

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "fail")

    def to_dict(self) -> dict[str, object]:
        return {
            "arch": self.arch.alias, "qemu": self.arch.qemu, "usable": self.usable,
            "entry": self.entry.to_dict() if self.entry else None,
            "matching": [e.name for e in self.matching],
            "interpreter": self.interpreter.to_dict() if self.interpreter else None,
        }


def register_cmd(arch: Arch, force: bool = False) -> str:
    return f"podrepro binfmt register {arch.alias}" + (" --force" if force else "")


def global_findings(state: BinfmtState, distro: Distro) -> tuple[Finding, ...]:
    """binfmt_misc itself: mounted? switched on?"""
    if not state.mounted:
        return (Finding(
            "binfmt.mounted", "fail", f"binfmt_misc is not mounted at {state.directory}",
            f"{distro.sudo}mount -t binfmt_misc binfmt_misc {state.directory}",
        ),)
    if not state.enabled:
        return (Finding(
            "binfmt.enabled", "fail", "binfmt_misc is switched off globally (status: disabled)",
            f"echo 1 | {distro.sudo}tee {state.directory}/status",
        ),)
    return (Finding("binfmt.mounted", "ok", f"binfmt_misc mounted at {state.directory} and enabled"),)


def analyze(state: BinfmtState, arch: Arch, distro: Distro, *, root: str = "/") -> ArchReport:
    """Which entry would the kernel use for an ordinary ``arch`` binary, and is it fit for containers?"""
    from podrepro import elfprobe

    a = arch.alias
    if not arch.emulated:
        return ArchReport(arch, True, None, findings=(
            Finding("binfmt.handler", "ok", f"{a} runs natively on x86_64: no handler needed", arch=a),))
    if not state.mounted or not state.enabled:
        g = global_findings(state, distro)[0]
        return ArchReport(arch, False, None, findings=(
            Finding("binfmt.handler", "fail", f"{a}: no handler can run: {g.message}", g.fix, a),))

    header = elfprobe.header(arch)
    matching = tuple(e for e in state.entries if e.matches(header))
    enabled = [e for e in matching if e.enabled]
    reg = register_cmd(arch)
    if not matching:
        return ArchReport(arch, False, None, findings=(
            Finding("binfmt.handler", "fail", f"{a}: no binfmt_misc handler for {a} binaries", reg, a),))
    if not enabled:
        names = ", ".join(e.name for e in matching)
        return ArchReport(arch, False, None, matching, findings=(
            Finding("binfmt.handler", "fail", f"{a}: handler {names} is disabled", reg, a),))

    win = enabled[0]
    out: list[Finding] = []
    usable = True
    interp = inspect_interpreter(win.interpreter, root)
    install = distro.install("qemu-user-static")
    if not interp.exists:
        if win.has_flag("F"):
            # F: the kernel opened the file at registration and keeps it; it runs until re-registered
            out.append(Finding(
                "binfmt.interpreter", "warn",
                f"{a}: interpreter {win.interpreter} of {win.name} is gone ({interp.error}); it still "
                "runs from the file the kernel opened (flag F) but breaks at the next registration",
                f"{install} && {reg}", a))
        else:
            usable = False
            out.append(Finding(
                "binfmt.interpreter", "fail",
                f"{a}: interpreter {win.interpreter} of {win.name} is missing ({interp.error})",
                f"{install} && {reg}", a))
    elif interp.static is None:
        usable = False
        out.append(Finding(
            "binfmt.interpreter", "fail",
            f"{a}: interpreter {win.interpreter} of {win.name} is not an ELF executable ({interp.error})",
            f"{install} && {reg}", a))
    elif not interp.static:
        usable = False
        out.append(Finding(
            "binfmt.interpreter", "fail",
            f"{a}: interpreter {win.interpreter} of {win.name} is dynamically linked (PT_INTERP): "
            "inside a container its shared libraries do not exist",
            f"{install} && {reg}", a))
    if not win.has_flag("F"):
        usable = False
        out.append(Finding(
            "binfmt.flag-f", "fail",
            f"{a}: handler {win.name} lacks flag F: the kernel looks for {win.interpreter} inside each "
            "container, where it does not exist", reg, a))
    if not win.has_flag("C"):
        out.append(Finding(
            "binfmt.flag-c", "warn",
            f"{a}: handler {win.name} lacks flag C: sudo and setuid programs fail inside containers",
            register_cmd(arch, force=True), a))
    if len(enabled) > 1:
        rest = enabled[1:]
        dup = [e.name for e in rest if (e.offset, e.magic, e.mask) == (win.offset, win.magic, win.mask)]
        word = "duplicates" if len(dup) == len(rest) else "shadows"
        others = ", ".join(e.name for e in rest)
        fix = f"podrepro binfmt unregister {a}" if win.owned is False and any(e.owned for e in rest) else None
        out.append(Finding(
            "binfmt.shadowing", "warn",
            f"{a}: {len(enabled)} enabled handlers match; {win.name} {word} {others} (newest wins; "
            "order inferred from inode numbers — the probe run is the proof)", fix, a))
    if usable:
        out.insert(0, Finding(
            "binfmt.handler", "ok",
            f"{a}: handler {win.name} -> {win.interpreter} (flags {win.flags or '-'})", arch=a))
    return ArchReport(arch, usable, win, matching, interp, tuple(out))


# ---------------------------------------------------------------------------------------------
# host qemu, the P flag, the register line


def qemu_candidates(qemu: str, which: Callable[[str], str | None]) -> list[str]:
    """Where distros put a static qemu-user: PATH, /usr/bin, Debian's P-flag wrapper name."""
    found = which(f"qemu-{qemu}-static")
    c = [found] if found else []
    c += [f"/usr/bin/qemu-{qemu}-static", f"/usr/libexec/qemu-binfmt/{qemu}-binfmt-P"]
    return list(dict.fromkeys(c))


def find_static_qemu(qemu: str, *, which: Callable[[str], str | None] | None = None,
                     root: str = "/") -> str | None:
    """The first candidate that exists and is static (a dynamic one is useless in containers)."""
    import shutil

    for path in qemu_candidates(qemu, which or shutil.which):
        info = inspect_interpreter(path, root)
        if info.exists and info.static:
            return path
    return None


_VERSION_RE = re.compile(r"version (\d+)\.(\d+)")


def parse_qemu_version(text: str) -> tuple[int, int] | None:
    m = _VERSION_RE.search(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_kernel_version(release: str) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def qemu_version(path: str, *, timeout: float = 10.0) -> tuple[int, int] | None:
    import subprocess

    from podrepro.engine import process
    from podrepro.errors import PodreproError

    try:
        cp = process.run([path, "--version"], timeout=timeout)
    except (PodreproError, OSError, subprocess.TimeoutExpired):
        return None  # unknown version: P is simply left off
    return parse_qemu_version(cp.stdout.decode(errors="replace"))


def preserve_argv0_supported(interpreter: str, qemu: tuple[int, int] | None,
                             kernel: tuple[int, int] | None) -> bool:
    """May the entry carry flag P (preserve argv[0])?

    With P the kernel passes the binary's original argv[0] *in addition* to its path, so qemu must
    know whether P was used or it runs the wrong file. Two ways it can know:
    - QEMU >= 6.0 reads ``AT_FLAGS_PRESERVE_ARGV0`` from the aux vector (linux-user/main.c:
      ``preserve_argv0 = !!(qemu_getauxval(AT_FLAGS) & AT_FLAGS_PRESERVE_ARGV0)``, upstream commit
      "linux-user: manage binfmt-misc preserve-arg[0] flag"), which the kernel sets only since
      Linux 5.12 ("binfmt_misc: pass binfmt_misc flags to the interpreter"): both are needed.
    - Debian's qemu recognises being invoked as ``/usr/libexec/qemu-binfmt/<name>-binfmt-P``
      (Debian patch "linux-user: handle binfmt-misc P flag as a separate exe name"), any kernel.
    Without either, P would make qemu execute argv[0] instead of the binary: leave it off.
    """
    if os.path.basename(interpreter).endswith("-binfmt-P"):
        return True
    return qemu is not None and qemu >= (6, 0) and kernel is not None and kernel >= (5, 12)


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


# ---------------------------------------------------------------------------------------------
# commands as data


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    input: bytes | None = None

    def display(self) -> str:
        """A copy-pasteable shell line (only for showing; execution never uses a shell)."""
        cmd = shlex.join(self.argv)
        if self.input is None:
            return cmd
        text = self.input.decode("utf-8", errors="replace")
        lines = text.rstrip("\n").split("\n")
        if self.argv and "tee" in self.argv:
            cmd += " >/dev/null"
        return f"printf '%s\\n' {' '.join(shlex.quote(x) for x in lines)} | {cmd}"


def tee(path: str, data: str, prefix: Sequence[str] = ()) -> Command:
    """Write ``data`` to a root-owned path with no shell: ``[sudo] tee PATH`` fed on stdin."""
    return Command((*prefix, "tee", path), data.encode())


def register_commands(arch: Arch, line: str, *, directory: str, binfmt_d: str | None,
                      prefix: Sequence[str] = ()) -> tuple[Command, ...]:
    """Register now (one write of the line to ``register``) and, unless ``binfmt_d`` is None, persist."""
    cmds = [tee(f"{directory}/register", line + "\n", prefix)]
    if binfmt_d is not None:
        note = f"# podrepro binfmt register {arch.alias} (for systemd-binfmt); undo: podrepro binfmt unregister {arch.alias}\n"
        cmds.append(Command((*prefix, "mkdir", "-p", binfmt_d)))
        cmds.append(tee(f"{binfmt_d}/{conf_name(arch)}", note + line + "\n", prefix))
    return tuple(cmds)


def unregister_commands(entry: str | None, conf: str | None, *, directory: str,
                        prefix: Sequence[str] = ()) -> tuple[Command, ...]:
    """``-1`` to the entry removes it (the kernel's way); then the persistence file, if any."""
    cmds: list[Command] = []
    if entry is not None:
        if not entry.startswith(OWN_PREFIX):
            raise ValueError(f"refusing to remove {entry!r}: podrepro removes only its own entries")
        cmds.append(tee(f"{directory}/{entry}", "-1\n", prefix))
    if conf is not None:
        if not os.path.basename(conf).startswith(f"zz-{OWN_PREFIX}"):
            raise ValueError(f"refusing to remove {conf!r}: not a podrepro binfmt.d file")
        cmds.append(Command((*prefix, "rm", "-f", conf)))
    return tuple(cmds)


Action = Literal["register", "replace", "enable", "unregister", "nothing"]


@dataclass(frozen=True)
class Plan:
    """What ``register`` will do for one qemu binary (arm and armel share one)."""

    qemu: str
    arches: tuple[str, ...]
    name: str
    action: Action
    reason: str
    line: str | None = None
    commands: tuple[Command, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"qemu": self.qemu, "arches": list(self.arches), "entry": self.name,
                "action": self.action, "reason": self.reason, "line": self.line,
                "commands": [list(c.argv) for c in self.commands]}


@dataclass(frozen=True)
class HostFacts:
    """What planning needs to know about the host, injectable for tests."""

    directory: str
    binfmt_d: str | None              # None: do not persist
    prefix: tuple[str, ...] = ()      # ("sudo",) when not root
    root: str = "/"                   # where interpreter paths are looked up
    which: Callable[[str], str | None] | None = None
    qemu_version: Callable[[str], tuple[int, int] | None] = qemu_version
    kernel: tuple[int, int] | None = None


def plan_register(arches: Iterable[Arch], state: BinfmtState, distro: Distro, facts: HostFacts,
                  *, force: bool = False) -> list[Plan]:
    """One Plan per qemu binary; raises HostNotReady when a needed static qemu is missing."""
    from podrepro.errors import HostNotReady

    groups: dict[str, list[Arch]] = {}
    for a in arches:
        if a.qemu is not None:
            groups.setdefault(a.qemu, []).append(a)
    plans: list[Plan] = []
    pre: tuple[Command, ...] = ()
    if not state.mounted:
        pre = (Command((*facts.prefix, "mount", "-t", "binfmt_misc", "binfmt_misc", facts.directory)),)
    elif not state.enabled:
        pre = (tee(f"{facts.directory}/status", "1\n", facts.prefix),)
    for qemu, group in groups.items():
        arch = group[0]
        aliases = tuple(a.alias for a in group)
        name = entry_name(arch)
        reports = [analyze(state, a, distro, root=facts.root) for a in group]
        usable = all(r.usable for r in reports)
        own = state.get(name)
        own_wins = usable and all(r.entry is not None and r.entry.name == name for r in reports)
        if usable and (not force or own_wins):
            who = reports[0].entry.name if reports[0].entry else "?"
            reason = (f"{name} is already registered and usable" if own_wins else
                      f"handler {who} is usable; nothing to do (--force adds podrepro's own, flags F and C)")
            plans.append(Plan(qemu, aliases, name, "nothing", reason))
            continue
        # reasons without the "alias: " prefix: the CLI prints the arch names in front
        why = "; ".join(dict.fromkeys(f.message.removeprefix(f"{f.arch}: ")
                                      for r in reports for f in r.problems)) or "forced (--force)"
        if own is not None and not own.enabled and state.mounted:
            own_report = _entry_fit(own, arch, facts.root)
            if own_report:
                plans.append(Plan(qemu, aliases, name, "enable", f"{why}; re-enabling {name}",
                                  commands=(*pre, tee(f"{facts.directory}/{name}", "1\n", facts.prefix))))
                continue
        interp = find_static_qemu(qemu, which=facts.which, root=facts.root)
        if interp is None:
            raise HostNotReady(
                f"no static qemu-{qemu} on this host (looked for {', '.join(qemu_candidates(qemu, facts.which or _none))})",
                hint=distro.install("qemu-user-static"))
        p_ok = preserve_argv0_supported(interp, facts.qemu_version(interp), facts.kernel)
        line = register_line(arch, interp, build_flags(p_ok))
        cmds: list[Command] = list(pre)
        action: Action = "register"
        if own is not None:
            action = "replace"
            cmds += unregister_commands(name, None, directory=facts.directory, prefix=facts.prefix)
        cmds += register_commands(arch, line, directory=facts.directory, binfmt_d=facts.binfmt_d,
                                  prefix=facts.prefix)
        plans.append(Plan(qemu, aliases, name, action, why, line, tuple(cmds)))
        pre = ()  # mount/enable once, before the first registration
    return plans


def _none(_: str) -> str | None:
    return None


def _entry_fit(e: Entry, arch: Arch, root: str) -> bool:
    """Would our own (disabled) entry be good once enabled? Same magic, static interpreter, F."""
    from podrepro import elfprobe

    info = inspect_interpreter(e.interpreter, root)
    return (e.matches(elfprobe.header(arch)) and e.has_flag("F") and info.exists and info.static is True)


def plan_unregister(arches: Iterable[Arch], state: BinfmtState, facts: HostFacts) -> list[Plan]:
    """Remove podrepro-<qemu> entries and their binfmt.d files; nothing else, ever."""
    plans: list[Plan] = []
    seen: set[str] = set()
    for a in arches:
        if a.qemu is None or a.qemu in seen:
            continue
        seen.add(a.qemu)
        name = entry_name(a)
        aliases = tuple(x.alias for x in arches_of_qemu(a.qemu))
        own = state.get(name)
        conf = f"{facts.binfmt_d}/{conf_name(a)}" if facts.binfmt_d else None
        conf_exists = conf is not None and os.path.exists(conf)
        if own is None and not conf_exists:
            plans.append(Plan(a.qemu, aliases, name, "nothing", f"{name} is not registered; nothing to do"))
            continue
        cmds = unregister_commands(name if own else None, conf if conf_exists else None,
                                   directory=facts.directory, prefix=facts.prefix)
        plans.append(Plan(a.qemu, aliases, name, "unregister", f"removing {name}", commands=cmds))
    return plans


def arches_of_qemu(qemu: str) -> list[Arch]:
    from podrepro.arches import by_qemu

    return by_qemu(qemu)


def privilege_prefix(euid: int, which: Callable[[str], str | None]) -> tuple[str, ...]:
    """() as root; ("sudo",) otherwise; HostNotReady when neither works."""
    from podrepro.errors import HostNotReady

    if euid == 0:
        return ()
    if which("sudo") is None:
        raise HostNotReady(
            "changing binfmt_misc needs root, and sudo is not installed",
            hint="run the same podrepro command as root (e.g. after 'su -'), or install sudo",
        )
    return ("sudo",)


def execute(commands: Sequence[Command], *, run: Callable[..., object] | None = None) -> None:
    """Run each command through the chokepoint; the first failure stops with its stderr."""
    from podrepro.engine import process
    from podrepro.errors import PodreproError

    runner = run or process.run
    for c in commands:
        cp = runner(list(c.argv), input=c.input, timeout=60)
        rc = getattr(cp, "returncode", 0)
        if rc != 0:
            err = process.last_line(getattr(cp, "stderr", b"") or b"", "no error message")
            raise PodreproError(
                f"{c.display()} failed (exit {rc}): {err}",
                hint="nothing after this command ran; run 'podrepro binfmt status' to see the state",
            )


# ---------------------------------------------------------------------------------------------
# the quick gate every container-running command calls


def default_facts(*, persist: bool = True, euid: int | None = None,
                  which: Callable[[str], str | None] | None = None) -> HostFacts:
    import shutil

    w = which or shutil.which
    return HostFacts(
        directory=binfmt_dir(), binfmt_d=binfmt_d_dir() if persist else None,
        prefix=privilege_prefix(os.geteuid() if euid is None else euid, w), which=w,
        kernel=parse_kernel_version(os.uname().release),
    )


def ensure_handler(arch: Arch, *, confirm: Confirm | None = None,
                   directory: str | None = None) -> ArchReport | None:
    """Return quickly when ``arch`` can run; otherwise stop with the one line that says what to run.

    Reads binfmt_misc's few small files and the winning interpreter's ELF header: no subprocess on
    the happy path. With ``confirm`` (someone at a terminal to ask) it offers the registration
    instead of failing.
    """
    from podrepro.errors import HostNotReady

    if not arch.emulated:
        return None
    distro = detect_distro()
    state = read_state(directory)
    report = analyze(state, arch, distro)
    if report.usable:
        return report
    first = report.problems[0] if report.problems else None
    reason = first.message if first else f"{arch.alias}: no usable binfmt_misc handler"
    if confirm is not None:
        try:
            facts = dataclasses.replace(default_facts(), directory=state.directory)
            plans = [p for p in plan_register([arch], state, distro, facts) if p.commands]
        except HostNotReady:
            plans = []  # no sudo / no qemu: the one-line hint below says what to do
        shown = "\n".join(c.display() for p in plans for c in p.commands)
        if plans and confirm(f"{reason}\npodrepro can register a handler (one time, persistent):\n{shown}\nRun these now?"):
            execute([c for p in plans for c in p.commands])
            report = analyze(read_state(state.directory), arch, distro)
            if report.usable:
                return report
    raise HostNotReady(reason, hint=f"run: {register_cmd(arch)}")
