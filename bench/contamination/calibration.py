"""Measured chance rates of pHash matches, and the near radius chosen from the size of what is searched.

A pHash radius that is safe for a pool of hundreds of images is not safe for a pool of 50,000:
the expected number of chance matches of one test image is ``pool size x P(d <= r | distinct)``.
:func:`near_radius` picks the largest radius (up to a cap) that keeps that expectation under
:data:`CHANCE_BUDGET`, from :data:`NATURAL_CHANCE`, measured by

    python benchmarks/bench_contamination.py --part chance

on 12,168 distinct 64x64 images with natural statistics (168 non-overlapping crops of
scikit-learn's two sample photos and 12,000 procedural 1/f colour textures; 74,024,028 pairs).
Simple images (digits) collide far more often (UCI digits at 8, 28 or 64 px: 4.8e-3 per pair
within 12 bits; MNIST: 3.1e-2), so no radius makes pHash alone safe on them: every in-task
pHash match is also confirmed by a second check (see :mod:`bench.contamination.detectors`).
"""

from __future__ import annotations

#: Expected chance matches per test image that the near radius may allow.
CHANCE_BUDGET = 0.01

#: P(pHash distance <= r) between distinct natural-statistics images, by even r (pHashes are
#: balanced, so distances are even). Measured: r = 8 (5 pairs), 10, 12, 14, 16. Below 8 no pair
#: was seen (rule of three: < 4e-8); the entries are extrapolated with the smallest measured
#: ratio between neighbouring radii (x19, from 10 to 8), so they are estimates, not measurements.
NATURAL_CHANCE: dict[int, float] = {
    0: 5.0e-13,
    2: 9.9e-12,
    4: 1.9e-10,
    6: 3.6e-9,
    8: 6.8e-8,
    10: 1.3e-6,
    12: 1.2e-5,
    14: 9.6e-5,
    16: 5.8e-4,
}

#: The radii of NATURAL_CHANCE that were measured (the others are extrapolated).
MEASURED_RADII = frozenset({8, 10, 12, 14, 16})


def chance_rate(radius: int) -> float:
    """P(d <= radius) for distinct natural-statistics images (odd radii count as the even one below)."""
    r = max(0, min(int(radius), 16))
    return NATURAL_CHANCE[r - r % 2]


def near_radius(pool_size: int, cap: int, budget: float = CHANCE_BUDGET) -> int:
    """The largest even radius ``<= cap`` with ``pool_size x P(d <= r) < budget``; -1 when even
    radius 0 is too loose (then only exact copies are matched)."""
    ok = [r for r in range(0, int(cap) + 1, 2) if pool_size * chance_rate(r) < budget]
    return ok[-1] if ok else -1


def expected_chance_matches(pool_size: int, radius: int) -> float:
    """Expected chance pHash matches of one test image against ``pool_size`` distinct images."""
    return 0.0 if radius < 0 else pool_size * chance_rate(radius)
