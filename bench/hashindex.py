"""Image hashes and a fast hash index (the machinery behind :mod:`bench.contamination`).

Three things live here:

- **Canonical pixels and their hashes.** An image is canonicalised to a ``uint8`` ``(H, W, C)``
  array with ``C`` 1 or 3 (an RGB image whose three channels are equal becomes grey, so a grey PNG
  and the same picture saved as RGB hash alike). The *exact* hash is the sha256 of the shape and
  the canonical bytes. The *perceptual* hash is a 64-bit DCT pHash: grey, resized to 32x32, the
  8x8 lowest 2-D DCT frequencies, each bit = coefficient above the block's median.
- **Information content.** Tiny or low-entropy images (8x8 digits, MNIST strokes on black) are
  pixel look-alikes of each other: their pHashes collide for distinct images. ``low_information``
  marks them so the contamination check can treat their near matches as look-alikes unless a
  second criterion confirms a copy. The 32x32 grey thumbnail used for the pHash is kept for that.
- **HashIndex**: exact lookup by sorted 64-bit digest prefixes (confirmed on the full digest) and
  Hamming-radius lookup of pHashes by multi-index hashing: the 64 bits are split into ``m`` bands;
  two hashes within distance ``r`` agree within ``r // m`` bits on at least one band (pigeonhole),
  so each band is a direct-address table probed with every band value within that radius, and the
  candidates are verified with a popcount. ``m`` is chosen per index by a cost model.
  ``build_index`` / ``load_index`` store a corpus's hashes in a resumable TSV file.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import UserError

#: Side of the grey thumbnail the pHash is computed from.
THUMB = 32
#: Images whose smaller side is below this are "low information" whatever their content.
LOW_INFO_MIN_SIDE = 24
#: Images whose grey-level histogram entropy (bits) is below this are "low information".
LOW_INFO_MAX_ENTROPY = 3.0

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}


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
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, exact=self.exact, phash=self.phash, entropy=self.entropy,
                            low_info=self.low_info, thumbs=self.thumbs)
        os.replace(tmp, path)

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


# -- the index ---------------------------------------------------------------------------------


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


# -- a corpus index on disk --------------------------------------------------------------------

_HEADER = "# bench-hash-index v1"


def load_image_file(path: Path) -> np.ndarray:
    """Decode an image file to canonical pixels (first frame; palette/CMYK/16-bit to RGB or grey)."""
    from PIL import Image

    with Image.open(path) as im:
        im.seek(0)
        if im.mode in ("L", "RGB"):
            arr = np.asarray(im)
        elif im.mode in ("1", "I", "I;16", "I;16B", "F", "LA"):
            arr = np.asarray(im.convert("L"))
        else:
            arr = np.asarray(im.convert("RGB"))
    return canonical(arr)


def iter_image_files(folder: Path) -> Iterator[Path]:
    """Image files under ``folder`` (recursive), in a stable order."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if Path(f).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(root) / f


def _hash_file(path: Path) -> tuple[str, str, int, int, bool] | None:
    try:
        a = load_image_file(path)
    except Exception:
        return None
    h = hash_images([a])
    return h.exact[0].tobytes().hex(), f"{int(h.phash[0]):016x}", a.shape[1], a.shape[0], bool(h.low_info[0])


def build_index(folder: str | Path, out_file: str | Path, progress: bool = True, workers: int = 1) -> dict:
    """Hash every image under ``folder`` into ``out_file`` (a TSV: sha256, pHash, width, height,
    low-information flag, path relative to the folder).

    Streams (memory does not grow with the corpus), appends as it goes and is resumable: files
    already in ``out_file`` are skipped, and a partial last line left by an interrupted run is
    dropped. Unreadable files are recorded (hash ``-``) so they are not retried. Returns counts.
    """
    folder = Path(folder)
    out_file = Path(out_file)
    if not folder.is_dir():
        raise UserError(f"index folder {str(folder)!r} is not a directory; give the folder that holds the images")
    done: set[str] = set()
    if out_file.exists():
        raw = out_file.read_bytes()
        if raw and not raw.endswith(b"\n"):  # interrupted mid-line
            raw = raw[: raw.rfind(b"\n") + 1]
            out_file.write_bytes(raw)
        for line in raw.decode("utf-8").splitlines():
            if line and not line.startswith("#"):
                done.add(line.split("\t", 5)[5])
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(f"{_HEADER}\troot={folder.resolve()}\n", encoding="utf-8")

    todo = (p for p in iter_image_files(folder) if p.relative_to(folder).as_posix() not in done)
    counts = {"skipped_existing": len(done), "hashed": 0, "unreadable": 0}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"hashing {folder}", unit="img", file=sys.stderr, initial=0)
    pool = None
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers)
    try:
        with out_file.open("a", encoding="utf-8") as f:
            batch = list(itertools.islice(todo, 256))
            while batch:
                results = pool.map(_hash_file, batch, chunksize=16) if pool else map(_hash_file, batch)
                for path, res in zip(batch, results):
                    rel = path.relative_to(folder).as_posix()
                    if "\t" in rel or "\n" in rel:
                        counts["unreadable"] += 1
                        continue
                    if res is None:
                        f.write(f"-\t-\t0\t0\t0\t{rel}\n")
                        counts["unreadable"] += 1
                    else:
                        ex, ph, w, h, low = res
                        f.write(f"{ex}\t{ph}\t{w}\t{h}\t{int(low)}\t{rel}\n")
                        counts["hashed"] += 1
                f.flush()
                if bar is not None:
                    bar.update(len(batch))
                batch = list(itertools.islice(todo, 256))
    finally:
        if pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()
    return counts


@dataclass
class CorpusIndex:
    """A loaded hash index of a pretraining corpus."""

    path: Path
    root: str
    paths: list[str]
    exact: np.ndarray  # [N, 32] uint8
    phash: np.ndarray  # [N] uint64
    low_info: np.ndarray  # [N] bool

    def __len__(self) -> int:
        return len(self.paths)

    def searcher(self, radius: int) -> HashIndex:
        return HashIndex(self.exact, self.phash, radius)


def load_index(path: str | Path) -> CorpusIndex:
    """Load an index written by :func:`build_index` (unreadable-file rows are left out)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pretraining index {str(path)!r} not found; build one with `bench index build FOLDER -o FILE`")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or not lines[0].startswith(_HEADER):
        raise UserError(f"{str(path)!r} is not a bench hash index (no '{_HEADER}' header); "
                        "build one with `bench index build FOLDER -o FILE`")
    root = ""
    for part in lines[0].split("\t")[1:]:
        if part.startswith("root="):
            root = part[5:]
    rows = [ln.split("\t", 5) for ln in lines[1:] if ln and not ln.startswith("#") and not ln.startswith("-")]
    rows = [r for r in rows if len(r) == 6]
    n = len(rows)
    exact = np.frombuffer(bytes.fromhex("".join(r[0] for r in rows)), dtype=np.uint8).reshape(n, 32)
    phash = np.array([int(r[1], 16) for r in rows], dtype=np.uint64)
    low = np.array([r[4] == "1" for r in rows], dtype=bool)
    return CorpusIndex(path, root, [r[5] for r in rows], exact.copy(), phash, low)
