"""Every measured figure the README quotes (seconds, ratios "N×") is one bench/README.md records:
the README is a promise, and its numbers come from the benchmarks, not from memory."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))? ?(s|×)(?!\w)")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


def figures(text: str) -> list[str]:
    out = []
    for m in FIGURE.finditer(text):
        out += [g for g in m.groups()[:2] if g]
    return out


def recorded(value: str, bench: list[float]) -> bool:
    """``value`` as the README writes it is a bench figure rounded to as many decimals."""
    decimals = len(value.partition(".")[2])
    return any(round(b, decimals) == float(value) for b in bench)


def test_every_readme_figure_is_in_the_bench_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    bench = [float(x) for x in NUMBER.findall((ROOT / "bench" / "README.md").read_text())]
    found = figures(readme)
    assert len(found) >= 8, found  # the README does quote figures; a broken pattern would pass vacuously
    missing = [v for v in found if not recorded(v, bench)]
    assert missing == [], f"README figures not in bench/README.md: {missing}"


def test_the_check_catches_a_figure_from_memory() -> None:
    bench = [float(x) for x in NUMBER.findall("| (b) ... | 119.4 s | b/a = 0.72 |")]
    assert recorded("119", bench) and recorded("0.72", bench)
    assert not recorded("148", bench) and recorded("0.7", [0.72])  # rounding is fine, a new number is not
    assert figures("in 148 s, 1.09-1.12× a bare run, 3 tests") == ["148", "1.09", "1.12"]
