"""Content-addressed feature cache.

Frozen features of a split are computed in one encoder pass and stored as ``.npy`` under a key
that hashes the encoder's weights and preprocessing (:meth:`Encoder.fingerprint`) and the split's
content (:meth:`Split.fingerprint`). New weights, other preprocessing or changed data miss the
cache; the same encoder on the same data hits it across runs, strategies and budgets.

The cache lives in ``$BENCH_CACHE_DIR`` (default ``~/.cache/transfer-bench``), ``features/``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.encoders import Encoder, encode
from bench.loading import cache_root
from bench.tasks import Split

CACHE_FORMAT = "features-v1"


class FeatureCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root() / "features"
        self.hits = 0
        self.misses = 0
        self.images_encoded = 0

    def key(self, encoder: Encoder, split: Split) -> str:
        h = hashlib.sha256(CACHE_FORMAT.encode())
        h.update(encoder.fingerprint().encode())
        h.update(split.fingerprint().encode())
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(
        self,
        encoder: Encoder,
        split: Split,
        device: str = "cpu",
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Features ``[len(split), D]`` of ``split``, from the cache or computed and stored."""
        path = self.path(self.key(encoder, split))
        if path.exists():
            try:
                feats = np.load(path)
                if feats.shape[0] == len(split):
                    self.hits += 1
                    return feats
            except (OSError, ValueError):
                pass  # a damaged entry is recomputed
        feats = encode(encoder, split.images, len(split), device=device, batch_size=batch_size, progress=progress)
        self.misses += 1
        self.images_encoded += len(split)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, feats)
        os.replace(tmp, path)  # atomic: an interrupted write never leaves a half file under the key
        return feats

    def stats(self) -> dict[str, int]:
        entries = list(self.root.glob("*/*.npy")) if self.root.exists() else []
        return {"entries": len(entries), "bytes": sum(p.stat().st_size for p in entries)}

    def clear(self) -> int:
        n = 0
        if self.root.exists():
            for p in self.root.glob("*/*.npy"):
                p.unlink()
                n += 1
        return n
