"""The second check of in-task pHash matches: is this pair a copy, or two images of a look-alike kind?

A pHash match is strong evidence on natural images (distinct ones match within 12 bits about
once in 80,000 pairs) and weak on simple ones: distinct digits, at any size, match within 12 bits
once in 200 pairs (UCI) or 30 (MNIST) and their 32x32 thumbnails correlate up to 0.996, as
closely as a cropped copy. Whether a pair is of the look-alike kind is read from evidence about
the pair, not from the image's size: how crowded the reference is around its two images. Within
:data:`DENSITY_RADIUS` bits, natural statistics predict ``(N - 1) x P(d <= 16)`` neighbours
(:data:`~bench.contamination.calibration.NATURAL_CHANCE`); a side with more than a Poisson count
reaches at probability :data:`CROWDED_P` sits among look-alikes. A pair is confirmed as ``near``
when its thumbnails correlate

- at ``confirm`` (0.998) or more: a near-lossless copy, whatever the images; or
- at ``near_correlation`` (0.85) or more when neither side is crowded and neither image is tiny or
  nearly binary (64 pixels or two grey levels leave too little to weigh).

Everything else within the radius that correlates at 0.95 or more is a ``lookalike``.
"""

from __future__ import annotations

import numpy as np

from bench.contamination.calibration import chance_rate

#: Thumbnail correlation from which an uncrowded pHash match is a copy. Natural-statistics edits
#: (JPEG q50, 3-5% crops, brightness x0.8-1.2) reach it in 93-100% of cases; distinct natural images
#: are kept out by the radius, and distinct digits (up to 0.996) by the crowding test.
NEAR_CORRELATION = 0.85
#: The radius at which the neighbourhood of a pair's images is counted.
DENSITY_RADIUS = 16
#: A side is crowded when natural statistics give its neighbour count a probability below this.
CROWDED_P = 1e-3


def neighbour_counts(phash: np.ndarray, ref_phash: np.ndarray, radius: int = DENSITY_RADIUS) -> np.ndarray:
    """How many of ``ref_phash`` lie within ``radius`` bits of each of ``phash`` (chunked popcounts)."""
    ref = np.ascontiguousarray(ref_phash, dtype=np.uint64)
    out = np.zeros(len(phash), np.int64)
    step = max(1, (1 << 22) // max(len(ref), 1))
    for s in range(0, len(phash), step):
        block = np.bitwise_count(np.asarray(phash[s:s + step], np.uint64)[:, None] ^ ref[None, :])
        out[s:s + step] = (block <= radius).sum(axis=1)
    return out


def crowded(counts: np.ndarray, pool_size: int) -> np.ndarray:
    """Whether each neighbour count is more than natural statistics allow in a pool of this size."""
    from scipy.stats import poisson

    lam = max(pool_size - 1, 0) * chance_rate(DENSITY_RADIUS)
    return np.asarray(poisson.sf(counts - 1, lam) < CROWDED_P, dtype=bool)


def confirm_pairs(qn: np.ndarray, en: np.ndarray, corr: np.ndarray, q_phash: np.ndarray, ref_phash: np.ndarray,
                  density: np.ndarray, confirm: float, near_correlation: float,
                  low_info: np.ndarray | None = None) -> np.ndarray:
    """Which candidate pairs ``(qn[i], en[i])`` with thumbnail correlation ``corr[i]`` are copies.

    ``density``: the pHashes among which neighbours are counted, holding both the query and the
    reference images (all of a task's images: the more, the better the evidence; no labels).
    ``low_info`` marks pairs with a tiny or nearly binary image: there only near-lossless copies
    are confirmed."""
    confirmed = corr >= confirm
    ambiguous = ~confirmed & (corr >= near_correlation)
    if low_info is not None:
        ambiguous &= ~low_info
    if not ambiguous.any():
        return confirmed
    n = len(density)
    q_side = neighbour_counts(q_phash[qn[ambiguous]], density) - 2  # not itself, not the match
    e_side = neighbour_counts(ref_phash[en[ambiguous]], density) - 2  # not itself, not the query
    confirmed[ambiguous] = ~(crowded(q_side, n) | crowded(e_side, n))
    return confirmed
