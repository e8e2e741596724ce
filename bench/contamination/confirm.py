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
  nearly binary (64 pixels or two grey levels leave too little to weigh), unless a rival (below)
  is about as close: residual over the rival's above :data:`RIVALLED_RATIO`; or
- otherwise (a look-alike-prone pair), when registration says so (:func:`registered_correlation`):
  after the best of :data:`SCALES` x :data:`SHIFTS` warps of the query thumbnail, the match
  correlates at :data:`REGISTERED_MIN` or more *and* leaves at most :data:`RESIDUAL_RATIO` of the
  residual (1 - correlation) that the closest other look-alike of either image leaves (its rivals:
  the :data:`RIVALS` best-correlated of the task's images within :data:`DENSITY_RADIUS` bits,
  copies of the pair's two images left out). An edited copy is far closer to its source than
  either is to any other image; a distinct digit is about as close to its second look-alike as
  to its first.

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
#: Gaussian smoothing (thumbnail pixels) of both thumbnails before registration.
SMOOTH = 1.0
#: A look-alike-prone pair is a copy only at this registered correlation or more ...
REGISTERED_MIN = 0.97
#: ... and when its residual is at most this fraction of the query's closest rival's.
RESIDUAL_RATIO = 0.25
#: An uncrowded pair at NEAR_CORRELATION is a copy unless its residual exceeds this fraction of a rival's.
RIVALLED_RATIO = 0.5
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
    from scipy.ndimage import gaussian_filter

    op = _warp_operator()
    q = gaussian_filter(query.astype(np.float64), SMOOTH, mode="nearest")
    r = gaussian_filter(refs.astype(np.float64), (0, SMOOTH, SMOOTH), mode="nearest")
    warps = _unit_rows((op @ q.reshape(-1).astype(np.float64)).reshape(-1, THUMB * THUMB))
    return np.asarray((warps @ _unit_rows(r).T).max(axis=0))


class _Rivals:
    """Each image's closest look-alikes in the task's pool, after registration (computed once per image)."""

    def __init__(self, pool) -> None:
        self.pool = pool
        self.units = _unit_rows(pool.thumbs).astype(np.float32)
        self.cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def of(self, thumb: np.ndarray, phash: np.uint64, exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Registered correlations (descending) of ``thumb``'s best-correlated pool neighbours within
        :data:`DENSITY_RADIUS` bits, and their exact digests (copies of the image itself left out)."""
        key = exact.tobytes()
        if key not in self.cache:
            near = np.flatnonzero(np.bitwise_count(self.pool.phash ^ phash) <= DENSITY_RADIUS)
            near = near[~(self.pool.exact[near] == exact).all(axis=1)]
            plain = self.units[near] @ _unit_rows(thumb[None])[0].astype(np.float32)
            top = near[np.argsort(-plain, kind="stable")[:RIVALS + 2]]
            r = registered_correlation(thumb, self.pool.thumbs[top])
            order = np.argsort(-r, kind="stable")
            self.cache[key] = r[order], self.pool.exact[top[order]]
        return self.cache[key]

    def closest_other(self, thumb: np.ndarray, phash: np.uint64, exact: np.ndarray, other: np.ndarray) -> float:
        """The best registered correlation of a rival that is not a copy of ``other``."""
        r, ex = self.of(thumb, phash, exact)
        keep = ~(ex == other).all(axis=1)
        return float(r[keep][0]) if keep.any() else 0.0


def _residual_ratios(qn: np.ndarray, en: np.ndarray, qh, rh, rivals: _Rivals) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's registered correlation, and its residual over that of the closer rival of either image."""
    r_match, ratio = np.zeros(len(qn)), np.zeros(len(qn))
    for q in np.unique(qn):
        rows = np.flatnonzero(qn == q)
        r_match[rows] = registered_correlation(qh.thumbs[q], rh.thumbs[en[rows]])
        for row in rows:
            e = en[row]
            best = max(rivals.closest_other(qh.thumbs[q], qh.phash[q], qh.exact[q], rh.exact[e]),
                       rivals.closest_other(rh.thumbs[e], rh.phash[e], rh.exact[e], qh.exact[q]))
            ratio[row] = (1 - r_match[row]) / max(1 - best, 1e-9)
    return r_match, ratio


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


def confirm_pairs(qn: np.ndarray, en: np.ndarray, corr: np.ndarray, qh, rh, pool, confirm: float,
                  near_correlation: float, registered_only: bool = False) -> np.ndarray:
    """Which candidate pairs ``(qn[i], en[i])`` with thumbnail correlation ``corr[i]`` are copies.

    ``qh`` / ``rh``: the query's and the reference's :class:`~bench.contamination.hashing.Hashes`;
    ``pool``: the Hashes among which neighbours and rivals are found, holding both the query and the
    reference images (all of a task's images: the more, the better the evidence; no labels).
    Pairs with a tiny or nearly binary image, or a crowded side, are confirmed by registration;
    ``registered_only`` (pairs beyond the radius): no other pair is confirmed below ``confirm``."""
    confirmed = corr >= confirm
    low_info = qh.low_info[qn] | rh.low_info[en]
    ambiguous = ~confirmed & (corr >= near_correlation) & ~low_info
    prone = low_info.copy()
    rivals = _Rivals(pool)
    if ambiguous.any():
        n = len(pool)
        q_side = neighbour_counts(qh.phash[qn[ambiguous]], pool.phash) - 2  # not itself, not the match
        e_side = neighbour_counts(rh.phash[en[ambiguous]], pool.phash) - 2  # not itself, not the query
        crowd = crowded(q_side, n) | crowded(e_side, n)
        prone[np.flatnonzero(ambiguous)[crowd]] = True
        clear = np.flatnonzero(ambiguous)[~crowd]
        if len(clear) and not registered_only:  # a copy unless a third image is about as close
            confirmed[clear] = _residual_ratios(qn[clear], en[clear], qh, rh, rivals)[1] <= RIVALLED_RATIO
    prone &= ~confirmed & (corr >= REGISTER_FLOOR)
    if prone.any():
        r_match, ratio = _residual_ratios(qn[prone], en[prone], qh, rh, rivals)
        confirmed[prone] = (r_match >= REGISTERED_MIN) & (ratio <= RESIDUAL_RATIO)
    return confirmed
