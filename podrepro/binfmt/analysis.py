"""The per-architecture verdict: which entry would the kernel use for an ordinary binary of the
architecture, and is it fit for containers (see the package's doc for how the kernel chooses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from podrepro.arches import Arch
from podrepro.binfmt.elf import Interpreter, inspect_interpreter
from podrepro.binfmt.state import BinfmtState, Entry
from podrepro.findings import Distro, Finding


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
        # the usual cause: qemu-user-binfmt (Debian and Fedora alike) registers the dynamic
        # emulators, and with it installed next to qemu-user-static its entry can come first
        remove = {"debian": "apt-get remove -y", "fedora": "dnf remove -y"}.get(distro.family)
        out.append(Finding(
            "binfmt.interpreter", "fail",
            f"{a}: interpreter {win.interpreter} of {win.name} is dynamically linked (PT_INTERP): "
            "inside a container its shared libraries do not exist (qemu-user-binfmt registers such "
            "handlers; installed next to qemu-user-static, its handler can win)",
            f"{distro.sudo}{remove} qemu-user-binfmt && {install} && {reg}" if remove else f"{install} && {reg}", a))
    if not win.has_flag("F"):
        usable = False
        out.append(Finding(
            "binfmt.flag-f", "fail",
            f"{a}: handler {win.name} lacks flag F: the kernel looks for {win.interpreter} inside each "
            "container, where it does not exist", reg, a))
    if not win.has_flag("C"):
        out.append(Finding(
            "binfmt.flag-c", "warn",
            f"{a}: handler {win.name} lacks flag C: sudo and setuid programs fail inside containers (qemu runs "
            "them with the caller's credentials; Fedora's qemu-user-static registers F only). Optional: "
            "the fix registers podrepro's own entry with F and C, through sudo",
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
