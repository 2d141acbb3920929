"""The failure rate of repeated runs and its 95% confidence interval."""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for ``k`` failures in ``n`` runs: unlike k/n ± z·se it stays in
    [0, 1] and is honest for small n and for k = 0 or n (Wilson 1927; Brown, Cai & DasGupta 2001)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def percent(x: float) -> str:
    return f"{100 * x:.0f}%"
