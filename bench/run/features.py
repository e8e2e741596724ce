"""Content-addressed feature cache.

Frozen features of a split are computed in one encoder pass and stored under a key
that hashes the encoder's weights and preprocessing (:meth:`Encoder.fingerprint`) and the split's
content (:meth:`Split.fingerprint`). New weights, other preprocessing or changed data miss the
cache; the same encoder on the same data hits it across runs, strategies and budgets. Each entry
is an ``.npz`` holding the array and its checksum (see :class:`FeatureCache`).

The cache lives in ``$BENCH_CACHE_DIR`` (default ``~/.cache/transfer-bench``), ``features/``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.encoders import Encoder, encode
from bench.loading import cache_root
from bench.tasks import Split

#: v2: entries are ``.npz`` files holding the array and its SHA-256 (v1: bare ``.npy``, no checksum).
#: v3: the key also names how the features were computed (protocol, device kind, precision): a
#: protocol-3 CPU pass is channels_last, and its floats differ from a protocol-2 entry's.
#: v4: a CPU pass runs each batch on one torch thread (bench.encoders._cpu_batches); a v3 entry
#: made with several threads can differ from it in the last bits on some CPUs.
CACHE_FORMAT = "features-v4"


def checksum(feats: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes (stored with each entry)."""
    h = hashlib.sha256(f"{feats.dtype.str}|{feats.shape}|".encode())
    h.update(np.ascontiguousarray(feats).data)  # the buffer itself: no copy of the array
    return h.hexdigest()


class FeatureCache:
    """Entries are written to a temp file and renamed into place (a reader, in this process or
    another, sees the old entry or the new one, never half a file) and carry their checksum: a
    truncated or bit-flipped entry is detected on read, warned about and recomputed. Entries are
    plain arrays, loaded with ``allow_pickle=False``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root() / "features"
        self.hits = 0
        self.misses = 0
        self.images_encoded = 0

    def key(self, encoder: Encoder, split: Split, device: str = "cpu") -> str:
        """The entry of ``encoder``'s features of ``split`` computed the way this process computes
        them: the protocol's encode path, on ``device``'s kind, at the run's precision."""
        from bench.accel import settings
        from bench.run.records import PROTOCOL_VERSION

        h = hashlib.sha256(CACHE_FORMAT.encode())
        h.update(encoder.fingerprint().encode())
        h.update(split.fingerprint().encode())
        how = f"protocol={PROTOCOL_VERSION}|device={device.split(':')[0]}|precision={settings().precision}"
        h.update(how.encode())
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def load(self, key: str, rows: int) -> np.ndarray | None:
        """The entry under ``key`` if it is whole and has ``rows`` rows; None if there is none or it
        is damaged (then with a warning naming the file)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as entry:
                feats, stored = entry["features"], str(entry["sha256"])
            problem = ("checksum mismatch" if checksum(feats) != stored
                       else f"{feats.shape[0]} rows, expected {rows}" if feats.shape[0] != rows else "")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            problem = f"unreadable: {type(exc).__name__}: {exc}"
        if not problem:
            return feats
        warnings.warn(f"feature cache entry {path} is damaged ({problem}); recomputing it", RuntimeWarning,
                      stacklevel=2)
        return None

    def store(self, key: str, feats: np.ndarray) -> None:
        """Write an entry atomically (temp file in the same folder, fsync, rename)."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, features=feats, sha256=np.array(checksum(feats)))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(
        self,
        encoder: Encoder,
        split: Split,
        device: str = "cpu",
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Features ``[len(split), D]`` of ``split``, from the cache or computed and stored."""
        key = self.key(encoder, split, device)
        feats = self.load(key, len(split))
        if feats is not None:
            self.hits += 1
            return feats
        feats = encode(encoder, split.images, len(split), device=device, batch_size=batch_size, progress=progress)
        self.misses += 1
        self.images_encoded += len(split)
        self.store(key, feats)
        return feats

    def _entries(self) -> list[Path]:
        if not self.root.exists():
            return []
        return [p for pattern in ("*/*.npz", "*/*.npy", "*/*.tmp") for p in self.root.glob(pattern)]

    def stats(self) -> dict[str, int]:
        entries = self._entries()
        return {"entries": len(entries), "bytes": sum(p.stat().st_size for p in entries)}

    def clear(self) -> int:
        n = 0
        for p in self._entries():
            p.unlink(missing_ok=True)
            n += 1
        return n
