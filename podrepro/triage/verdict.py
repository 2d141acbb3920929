"""The verdict rules: what kind of failure, and only from the evidence each kind needs.

Each unit (a test, or the command) gets one verdict from what the comparators observed, by the
first rule that applies (README, "Triage"):

1. the build failed on the target: *inconclusive*;
2. qemu-user's own trouble in a failing run (``QEMU internal SIGSEGV``, ``Unsupported syscall``,
   ``unhandled CPU exception``): *suspected emulator issue*;
3. never fails on the target: *CPU model* if another model of the CPU fails, else *not
   reproduced*;
4. fails in some runs only: *suspected emulator issue* if the single-threaded comparator and the
   natives never fail (a race of the program's own would fail natively too), else *flaky (k/N)*;
5. fails in every run: *CPU model* if another model of the CPU passes every run; then by the
   natives (amd64: 64-bit little-endian,
   i386: 32-bit little-endian, both without an emulator): both fail: *reproduces everywhere*;
   only i386 fails and the target is 32-bit: *32-bit*; both pass and single-threaded passes:
   *suspected emulator issue* (threads); both pass and the target's failing run
   calls a syscall qemu-user does not implement (beyond what every program's start-up hits), or
   shows the evidence of a known qemu-user artefact (``podrepro.fidelity``): *suspected emulator
   issue*; both pass and the target is big-endian: *byte order*; anything
   else: *inconclusive*, with what was seen.

A program's own fatal signal (qemu's ``uncaught target signal``) is named in the text, never
counted as the emulator's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("32-bit", "byte order", "CPU model", "emulator artefact", "suspected emulator issue", "flaky",
         "reproduces everywhere", "inconclusive", "not reproduced")


@dataclass(frozen=True)
class Observed:
    """One comparator's runs, for one unit."""

    name: str                 # "arm", "arm (cpu cortex-a7)", "amd64", "i386", "arm (single-threaded)"
    kind: str                 # "target" | "cpu" | "native" | "threads" | "system"
    arch: str
    bits: int                 # 32 | 64
    big_endian: bool
    runs: int
    failed: int
    build_failed: bool = False
    emulator: tuple[str, ...] = ()   # qemu's own trouble, from failing runs
    signal: str | None = None        # the program's own fatal signal in a failing run

    @property
    def fails(self) -> bool:
        return self.failed > 0

    @property
    def passes(self) -> bool:
        return self.runs > 0 and self.failed == 0 and not self.build_failed


@dataclass(frozen=True)
class Verdict:
    unit: str
    kind: str                 # one of KINDS
    text: str                 # the verdict with its evidence, one line


def _names(obs: Sequence[Observed]) -> str:
    return ", ".join(o.name for o in obs)


def decide(unit: str, observed: Sequence[Observed], missing: Sequence[str] = (),
           artefacts: Sequence[str] = ()) -> Verdict:
    """The verdict for ``unit``; ``missing``: syscalls the target's failing run called that
    qemu-user does not implement (start-up's own already taken out); ``artefacts``: the known
    qemu-user artefact classes whose evidence the failing run showed (``podrepro.fidelity``)."""
    t = next(o for o in observed if o.kind == "target")
    cpus = [o for o in observed if o.kind == "cpu"]
    threads = next((o for o in observed if o.kind == "threads" and not o.build_failed), None)
    natives = {o.arch: o for o in observed if o.kind == "native" and not o.build_failed}
    own = f"; the program's own {t.signal}" if t.signal else ""

    def v(kind: str, text: str) -> Verdict:
        return Verdict(unit, kind, text)

    if t.build_failed:
        return v("inconclusive", f"the build failed on {t.name}")
    system = next((o for o in observed if o.kind == "system" and not o.build_failed and o.runs), None)
    if system is not None and t.fails and system.passes:
        known = f" (evidence of {', '.join(artefacts)})" if artefacts else ""
        return v("emulator artefact", f"fails on {t.name} under qemu-user{known}, passes in a full-system VM with "
                 f"{t.arch}'s own kernel ({system.name}): the emulator's, not the program's")
    if system is not None and system.fails:
        artefacts = ()  # it fails with the target's own kernel too: that evidence is not the cause
    if t.emulator:
        return v("suspected emulator issue", f"qemu-user itself reports trouble on {t.name}: {t.emulator[0]}")
    if not t.fails:
        failing = [o for o in cpus if o.fails]
        if failing:
            return v("CPU model", f"fails with {_names(failing)}; passes with {_names([t, *(o for o in cpus if o.passes)])}")
        return v("not reproduced", f"passes on {t.name} in {t.runs} run{'s' if t.runs != 1 else ''}")
    natives_pass = all(natives.get(n) is not None and natives[n].passes for n in ("amd64", "i386"))
    if t.failed < t.runs:
        # single-threaded passes and the natives (threads and all) pass: the emulator's threads,
        # not the program's race (which the natives would show too)
        if threads is not None and threads.passes and natives_pass:
            return v("suspected emulator issue", f"fails {t.failed}/{t.runs} on {t.name} with threads, passes "
                     f"{threads.runs}/{threads.runs} single-threaded and natively: a thread race in qemu-user?{own}")
        return v("flaky", f"flaky ({t.failed}/{t.runs} on {t.name}){own}")
    passing_cpus = [o for o in cpus if o.passes]
    if passing_cpus:
        return v("CPU model", f"fails with {_names([t, *(o for o in cpus if o.fails)])}; passes with "
                 f"{_names(passing_cpus)}{own}")
    amd, x86 = natives.get("amd64"), natives.get("i386")
    if amd is None or x86 is None:
        return v("inconclusive", f"fails on {t.name}; no native comparator to tell word size or byte order{own}")
    if amd.fails and x86.fails:
        return v("reproduces everywhere", f"fails on {_names([t, amd, x86])}{own}")
    if amd.passes and x86.fails and t.bits == 32:
        return v("32-bit", f"fails on {t.name}, {x86.name}; passes on {amd.name}{own}")
    if amd.passes and x86.passes:
        if threads is not None and threads.passes:
            return v("suspected emulator issue", f"fails on {t.name} with threads, passes single-threaded and "
                     f"natively: a thread race in qemu-user?{own}")
        if artefacts:
            return v("suspected emulator issue", f"fails on {t.name} only, with the evidence of a known qemu-user "
                     f"artefact: {', '.join(artefacts)}; passes on {amd.name}, {x86.name}{own}")
        if missing:
            return v("suspected emulator issue", f"fails on {t.name} only, which called what qemu-user does not "
                     f"implement: {', '.join(missing)}; passes on {amd.name}, {x86.name}{own}")
        if t.big_endian:
            return v("byte order", f"fails on {t.name} (big-endian); passes on {amd.name}, {x86.name} (little-endian){own}")
        return v("inconclusive", f"fails on {t.name} only; passes on {amd.name}, {x86.name}: neither word size nor "
                 f"byte order (alignment, char signedness, memory order, or the emulator){own}")
    return v("inconclusive", f"fails on {_names([t, *(o for o in (amd, x86) if o.fails)])}; passes on "
             f"{_names([o for o in (amd, x86) if o.passes])}{own}")
