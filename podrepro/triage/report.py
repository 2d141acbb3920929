"""A triage's result: the comparators' observations per unit, the verdicts, the table, the JSON
(schema version 1, in the README's "Triage" section; fields are only ever added)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from podrepro import __version__
from podrepro.arches import lookup
from podrepro.triage.repeat import Series
from podrepro.triage.verdict import Observed, Verdict, decide

ALL_TESTS = "(all tests)"


@dataclass
class Comparator:
    name: str
    kind: str                      # "target" | "cpu" | "native" | "threads"
    arch: str
    cpu: str | None
    series: Series | None          # None: it could not run (``error``)
    error: str | None = None


@dataclass
class Report:
    arch: str
    mode: str                      # "test" | "run"
    command: list[str]
    filter: str | None
    repeat: int
    comparators: list[Comparator] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    artefacts: list[str] = field(default_factory=list)   # known qemu-user artefacts the failing run showed

    def units(self) -> list[str]:
        if self.mode != "test":
            return [" ".join(self.command)]
        names = {t for c in self.comparators if c.series for t in c.series.test_failures}
        return sorted(names) or [ALL_TESTS]

    def observed(self, unit: str) -> list[Observed]:
        out = []
        for c in self.comparators:
            a = lookup(c.arch)
            s = c.series
            if s is None or s.build_failed is not None:
                out.append(Observed(c.name, c.kind, c.arch, 8 * 4 * a.elf_class, a.big_endian, 0, 0, build_failed=True))
                continue
            failing = [r for r in s.runs if not r.passed and (
                self.mode != "test" or unit == ALL_TESTS or unit in r.failed_tests or not r.failed_tests)]
            emu = tuple(dict.fromkeys(m for r in failing for m in r.signs.emulator))
            sig = next((r.signs.target_signal or r.signal for r in failing if r.signs.target_signal or r.signal), None)
            out.append(Observed(c.name, c.kind, c.arch, 8 * 4 * a.elf_class, a.big_endian, len(s.runs), len(failing),
                                emulator=emu, signal=sig))
        return out

    def verdicts(self) -> list[Verdict]:
        return [decide(u, self.observed(u), self.missing, self.artefacts) for u in self.units()]

    def table(self) -> list[str]:
        units = self.units()
        rows = [["comparator", "runs", *units]]
        for c in self.comparators:
            if c.series is None or c.series.build_failed is not None:
                rows.append([c.name, "-", *(["build failed" if c.series else (c.error or "error")] * len(units))])
                continue
            obs = {u: next(o for o in self.observed(u) if o.name == c.name) for u in units}
            rows.append([c.name, str(len(c.series.runs)),
                         *(f"{'FAIL' if obs[u].fails else 'pass'} {obs[u].failed}/{obs[u].runs}" for u in units)])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]

    def lines(self) -> list[str]:
        out = self.table()
        if self.missing:
            out.append("not implemented by qemu-user, called by the failing run: " + ", ".join(self.missing))
        if self.artefacts:
            out.append("evidence of known qemu-user artefacts in the failing run: " + ", ".join(self.artefacts))
        out += [f"{v.unit}: {v.kind}: {v.text}" for v in self.verdicts()]
        return out

    def to_json(self) -> dict[str, Any]:
        comps = []
        for c in self.comparators:
            a = lookup(c.arch)
            s = c.series
            ok = s is not None and s.build_failed is None
            comps.append({
                "name": c.name, "kind": c.kind, "arch": c.arch, "cpu": c.cpu, "emulated": a.emulated,
                "bits": 8 * 4 * a.elf_class, "big_endian": a.big_endian,
                "runs": len(s.runs) if ok and s else 0, "failed": s.failures if ok and s else 0,
                "build_failed": not ok, "error": c.error,
                "failed_tests": dict(s.test_failures) if ok and s else {},
                "exit_codes": [r.returncode for r in s.runs] if ok and s else [],
                "emulator_messages": sorted({m for r in s.runs for m in r.signs.emulator}) if ok and s else [],
                "signals": sorted({x for r in s.runs for x in (r.signs.target_signal, r.signal) if x}) if ok and s else [],
            })
        return {"version": 1, "podrepro": __version__, "arch": self.arch, "mode": self.mode,
                "command": self.command or None, "filter": self.filter, "repeat": self.repeat,
                "comparators": comps, "missing_syscalls": list(self.missing), "artefacts": list(self.artefacts),
                "verdicts": [{"unit": v.unit, "verdict": v.kind, "text": v.text} for v in self.verdicts()]}


def missing_syscalls(failing: Series | None, baseline: Series | None, arch: str) -> list[str]:
    """What the target's traced run called that qemu-user does not implement, minus what a bare
    program's start-up already hits there (glibc's set_robust_list and rseq under qemu 7.2)."""
    from podrepro.triage.comparators import syscall_name

    if failing is None or failing.missing is None:
        return []
    base = set(baseline.missing or ()) if baseline is not None else set()
    return [syscall_name(k, arch) for k in sorted(failing.missing) if k not in base]

