"""Contamination checks: is a test image also in the train pool, twice in test, or in pretraining data?

The package, by job (see ``docs/contamination.md`` for the detectors and their calibration):

- :mod:`~bench.contamination.report`: the report types and the calibrated thresholds;
- :mod:`~bench.contamination.calibration`: measured pHash chance rates and the near radius by pool size;
- :mod:`~bench.contamination.confirm`: the second check of every in-task pHash match;
- :mod:`~bench.contamination.detectors`: the hash and embedding detectors, :func:`task_report`
  and :func:`check_budget_disjoint`;
- :mod:`~bench.contamination.hashing`: canonical pixels, exact digests, pHashes, information content;
- :mod:`~bench.contamination.index`: the in-memory exact/Hamming-radius :class:`HashIndex`;
- :mod:`~bench.contamination.corpus`: pretraining-corpus index files (:func:`build_index`, :func:`load_index`);
- :mod:`~bench.contamination.declared`: declared overlap from dataset names.

Printing, argument parsing and the contact sheet live in the CLI (:mod:`bench.cli.check`).
"""

from __future__ import annotations

from bench.contamination import calibration, confirm
from bench.contamination.calibration import CHANCE_BUDGET, NATURAL_CHANCE, expected_chance_matches, near_radius
from bench.contamination.confirm import NEAR_CORRELATION
from bench.contamination.corpus import (
    IMAGE_SUFFIXES,
    CorpusIndex,
    build_index,
    iter_image_files,
    load_image_file,
    load_index,
)
from bench.contamination.declared import declared_overlap
from bench.contamination.detectors import HASH_VERSION, check_budget_disjoint, split_hashes, task_report
from bench.contamination.hashing import (
    Hashes,
    canonical,
    exact_digest,
    grey_entropy,
    hamming,
    hash_images,
    low_information,
    phash_thumbs,
    thumb_correlation,
    thumbnail,
)
from bench.contamination.index import HashIndex
from bench.contamination.report import (
    CLEAN_EXCLUDES,
    CONFIRM_CORRELATION,
    DETECTORS,
    EMBEDDING_THRESHOLD,
    INDEX_NEAR_THRESHOLD,
    LOOKALIKE_CORRELATION,
    NEAR_THRESHOLD,
    OVERLAP_FLAG_RATE,
    BudgetCheck,
    ContaminationReport,
    Pair,
    describe_pair,
)
from bench.loading import cache_root

#: The old name of :func:`bench.loading.cache_root` (one cache root for features and hashes).
default_cache_dir = cache_root

__all__ = [
    "CHANCE_BUDGET", "NATURAL_CHANCE", "NEAR_CORRELATION", "calibration", "confirm", "expected_chance_matches",
    "near_radius",
    "CLEAN_EXCLUDES", "CONFIRM_CORRELATION", "DETECTORS", "EMBEDDING_THRESHOLD", "HASH_VERSION",
    "IMAGE_SUFFIXES", "INDEX_NEAR_THRESHOLD", "LOOKALIKE_CORRELATION", "NEAR_THRESHOLD", "OVERLAP_FLAG_RATE",
    "BudgetCheck", "ContaminationReport", "CorpusIndex", "HashIndex", "Hashes", "Pair",
    "build_index", "canonical", "check_budget_disjoint", "declared_overlap", "default_cache_dir", "describe_pair",
    "exact_digest", "grey_entropy", "hamming", "hash_images", "iter_image_files", "load_image_file",
    "load_index", "low_information", "phash_thumbs", "split_hashes", "task_report", "thumb_correlation",
    "thumbnail",
]
