"""The hash index: exact lookup of sha256 digests and Hamming-radius lookup of 64-bit pHashes.

Exact lookup sorts 64-bit digest prefixes (confirmed on the full digest). Near lookup is
multi-index hashing: the 64 bits are split into ``m`` bands; two hashes within distance ``r``
agree within ``r // m`` bits on at least one band (pigeonhole), so each band is a direct-address
table probed with every band value within that radius, and the candidates are verified with a
popcount. ``m`` is chosen per index by a cost model.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from bench.contamination.hashing import hamming


def _band_layout(m: int) -> list[tuple[int, int]]:
    """(shift, bits) of ``m`` bands covering 64 bits, as even as possible."""
    sizes = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
    out, shift = [], 64
    for s in sizes:
        shift -= s
        out.append((shift, s))
    return out


def _masks(bits: int, radius: int) -> np.ndarray:
    masks = [0]
    for k in range(1, radius + 1):
        for combo in itertools.combinations(range(bits), k):
            masks.append(sum(1 << c for c in combo))
    return np.asarray(masks, dtype=np.int64)


def _choose_bands(n: int, radius: int) -> int:
    """The band count that minimises probes + expected candidates (uniform hashes) per query."""
    best, best_cost = 3, float("inf")
    for m in (3, 4, 5, 6, 8, 10, 12, 16):
        layout = _band_layout(m)
        if max(b for _, b in layout) > 24:
            continue
        rho = radius // m
        cost = 0.0
        for _, b in layout:
            probes = sum(math.comb(b, k) for k in range(rho + 1))
            cost += probes * (1.0 + n / 2.0**b)
        if cost < best_cost:
            best, best_cost = m, cost
    return best


class HashIndex:
    """Exact and Hamming-radius lookup of many query hashes against a fixed set of hashes."""

    def __init__(self, exact: np.ndarray, phash: np.ndarray, radius: int) -> None:
        self.exact = np.ascontiguousarray(exact, dtype=np.uint8).reshape(-1, 32)
        self.phash = np.ascontiguousarray(phash, dtype=np.uint64)
        self.radius = int(radius)
        n = len(self.phash)
        # exact: sort by the first 8 digest bytes; confirm on all 32
        self._words = self.exact.view(">u8").reshape(n, 4).astype(np.uint64) if n else np.zeros((0, 4), np.uint64)
        self._exact_order = np.argsort(self._words[:, 0], kind="stable")
        self._exact_keys = self._words[self._exact_order, 0]
        # near: one direct-address table per band
        self.m = _choose_bands(n, self.radius)
        self._bands = []
        for shift, bits in _band_layout(self.m):
            keys = ((self.phash >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
            order = np.argsort(keys, kind="stable").astype(np.int64)
            offsets = np.zeros((1 << bits) + 1, dtype=np.int64)
            np.cumsum(np.bincount(keys, minlength=1 << bits), out=offsets[1:])
            self._bands.append((shift, bits, order, offsets, _masks(bits, self.radius // self.m)))

    def __len__(self) -> int:
        return len(self.phash)

    def lookup_exact(self, exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All ``(query, entry)`` position pairs with identical digests."""
        q = np.ascontiguousarray(exact, dtype=np.uint8).reshape(-1, 32)
        if not len(q) or not len(self):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        qw = q.view(">u8").reshape(len(q), 4).astype(np.uint64)
        lo = np.searchsorted(self._exact_keys, qw[:, 0], side="left")
        hi = np.searchsorted(self._exact_keys, qw[:, 0], side="right")
        qi, ei = _expand(lo, hi, self._exact_order)
        same = (self._words[ei] == qw[qi]).all(axis=1)
        return qi[same], ei[same]

    def lookup_near(self, phash: np.ndarray, radius: int | None = None,
                    chunk_probes: int = 1 << 21) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All ``(query, entry, distance)`` with pHash Hamming distance <= ``radius``
        (at most the index's own radius), each pair once."""
        r = self.radius if radius is None else int(radius)
        if r > self.radius:
            raise ValueError(f"radius {r} exceeds the index radius {self.radius}")
        q = np.ascontiguousarray(phash, dtype=np.uint64)
        out_q, out_e, out_d = [], [], []
        if not len(q) or not len(self):
            z = np.zeros(0, np.int64)
            return z, z, z
        for b, (shift, bits, order, offsets, masks) in enumerate(self._bands):
            step = max(1, chunk_probes // len(masks))
            bandmask = np.uint64((1 << bits) - 1)
            for start in range(0, len(q), step):
                qs = q[start:start + step]
                qkeys = ((qs >> np.uint64(shift)) & bandmask).astype(np.int64)
                probe = (qkeys[:, None] ^ masks[None, :]).ravel()
                qpos = np.repeat(np.arange(start, start + len(qs), dtype=np.int64), len(masks))
                qi, ei = _expand(offsets[probe], offsets[probe + 1], order, qpos)
                if not len(qi):
                    continue
                d = hamming(q[qi], self.phash[ei])
                keep = d <= r
                qi, ei, d = qi[keep], ei[keep], d[keep]
                if b:  # a pair found on an earlier band is dropped here, so each pair is reported once
                    earlier = np.zeros(len(qi), dtype=bool)
                    for shift2, bits2, *_ in self._bands[:b]:
                        m2 = np.uint64((1 << bits2) - 1)
                        bd = np.bitwise_count(((q[qi] ^ self.phash[ei]) >> np.uint64(shift2)) & m2)
                        earlier |= bd <= r // self.m
                    qi, ei, d = qi[~earlier], ei[~earlier], d[~earlier]
                out_q.append(qi)
                out_e.append(ei)
                out_d.append(d)
        if not out_q:
            z = np.zeros(0, np.int64)
            return z, z, z
        return np.concatenate(out_q), np.concatenate(out_e), np.concatenate(out_d)


def _expand(lo: np.ndarray, hi: np.ndarray, order: np.ndarray,
            owner: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flatten ranges ``[lo[i], hi[i])`` of ``order`` into (owner, entry) pairs."""
    counts = (hi - lo).astype(np.int64)
    total = int(counts.sum())
    owners = np.arange(len(lo), dtype=np.int64) if owner is None else owner
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    nz = counts > 0
    counts, lo, owners = counts[nz], lo[nz], owners[nz]
    starts = np.cumsum(counts) - counts
    pos = np.arange(total, dtype=np.int64) - np.repeat(starts - lo, counts)
    return np.repeat(owners, counts), order[pos]

