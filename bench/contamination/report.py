"""Contamination report types (Pair, ContaminationReport, BudgetCheck) and the calibrated thresholds.

See ``docs/contamination.md`` for how the thresholds were calibrated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: The largest pHash Hamming distance at which two images may be near duplicates within a task.
#: A cap: the radius used is the largest one at which a test image expects under 1% chance
#: matches in the reference searched (``calibration.near_radius``): 12 bits against up to 833
#: images, 10 up to 7,692, 8 up to 147,058 (pHashes are balanced so distances are even).
NEAR_THRESHOLD = 12
#: Thumbnail correlation that confirms a pHash match between low-information images as a copy.
CONFIRM_CORRELATION = 0.998
#: Below this thumbnail correlation an unconfirmed low-information match is not even a look-alike
#: (on digits nearly every image shares its pHash neighbourhood with hundreds of others).
LOOKALIKE_CORRELATION = 0.95
#: The cap of the pHash radius against a pretraining index (no second check is possible there: the
#: index keeps no pixels); the radius used also follows the index size (6 bits for a million images).
INDEX_NEAR_THRESHOLD = 8
#: Cosine similarity of encoder features at or above which the embedding detector fires.
EMBEDDING_THRESHOLD = 0.95
#: Rows with a Clean-vs-All overlap above this rate are flagged on the leaderboard.
OVERLAP_FLAG_RATE = 0.01

DETECTORS = ("exact", "near", "lookalike", "embedding")
#: The detectors whose flagged items are removed to form the Clean subset.
CLEAN_EXCLUDES = ("exact", "near")


@dataclass(frozen=True)
class Pair:
    """A flagged item and its closest match in one reference, by one detector.

    ``distance`` is the pHash Hamming distance (``exact``/``near``/``lookalike``); ``similarity``
    is the thumbnail correlation (``near``/``lookalike`` within a task) or the feature cosine
    (``embedding``). ``matches`` counts all items of the reference the detector matched.
    """

    split: str
    item_id: str
    reference: str  # "train", "test" (within-split), "target_train", "pretraining:NAME"
    match_id: str
    detector: str
    distance: int | None
    similarity: float | None
    matches: int


@dataclass
class ContaminationReport:
    """Pairs and rates for one task; one per task, shared by every cell of the task."""

    task: str
    sizes: dict[str, int]
    fingerprints: dict[str, str]
    thresholds: dict[str, Any]
    pairs: list[Pair]
    #: split -> fraction of its images that are low-information
    low_information: dict[str, float] = field(default_factory=dict)
    declared_overlap: list[str] = field(default_factory=list)
    pretraining_indexes: list[str] = field(default_factory=list)

    def flagged(self, split: str = "test", detector: str | None = None, *, within: bool = False) -> set[str]:
        """Item ids of ``split`` flagged against other data (``within=True``: against the same split)."""
        out = set()
        for p in self.pairs:
            if p.split != split or (detector is not None and p.detector != detector):
                continue
            if (p.reference == split) != within:
                continue
            out.add(p.item_id)
        return out

    def overlap_ids(self, split: str = "test") -> set[str]:
        """Items removed from Clean: ``exact`` or ``near`` against train or pretraining data."""
        return set().union(*(self.flagged(split, d) for d in CLEAN_EXCLUDES))

    def rates(self, split: str = "test") -> dict[str, Any]:
        n = max(self.sizes.get(split, 0), 1)
        out: dict[str, Any] = {"n": self.sizes.get(split, 0)}
        for d in DETECTORS:
            out[f"{d}_count"] = len(self.flagged(split, d))
            out[f"{d}_rate"] = out[f"{d}_count"] / n
            out[f"within_{d}_count"] = len(self.flagged(split, d, within=True))
            out[f"within_{d}_rate"] = out[f"within_{d}_count"] / n
        out["overlap_count"] = len(self.overlap_ids(split))
        out["overlap_rate"] = out["overlap_count"] / n
        refs = sorted({p.reference for p in self.pairs if p.split == split and p.reference != split})
        out["by_reference"] = {r: {d: len({p.item_id for p in self.pairs if p.split == split and p.reference == r
                                           and p.detector == d}) for d in DETECTORS} for r in refs}
        return out

    def cell_metrics(self, test_ids: Sequence[str], correct: np.ndarray, split: str = "test") -> dict[str, Any]:
        """Accuracy on All and on Clean, overlap counts by detector, and the binomial test.

        The p-value is the CLIP paper's: the probability, with Clean's accuracy as the null
        hypothesis, of at least as many correct answers on the overlapping items (one-sided,
        greater). ``None`` where either subset is empty.
        """
        from scipy.stats import binomtest

        correct = np.asarray(correct, dtype=bool)
        if len(correct) != len(test_ids):
            raise ValueError(f"{len(test_ids)} ids but {len(correct)} correctness values")
        overlap = np.array([i in self.overlap_ids(split) for i in test_ids], dtype=bool)
        n, n_over = len(correct), int(overlap.sum())
        n_clean = n - n_over
        acc_clean = float(correct[~overlap].mean()) if n_clean else None
        acc_over = float(correct[overlap].mean()) if n_over else None
        p_value = None
        if n_over and n_clean:
            p_value = float(binomtest(int(correct[overlap].sum()), n_over, acc_clean, alternative="greater").pvalue)
        ids = set(test_ids)
        out: dict[str, Any] = {
            "accuracy_all": float(correct.mean()) if n else None,
            "accuracy_clean": acc_clean,
            "accuracy_overlap": acc_over,
            "clean_count": n_clean,
            "overlap_count": n_over,
            "overlap_rate": n_over / n if n else 0.0,
            "overlap_p_value": p_value,
            "overlap_flag": bool((n and n_over / n > OVERLAP_FLAG_RATE) or self.declared_overlap),
            "declared_overlap": list(self.declared_overlap),
        }
        ref = "target_train" if split == "target_test" and "target_train" in self.sizes else "train"
        radii = self.thresholds.get("near_hamming_by_reference", {})
        if ref in radii:  # the pHash radius used against the split's train data, and what it risks
            out["near_radius"] = radii[ref]
            out["expected_chance_matches"] = self.thresholds.get("expected_chance_matches", {}).get(ref)
        for d in DETECTORS:
            k = len(self.flagged(split, d) & ids)
            out[f"overlap_count_{d}"] = k
            out[f"overlap_rate_{d}"] = k / n if n else 0.0
        return out

    def to_json(self) -> dict[str, Any]:
        """Everything ``bench check --json`` prints: thresholds, rates per split, every pair."""
        queries = [s for s in ("test", "target_test") if s in self.sizes]
        return {
            "task": self.task,
            "sizes": dict(self.sizes),
            "fingerprints": dict(self.fingerprints),
            "thresholds": dict(self.thresholds),
            "low_information": dict(self.low_information),
            "declared_overlap": list(self.declared_overlap),
            "pretraining_indexes": list(self.pretraining_indexes),
            "rates": {s: self.rates(s) for s in queries},
            "pairs": [asdict(p) for p in self.pairs],
        }


@dataclass
class BudgetCheck:
    """Overlap of a budget manifest with the test splits. ``id_overlap`` means a broken manifest
    (an error); ``content_overlap`` means the pool holds exact copies of test images (a fact about
    the data, reported with the run)."""

    id_overlap: list[str]
    content_overlap: list[tuple[str, str]]  # (budget item id, test item id)

    @property
    def ok(self) -> bool:
        return not self.id_overlap and not self.content_overlap


def describe_pair(p: Pair) -> str:
    """One example line: ``test ID  ~  REFERENCE ID  [detector: distance, similarity, matches]``."""
    bits = []
    if p.distance is not None and p.detector != "exact":
        bits.append(f"pHash {p.distance}")
    if p.similarity is not None:
        bits.append(f"{'cos' if p.detector == 'embedding' else 'corr'} {p.similarity:.3f}")
    more = f", {p.matches} matches" if p.matches > 1 else ""
    detail = f"{p.detector}{': ' if bits else ''}{', '.join(bits)}{more}"
    return f"  {p.split} {p.item_id}  ~  {p.reference} {p.match_id}  [{detail}]"
