"""podrepro.triage: the Wilson interval, qemu's own words, the verdict rules, the report."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from podrepro.arches import lookup
from podrepro.errors import UsageError
from podrepro.triage import comparators, signs, stats
from podrepro.triage.repeat import Run, Series
from podrepro.triage.report import Comparator, Report, missing_syscalls
from podrepro.triage.verdict import KINDS, Observed, decide

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


# ---- the interval -----------------------------------------------------------------------------

@pytest.mark.parametrize("k, n, lo, hi", [
    (0, 10, 0.0, 0.2775),    # Wilson's interval for 0/10 (Brown, Cai & DasGupta 2001, table values)
    (5, 10, 0.2366, 0.7634),
    (7, 20, 0.1812, 0.5671),
    (20, 20, 0.8389, 1.0),
])
def test_wilson_interval(k: int, n: int, lo: float, hi: float) -> None:
    a, b = stats.wilson(k, n)
    assert a == pytest.approx(lo, abs=5e-4) and b == pytest.approx(hi, abs=5e-4)


def test_wilson_without_runs_says_nothing() -> None:
    assert stats.wilson(0, 0) == (0.0, 1.0)


# ---- qemu's words -------------------------------------------------------------------------------

def test_emulator_trouble_is_told_from_the_programs_own_signal() -> None:
    own = signs.read("qemu: uncaught target signal 11 (Segmentation fault) - core dumped\nSegmentation fault\n")
    assert own.emulator == () and own.target_signal == "Segmentation fault"
    crash = signs.read("QEMU internal SIGSEGV {code=MAPERR, addr=0x20}\nqemu: uncaught target signal 11 (x)\n")
    assert crash.emulator == ("QEMU internal SIGSEGV {code=MAPERR, addr=0x20}",)
    assert signs.read("Unsupported syscall: 4444\n").emulator == ("Unsupported syscall: 4444",)
    assert signs.read("qemu: unhandled CPU exception 0x8 - aborting\n").emulator[0].startswith("unhandled CPU exception")


@pytest.mark.parametrize("rc, sig", [(0, None), (1, None), (8, None), (139, "SIGSEGV"), (134, "SIGABRT"),
                                     (125, None), (127, None), (-9, "SIGKILL")])
def test_exit_signal(rc: int, sig: str | None) -> None:
    assert signs.exit_signal(rc) == sig


# ---- the verdict rules ------------------------------------------------------------------------

def _o(name: str, kind: str, failed: int, runs: int = 3, **kw: object) -> Observed:
    arch = name.split(" ")[0]
    a = lookup(arch)
    return Observed(name, kind, arch, 8 * 4 * a.elf_class, a.big_endian, runs, failed, **kw)  # type: ignore[arg-type]


def test_fails_on_arm_and_i386_not_amd64_is_32bit() -> None:
    v = decide("checksum", [_o("arm", "target", 3), _o("arm (cpu cortex-a7)", "cpu", 3), _o("amd64", "native", 0),
                            _o("i386", "native", 3)])
    assert v.kind == "32-bit" and v.text == "fails on arm, i386; passes on amd64"


def test_fails_on_s390x_only_is_byte_order() -> None:
    v = decide("wire", [_o("s390x", "target", 3), _o("amd64", "native", 0), _o("i386", "native", 0)])
    assert v.kind == "byte order"


def test_fails_everywhere_with_the_programs_own_signal() -> None:
    v = decide("nullderef", [_o("arm", "target", 3, signal="Segmentation fault"), _o("amd64", "native", 3),
                             _o("i386", "native", 3)])
    assert v.kind == "reproduces everywhere" and "the program's own Segmentation fault" in v.text


def test_qemus_own_trouble_wins() -> None:
    v = decide("x", [_o("arm", "target", 3, emulator=("QEMU internal SIGSEGV",)), _o("amd64", "native", 3),
                     _o("i386", "native", 3)])
    assert v.kind == "suspected emulator issue"


def test_an_unimplemented_syscall_only_counts_when_the_natives_pass() -> None:
    obs = [_o("arm", "target", 3), _o("amd64", "native", 0), _o("i386", "native", 0)]
    assert decide("uring", obs, ["syscall 425 (io_uring_setup)"]).kind == "suspected emulator issue"
    assert decide("uring", obs, []).kind == "inconclusive"
    assert decide("c", [_o("arm", "target", 3), _o("amd64", "native", 0), _o("i386", "native", 3)],
                  ["syscall 425"]).kind == "32-bit"


def test_some_runs_fail_is_flaky_unless_single_threaded_passes() -> None:
    assert decide("t", [_o("arm", "target", 1, runs=20)]).text == "flaky (1/20 on arm)"
    natives = [_o("amd64", "native", 0, runs=20), _o("i386", "native", 0, runs=20)]
    v = decide("t", [_o("arm", "target", 4, runs=20), _o("arm (single-threaded)", "threads", 0, runs=20), *natives])
    assert v.kind == "suspected emulator issue" and "single-threaded" in v.text
    # a race of the program's own fails natively too: flaky, not the emulator
    racy = [_o("amd64", "native", 3, runs=20), _o("i386", "native", 0, runs=20)]
    assert decide("t", [_o("arm", "target", 4, runs=20), _o("arm (single-threaded)", "threads", 0, runs=20),
                        *racy]).kind == "flaky"
    always = decide("t", [_o("arm", "target", 3), _o("arm (single-threaded)", "threads", 0), _o("amd64", "native", 0),
                          _o("i386", "native", 0)])
    assert always.kind == "suspected emulator issue" and "thread race" in always.text
    assert decide("t", [_o("arm", "target", 3), _o("arm (single-threaded)", "threads", 0), _o("amd64", "native", 3),
                        _o("i386", "native", 3)]).kind == "reproduces everywhere"


def test_cpu_model_when_models_disagree() -> None:
    assert decide("t", [_o("arm", "target", 3), _o("arm (cpu cortex-a7)", "cpu", 0)]).kind == "CPU model"
    assert decide("t", [_o("arm", "target", 0), _o("arm (cpu cortex-a15)", "cpu", 3)]).kind == "CPU model"


def test_never_fails_and_build_failures() -> None:
    assert decide("t", [_o("arm", "target", 0)]).kind == "not reproduced"
    assert decide("t", [_o("arm", "target", 0, build_failed=True)]).kind == "inconclusive"
    # no native comparator: nothing to tell word size from byte order
    assert decide("t", [_o("arm", "target", 3)]).kind == "inconclusive"


def test_an_emulator_artefact_needs_a_full_system_vm_that_passes() -> None:
    natives = [_o("amd64", "native", 0), _o("i386", "native", 0)]
    vm = _o("arm (full-system VM)", "system", 0, runs=1)
    v = decide("lsdir", [_o("arm", "target", 3), vm], artefacts=["readdir-cookies"])
    assert v.kind == "emulator artefact" and "passes in a full-system VM" in v.text and "readdir-cookies" in v.text
    # the same evidence without the VM: only a suspicion
    assert decide("lsdir", [_o("arm", "target", 3), *natives], artefacts=["readdir-cookies"]).kind == \
        "suspected emulator issue"
    # failing in the VM too: the evidence was not the cause
    failing_vm = _o("arm (full-system VM)", "system", 1, runs=1)
    assert decide("lsdir", [_o("arm", "target", 3), *natives, failing_vm], artefacts=["readdir-cookies"]).kind == \
        "inconclusive"


def test_every_verdict_kind_is_documented() -> None:
    for kind in KINDS:
        assert f"*{kind}*" in README or f'"{kind}"' in README, kind


# ---- comparators ------------------------------------------------------------------------------

def test_cpu_models_defaults_lists_and_checks() -> None:
    arm = lookup("arm")
    assert comparators.cpu_models(arm, None) == ["cortex-a7", "cortex-a15"]
    assert comparators.cpu_models(arm, "cortex-a9, max") == ["cortex-a9", "max"]
    assert comparators.cpu_models(arm, "none") == []
    assert comparators.cpu_models(lookup("i386"), None) == []
    with pytest.raises(UsageError):
        comparators.cpu_models(arm, "a;rm -rf /")
    listing = "Available CPUs:\n  arm926\n  cortex-a7\n  max\n"
    assert comparators.cpu_models(arm, "all", listing) == ["arm926", "cortex-a7"]
    assert comparators.parse_cpu_help("MIPS '24Kf'\nMIPS '74Kf'\n") == ["24Kf", "74Kf"]


def test_every_default_cpu_model_set_names_a_table_arch() -> None:
    from podrepro.arches import aliases

    assert set(comparators.DEFAULT_CPU_MODELS) <= set(aliases())
    assert all(lookup(a).emulated for a in comparators.DEFAULT_CPU_MODELS)


def test_syscall_names_with_the_mips_base() -> None:
    assert comparators.syscall_name("syscall 425", "arm") == "syscall 425 (io_uring_setup)"
    assert comparators.syscall_name("syscall 4425", "mips") == "syscall 4425 (io_uring_setup)"
    assert comparators.syscall_name("set_robust_list", "arm") == "set_robust_list"


# ---- the report and its JSON ------------------------------------------------------------------

def _series(label: str, fails: list[tuple[str, ...] | None]) -> Series:
    s = Series(label)
    for i, f in enumerate(fails, 1):
        s.runs.append(Run(i, 8 if f is not None else 0, 1.0, f or (), 3, Path(f"/l/run-{i}.log"),
                          signs.Signs((), None), None))
    return s


def _report() -> Report:
    r = Report("arm", "test", [], None, 2)
    r.comparators = [
        Comparator("arm", "target", "arm", None, _series("arm", [("checksum", "y2038"), ("checksum", "y2038")])),
        Comparator("amd64", "native", "amd64", None, _series("amd64", [None, None])),
        Comparator("i386", "native", "i386", None, _series("i386", [("checksum", "y2038"), ("checksum", "y2038")])),
        Comparator("arm (cpu x)", "cpu", "arm", "x", None, error="no such CPU"),
    ]
    return r


def test_report_table_and_verdicts() -> None:
    r = _report()
    lines = r.lines()
    assert re.match(r"comparator\s+runs\s+checksum\s+y2038$", lines[0])
    assert re.match(r"arm\s+2\s+FAIL 2/2\s+FAIL 2/2$", lines[1])
    assert re.match(r"amd64\s+2\s+pass 0/2\s+pass 0/2$", lines[2])
    assert "checksum: 32-bit: fails on arm, i386; passes on amd64" in lines
    assert "y2038: 32-bit: fails on arm, i386; passes on amd64" in lines


def _schema() -> dict[str, Any]:
    m = re.search(r"<!-- triage-schema -->\s*```json\n(.*?)```", README, re.S)
    assert m, "the README's triage JSON schema"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


PY_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
                            "boolean": bool, "null": type(None)}


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """The subset of JSON Schema the README's schema uses: type, enum, required, properties,
    additionalProperties, items."""
    errs: list[str] = []
    types = schema.get("type")
    if types is not None:
        tl = types if isinstance(types, list) else [types]
        if not any(isinstance(value, PY_TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                   for t in tl):
            return [f"{where}: {value!r} is not {tl}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} not in enum")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errs += [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                errs += validate(v, props[k], f"{where}.{k}")
            elif extra is False:
                errs.append(f"{where}: unexpected {k}")
            elif isinstance(extra, dict):
                errs += validate(v, extra, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += validate(v, schema["items"], f"{where}[{i}]")
    return errs


def test_report_json_validates_against_the_readmes_schema() -> None:
    doc = _report().to_json()
    assert validate(doc, _schema()) == []
    doc["verdicts"][0]["verdict"] = "cosmic rays"
    assert validate(doc, _schema()) != []  # the schema can fail


def test_missing_syscalls_take_out_the_start_up_baseline() -> None:
    failing, base = Series("t"), Series("b")
    failing.missing = Counter({"set_robust_list": 2, "syscall 398": 2, "syscall 437": 1})
    base.missing = Counter({"set_robust_list": 1, "syscall 398": 1})
    assert missing_syscalls(failing, base, "arm") == ["syscall 437 (openat2)"]
    assert missing_syscalls(None, base, "arm") == []


@pytest.mark.parametrize("alias", sorted(comparators.DEFAULT_CPU_MODELS))
def test_default_cpu_models_are_models_this_qemu_knows(alias: str) -> None:
    import shutil
    import subprocess

    a = lookup(alias)
    qemu = shutil.which(f"qemu-{a.qemu}-static")
    if qemu is None:
        pytest.skip(f"qemu-{a.qemu}-static is not installed")
    # qemu-user exits 1 after printing the list (it ran no program)
    listing = subprocess.run([qemu, "-cpu", "help"], capture_output=True, text=True, check=False).stdout
    assert listing.strip(), qemu
    known = set(comparators.parse_cpu_help(listing, aliases=True))
    assert set(comparators.DEFAULT_CPU_MODELS[alias]) <= known, (alias, sorted(known)[:40])
