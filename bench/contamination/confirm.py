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
  nearly binary (64 pixels or two grey levels leave too little to weigh); or
- otherwise (a look-alike-prone pair), when registration says so (:func:`registered_correlation`):
  after the best of :data:`SCALES` x :data:`SHIFTS` warps of the query thumbnail, the match
  correlates at :data:`REGISTERED_MIN` or more *and* leaves at most :data:`RESIDUAL_RATIO` of the
  residual (1 - correlation) that the query's closest other look-alike in the reference leaves
  (among its :data:`RIVALS` best-correlated neighbours within :data:`DENSITY_RADIUS` bits). An
  edited copy is far closer to its source than to any other image; a distinct digit is about as
  close to its second look-alike as to its first.

Everything else within the radius that correlates at 0.95 or more is a ``lookalike``.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from bench.contamination.calibration import chance_rate
from bench.contamination.hashing import THUMB

#: Thumbnail correlation from which an uncrowded pHash match is a copy. Natural-statistics edits
#: (JPEG q50, 3-5% crops, brightness x0.8-1.2) reach it in 93-100% of cases; distinct natural images
#: are kept out by the radius, and distinct digits (up to 0.996) by the crowding test.
NEAR_CORRELATION = 0.85
#: The radius at which the neighbourhood of a pair's images is counted.
DENSITY_RADIUS = 16
#: A side is crowded when natural statistics give its neighbour count a probability below this.
CROWDED_P = 1e-3
#: Registration: scales (about the centre) and shifts (thumbnail pixels) of the query thumbnail.
SCALES = (0.95, 1.0, 1.05)
SHIFTS = (-1.0, -0.5, 0.0, 0.5, 1.0)
#: A look-alike-prone pair is a copy only at this registered correlation or more ...
REGISTERED_MIN = 0.97
#: ... and when its residual is at most this fraction of the query's closest rival's.
RESIDUAL_RATIO = 0.25
#: How many best-correlated neighbours of the query are registered as rivals.
RIVALS = 8
#: Pairs below this plain thumbnail correlation are not registered (no mild edit goes lower).
REGISTER_FLOOR = 0.6


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


@cache
def _warp_operator() -> object:
    """The bilinear warps of a flattened thumbnail, stacked: a sparse ``[W * THUMB^2, THUMB^2]`` matrix."""
    from scipy import sparse

    n, c = THUMB, (THUMB - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    rows, cols, vals = [], [], []
    k = 0
    for s in SCALES:
        for dy in SHIFTS:
            for dx in SHIFTS:
                y = np.clip((yy - c) / s + c + dy, 0, n - 1).ravel()
                x = np.clip((xx - c) / s + c + dx, 0, n - 1).ravel()
                y0, x0 = np.minimum(np.floor(y), n - 2), np.minimum(np.floor(x), n - 2)
                fy, fx = y - y0, x - x0
                for oy, ox, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)),
                                  (1, 1, fy * fx)):
                    rows.append(k * n * n + np.arange(n * n))
                    cols.append(((y0 + oy) * n + x0 + ox).astype(np.int64))
                    vals.append(w)
                k += 1
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(k * n * n, n * n))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1).astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def registered_correlation(query: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """The best correlation of any warp of the ``query`` thumbnail with each of ``refs`` ``[M, T, T]``."""
    if not len(refs):
        return np.zeros(0)
    op = _warp_operator()
    warps = _unit_rows((op @ query.reshape(-1).astype(np.float64)).reshape(-1, THUMB * THUMB))  # type: ignore[operator]
    return np.asarray((warps @ _unit_rows(refs).T).max(axis=0))


def _registered_confirm(qn: np.ndarray, en: np.ndarray, q_thumbs: np.ndarray, ref_thumbs: np.ndarray,
                        q_phash: np.ndarray, ref_phash: np.ndarray, ref_exact: np.ndarray, within: bool) -> np.ndarray:
    """Registration verdicts on look-alike-prone pairs, grouped by query (see the module docstring)."""
    out = np.zeros(len(qn), bool)
    for q in np.unique(qn):
        rows = np.flatnonzero(qn == q)
        near = np.flatnonzero(np.bitwise_count(ref_phash ^ q_phash[q]) <= DENSITY_RADIUS)
        if within:
            near = near[near != q]
        plain = _unit_rows(ref_thumbs[near]) @ _unit_rows(q_thumbs[q:q + 1])[0]
        rivals = near[np.argsort(-plain, kind="stable")[:RIVALS + len(rows)]]
        r_match = registered_correlation(q_thumbs[q], ref_thumbs[en[rows]])
        r_rival = registered_correlation(q_thumbs[q], ref_thumbs[rivals])
        for j, row in enumerate(rows):
            other = ~(ref_exact[rivals] == ref_exact[en[row]]).all(axis=1)
            best_other = r_rival[other].max() if other.any() else 0.0
            out[row] = r_match[j] >= REGISTERED_MIN and 1 - r_match[j] <= RESIDUAL_RATIO * (1 - best_other)
    return out


def far_candidates(q_phash: np.ndarray, ref_phash: np.ndarray, radius: int,
                   reach: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ``(query, entry, distance)`` with ``radius < distance <= reach`` (chunked popcounts)."""
    ref = np.ascontiguousarray(ref_phash, dtype=np.uint64)
    qs, es, ds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    step = max(1, (1 << 22) // max(len(ref), 1))
    for s in range(0, len(q_phash) if reach > radius else 0, step):
        d = np.bitwise_count(np.asarray(q_phash[s:s + step], np.uint64)[:, None] ^ ref[None, :])
        a, b = np.nonzero((d > radius) & (d <= reach))
        qs.append(a + s)
        es.append(b)
        ds.append(d[a, b].astype(np.int64))
    return np.concatenate(qs), np.concatenate(es), np.concatenate(ds)


def confirm_pairs(qn: np.ndarray, en: np.ndarray, corr: np.ndarray, qh, rh, density: np.ndarray, confirm: float,
                  near_correlation: float, within: bool = False, registered_only: bool = False) -> np.ndarray:
    """Which candidate pairs ``(qn[i], en[i])`` with thumbnail correlation ``corr[i]`` are copies.

    ``qh`` / ``rh``: the query's and the reference's :class:`~bench.contamination.hashing.Hashes`;
    ``density``: the pHashes among which neighbours are counted, holding both the query and the
    reference images (all of a task's images: the more, the better the evidence; no labels).
    Pairs with a tiny or nearly binary image, or a crowded side, are confirmed by registration;
    ``registered_only`` (pairs beyond the radius): no other pair is confirmed below ``confirm``."""
    confirmed = corr >= confirm
    low_info = qh.low_info[qn] | rh.low_info[en]
    ambiguous = ~confirmed & (corr >= near_correlation) & ~low_info
    prone = low_info.copy()
    if ambiguous.any():
        n = len(density)
        q_side = neighbour_counts(qh.phash[qn[ambiguous]], density) - 2  # not itself, not the match
        e_side = neighbour_counts(rh.phash[en[ambiguous]], density) - 2  # not itself, not the query
        crowd = crowded(q_side, n) | crowded(e_side, n)
        confirmed[ambiguous] = ~crowd & (not registered_only)
        prone[np.flatnonzero(ambiguous)[crowd]] = True
    prone &= ~confirmed & (corr >= REGISTER_FLOOR)
    if prone.any():
        confirmed[prone] = _registered_confirm(qn[prone], en[prone], qh.thumbs, rh.thumbs, qh.phash, rh.phash,
                                               rh.exact, within)
    return confirmed
