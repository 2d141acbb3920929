"""Registering and removing handlers: the privileged commands as data, plans that say what
``podrepro binfmt register|unregister`` will do and why, running them, and the quick gate every
container-running command calls."""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from podrepro.arches import Arch
from podrepro.binfmt.analysis import ArchReport, analyze, register_cmd
from podrepro.binfmt.elf import inspect_interpreter
from podrepro.binfmt.lines import build_flags, conf_name, entry_name, register_line
from podrepro.binfmt.qemu import (
    find_static_qemu,
    parse_kernel_version,
    preserve_argv0_supported,
    qemu_candidates,
    qemu_version,
    root_owned_chain,
)
from podrepro.binfmt.state import OWN_PREFIX, BinfmtState, Entry, binfmt_d_dir, binfmt_dir, read_state
from podrepro.findings import Distro, detect_distro
from podrepro.reporting import Confirm


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
    # which interpreter may become a system-wide handler (None: root_owned_chain under ``root``)
    trusted: Callable[[str], bool] | None = None


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
        trusted = facts.trusted or (lambda path: root_owned_chain(path, facts.root))
        interp = find_static_qemu(qemu, which=facts.which, root=facts.root, trusted=trusted)
        if interp is None and find_static_qemu(qemu, which=facts.which, root=facts.root) is not None:
            mine = find_static_qemu(qemu, which=facts.which, root=facts.root)
            raise HostNotReady(
                f"{mine} is not root-owned all the way up (file and directories): podrepro registers "
                f"a system-wide handler only for a root-owned qemu-{qemu}, never one a user could replace",
                hint=distro.install("qemu-user-static"))
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


# ---- the quick gate every container-running command calls ------------------------------------


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
