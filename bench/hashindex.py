"""Deprecated alias of the image hashing and hash index code, now in :mod:`bench.contamination`."""

from __future__ import annotations

import warnings
from typing import Any

from bench.contamination import corpus, hashing, index

warnings.warn("bench.hashindex is deprecated; import from bench.contamination instead",
              DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> Any:
    # the old module held what now lives in these three
    for module in (hashing, index, corpus):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'bench.hashindex' has no attribute {name!r}")
