"""Image hashes: canonical pixels, the exact digest, the 64-bit DCT pHash and information content.

An image is canonicalised to a ``uint8`` ``(H, W, C)`` array with ``C`` 1 or 3 (an RGB image whose
three channels are equal becomes grey, so a grey PNG and the same picture saved as RGB hash alike).
The *exact* hash is the sha256 of the shape and the canonical bytes. The *perceptual* hash is a
64-bit DCT pHash: grey, resized to 32x32, the 8x8 lowest 2-D DCT frequencies, each bit =
coefficient above the block's median.

Tiny or low-entropy images (8x8 digits, MNIST strokes on black) are pixel look-alikes of each
other: their pHashes collide for distinct images. ``low_information`` marks them so the
contamination check can treat their near matches as look-alikes unless a second criterion
confirms a copy. The 32x32 grey thumbnail used for the pHash is kept for that.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Side of the grey thumbnail the pHash is computed from.
THUMB = 32
#: Images whose smaller side is below this are "low information" whatever their content.
LOW_INFO_MIN_SIDE = 24
#: Images whose grey-level histogram entropy (bits) is below this are "low information".
LOW_INFO_MAX_ENTROPY = 3.0


# -- canonical pixels --------------------------------------------------------------------------


def canonical(img: np.ndarray) -> np.ndarray:
    """``uint8`` ``(H, W, C)`` with ``C`` 1 or 3; RGB with equal channels becomes grey."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"images must be (H, W, C) with C in 1, 3, 4; got shape {a.shape}")
    if a.shape[2] == 4:  # alpha carries no picture content for our purposes
        a = a[..., :3]
    if a.shape[2] == 3 and np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]):
        a = a[..., :1]
    return np.ascontiguousarray(a)


def exact_digest(img: np.ndarray) -> bytes:
    """sha256 (32 bytes) of the canonical image: shape and pixels."""
    a = canonical(img)
    h = hashlib.sha256()
    h.update(f"{a.shape[0]}x{a.shape[1]}x{a.shape[2]}".encode())
    h.update(a.tobytes())
    return h.digest()


def _grey(a: np.ndarray) -> np.ndarray:
    if a.shape[2] == 1:
        return a[..., 0].astype(np.float32)
    return a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def thumbnail(img: np.ndarray) -> np.ndarray:
    """The grey ``THUMB x THUMB`` float32 thumbnail (area-averaged down, bilinear up)."""
    from PIL import Image

    g = _grey(canonical(img))
    if g.shape == (THUMB, THUMB):
        return g
    return np.asarray(Image.fromarray(g, mode="F").resize((THUMB, THUMB), Image.Resampling.BILINEAR))


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m.astype(np.float64)


_DCT8 = _dct_matrix(THUMB)[:8]  # the 8 lowest frequencies of a 32-point DCT-II
_BIT_WEIGHTS = (np.uint64(1) << np.arange(64, dtype=np.uint64))[::-1]


def phash_thumbs(thumbs: np.ndarray) -> np.ndarray:
    """64-bit pHashes (``uint64``) of a ``[N, 32, 32]`` stack of grey thumbnails."""
    t = np.asarray(thumbs, dtype=np.float64).reshape(-1, THUMB, THUMB)
    coeffs = np.einsum("ui,nij,vj->nuv", _DCT8, t, _DCT8, optimize=True).reshape(len(t), 64)
    bits = coeffs > np.median(coeffs, axis=1, keepdims=True)
    return (bits.astype(np.uint64) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)


def grey_entropy(img: np.ndarray) -> float:
    """Shannon entropy (bits) of the grey-level histogram."""
    g = np.clip(np.round(_grey(canonical(img))), 0, 255).astype(np.uint8)
    p = np.bincount(g.ravel(), minlength=256).astype(np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum())


def low_information(shape: Sequence[int], entropy: float) -> bool:
    """Whether a pHash match on this image says little (tiny, or few distinct grey levels)."""
    return min(shape[0], shape[1]) < LOW_INFO_MIN_SIDE or entropy < LOW_INFO_MAX_ENTROPY


@dataclass
class Hashes:
    """Hashes of a list of images, aligned with it."""

    exact: np.ndarray  # [N, 32] uint8 (sha256 digests)
    phash: np.ndarray  # [N] uint64
    entropy: np.ndarray  # [N] float32
    low_info: np.ndarray  # [N] bool
    thumbs: np.ndarray  # [N, 32, 32] uint8 grey thumbnails (for the look-alike confirmation)

    def __len__(self) -> int:
        return len(self.phash)

    def save(self, path: Path) -> None:
        # a name of its own per writer: two groups hashing the same task at once never share a temp file
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp.npz")
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, exact=self.exact, phash=self.phash, entropy=self.entropy,
                                low_info=self.low_info, thumbs=self.thumbs)
        os.replace(name, path)

    @classmethod
    def load(cls, path: Path) -> Hashes:
        with np.load(path) as z:
            return cls(**{k: z[k] for k in ("exact", "phash", "entropy", "low_info", "thumbs")})

    @classmethod
    def concat(cls, parts: list[Hashes]) -> Hashes:
        if not parts:
            return cls(np.zeros((0, 32), np.uint8), np.zeros(0, np.uint64), np.zeros(0, np.float32),
                       np.zeros(0, bool), np.zeros((0, THUMB, THUMB), np.uint8))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("exact", "phash", "entropy", "low_info", "thumbs")))


def hash_images(images: Iterable[np.ndarray]) -> Hashes:
    """Exact digest, pHash, entropy, low-information flag and thumbnail of each image."""
    exact, thumbs, ent, low = [], [], [], []
    for img in images:
        a = canonical(img)
        exact.append(np.frombuffer(exact_digest(a), dtype=np.uint8))
        thumbs.append(thumbnail(a))
        e = grey_entropy(a)
        ent.append(e)
        low.append(low_information(a.shape, e))
    if not exact:
        return Hashes.concat([])
    t = np.stack(thumbs)
    return Hashes(np.stack(exact), phash_thumbs(t), np.asarray(ent, np.float32), np.asarray(low, bool),
                  np.clip(np.round(t), 0, 255).astype(np.uint8))


def thumb_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of paired thumbnails ``a[i]`` and ``b[i]`` (flat images give 1 if equal)."""
    x = a.reshape(len(a), -1).astype(np.float32)
    y = b.reshape(len(b), -1).astype(np.float32)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    nx = np.linalg.norm(x, axis=1)
    ny = np.linalg.norm(y, axis=1)
    num = (x * y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / (nx * ny)
    flat = (nx == 0) | (ny == 0)
    r[flat] = np.where((nx[flat] == 0) & (ny[flat] == 0), 1.0, 0.0)
    return r


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))).astype(np.int64)

