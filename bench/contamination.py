"""Contamination checks: is a test image also in the train pool, twice in test, or in pretraining data?

Detectors, reported separately (see ``docs/contamination.md`` for the calibration):

- ``exact``: identical decoded pixels (sha256 of the canonical image, shape included).
- ``near``: 64-bit DCT pHash within ``near_threshold`` bits. On *low-information* images (tiny, or
  few grey levels: digits) distinct images collide, so there a pHash match counts as ``near`` only
  when the 32x32 grey thumbnails also correlate at ``confirm_correlation`` or more.
- ``lookalike``: a pHash match between low-information images that the second criterion did
  not confirm but whose thumbnails still correlate at ``LOOKALIKE_CORRELATION`` or more (or,
  against a pretraining index, that cannot be confirmed because the index keeps no pixels).
- ``embedding``: cosine similarity of the evaluated encoder's features at ``embedding_threshold``
  or more; kept apart because it also fires on same-class look-alikes (as the CLIP paper found).

Each test item is compared with the whole train pool (not only a budget), with the rest of test,
and with any pretraining index; a shifted task's ``target_test`` also with ``target_train``.
*Clean* is test minus the items flagged ``exact`` or ``near`` against another split or a
pretraining index; :meth:`ContaminationReport.cell_metrics` scores All against Clean with the CLIP
paper's one-sided binomial test.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UserError
from bench.hashindex import (
    CorpusIndex,
    Hashes,
    HashIndex,
    build_index,
    hash_images,
    load_image_file,
    load_index,
    thumb_correlation,
)
from bench.tasks import Split, TaskData

__all__ = [
    "ContaminationReport", "Pair", "task_report", "declared_overlap", "check_budget_disjoint",
    "BudgetCheck", "build_index", "load_index", "cli_check", "cli_index_build",
    "add_check_arguments", "add_index_arguments", "default_cache_dir",
]

#: pHash Hamming distance at or below which two images are near duplicates (calibrated on
#: natural-statistics images; pHashes are balanced so distances are even).
NEAR_THRESHOLD = 12
#: Thumbnail correlation that confirms a pHash match between low-information images as a copy.
CONFIRM_CORRELATION = 0.998
#: Below this thumbnail correlation an unconfirmed low-information match is not even a look-alike
#: (on digits nearly every image shares its pHash neighbourhood with hundreds of others).
LOOKALIKE_CORRELATION = 0.95
#: pHash radius against a pretraining index. Stricter than within a task: among a million
#: unrelated 64-bit hashes, chance matches within 12 bits are about 2.4e-7 per pair (a quarter of
#: queries would hit something), within 8 bits about 3e-10; and the lookup is ~40x cheaper.
INDEX_NEAR_THRESHOLD = 8
#: Cosine similarity of encoder features at or above which the embedding detector fires.
EMBEDDING_THRESHOLD = 0.95
#: Rows with a Clean-vs-All overlap above this rate are flagged on the leaderboard.
OVERLAP_FLAG_RATE = 0.01
#: Bump when the hashing changes, so cached hashes are recomputed.
HASH_VERSION = 1

DETECTORS = ("exact", "near", "lookalike", "embedding")
#: The detectors whose flagged items are removed to form the Clean subset.
CLEAN_EXCLUDES = ("exact", "near")


def default_cache_dir() -> Path:
    """``$BENCH_CACHE_DIR`` or ``~/.cache/transfer-bench`` (the feature cache's root too)."""
    return Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "transfer-bench")


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
    thresholds: dict[str, float]
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


# -- hashing splits (cached) -------------------------------------------------------------------


def split_hashes(split: Split, cache_dir: Path | None, progress: Callable[[str], None] | None = None,
                 name: str = "") -> Hashes:
    """Hashes of every image of ``split`` in order, cached under ``cache_dir/contamination``."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "contamination" / f"hashes-v{HASH_VERSION}-{split.fingerprint()}.npz"
        if path.exists():
            try:
                h = Hashes.load(path)
                if len(h) == len(split):
                    return h
            except Exception:  # a damaged cache file is recomputed
                pass
    if progress:
        progress(f"hashing {name or 'split'}: {len(split)} images")
    parts = [hash_images(split.images(range(s, min(s + 512, len(split))))) for s in range(0, len(split), 512)]
    h = Hashes.concat(parts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        h.save(path)
    return h


# -- matching ----------------------------------------------------------------------------------


def _best_pairs(split: str, ids: Sequence[str], reference: str, ref_ids: Sequence[str], detector: str,
                qi: np.ndarray, ei: np.ndarray, dist: np.ndarray | None, sim: np.ndarray | None) -> list[Pair]:
    """One Pair per flagged query item: its closest match (smallest distance, then highest similarity).
    Within a split both members of a duplicate pair are flagged items, so each is listed."""
    if not len(qi):
        return []
    d = np.zeros(len(qi)) if dist is None else dist.astype(np.float64)
    s = np.zeros(len(qi)) if sim is None else sim.astype(np.float64)
    order = np.lexsort((ei, -s, d, qi))
    qi, ei = qi[order], ei[order]
    d_sorted = None if dist is None else dist[order]
    s_sorted = None if sim is None else sim[order]
    first = np.flatnonzero(np.r_[True, qi[1:] != qi[:-1]])
    counts = np.diff(np.r_[first, len(qi)])
    out = []
    for f, c in zip(first, counts):
        q, e = int(qi[f]), int(ei[f])
        out.append(Pair(split, ids[q], reference, ref_ids[e], detector,
                        None if d_sorted is None else int(d_sorted[f]),
                        None if s_sorted is None else round(float(s_sorted[f]), 4), int(c)))
    return out


def _hash_pairs(split: str, ids: Sequence[str], qh: Hashes, reference: str, ref_ids: Sequence[str],
                rh: Hashes | CorpusIndex, searcher: HashIndex, near_threshold: int, confirm: float,
                within: bool) -> list[Pair]:
    qi, ei = searcher.lookup_exact(qh.exact)
    if within:
        keep = qi != ei
        qi, ei = qi[keep], ei[keep]
    pairs = _best_pairs(split, ids, reference, ref_ids, "exact", qi, ei, np.zeros(len(qi), np.int64), None)

    qn, en, dn = searcher.lookup_near(qh.phash, near_threshold)
    same = (qh.exact[qn] == searcher.exact[en]).all(axis=1) if len(qn) else np.zeros(0, bool)
    qn, en, dn = qn[~same], en[~same], dn[~same]
    low = qh.low_info[qn] | rh.low_info[en]
    if isinstance(rh, Hashes):
        corr = thumb_correlation(qh.thumbs[qn], rh.thumbs[en]) if len(qn) else np.zeros(0)
        confirmed = ~low | (corr >= confirm)
        keep = confirmed | (corr >= LOOKALIKE_CORRELATION)
        qn, en, dn, corr, confirmed = qn[keep], en[keep], dn[keep], corr[keep], confirmed[keep]
    else:  # a pretraining index keeps no pixels: a low-information match cannot be confirmed
        corr = None
        confirmed = ~low
    for det, mask in (("near", confirmed), ("lookalike", ~confirmed)):
        pairs += _best_pairs(split, ids, reference, ref_ids, det, qn[mask], en[mask], dn[mask],
                             None if corr is None else corr[mask])
    return pairs


def _embedding_pairs(split: str, ids: Sequence[str], q: np.ndarray, reference: str, ref_ids: Sequence[str],
                     r: np.ndarray, threshold: float, within: bool) -> list[Pair]:
    from bench.probe import l2_normalise

    q, r = l2_normalise(np.asarray(q, dtype=np.float32)), l2_normalise(np.asarray(r, dtype=np.float32))
    qs, es, ss = [], [], []
    for start in range(0, len(q), 1024):
        sim = q[start:start + 1024] @ r.T
        if within:
            rows = np.arange(sim.shape[0])
            sim[rows, rows + start] = -np.inf
        a, b = np.nonzero(sim >= threshold)
        qs.append(a + start)
        es.append(b)
        ss.append(sim[a, b])
    if not qs:
        return []
    qi, ei, s = np.concatenate(qs), np.concatenate(es), np.concatenate(ss)
    return _best_pairs(split, ids, reference, ref_ids, "embedding", qi, ei, None, s)


def task_report(
    task: TaskData,
    cache_dir: Path | str | None,
    *,
    features: Mapping[str, np.ndarray] | None = None,
    pretraining_indexes: Iterable[str | Path] = (),
    progress: Callable[[str], None] | None = None,
    encoder_pretraining_data: Sequence[str] = (),
    near_threshold: int = NEAR_THRESHOLD,
    index_near_threshold: int = INDEX_NEAR_THRESHOLD,
    confirm_correlation: float = CONFIRM_CORRELATION,
    embedding_threshold: float = EMBEDDING_THRESHOLD,
) -> ContaminationReport:
    """Check ``task``'s test (and target test) against its train data, itself and pretraining indexes.

    ``features`` maps split names to ``[N, D]`` feature arrays in split order (the evaluated
    encoder's); without them the embedding detector is skipped. ``progress`` receives one-line
    status messages. Hashes are cached in ``cache_dir`` by split fingerprint (``None``: no cache).
    """
    cache = Path(cache_dir) if cache_dir is not None else None
    splits = task.splits()
    hashes = {name: split_hashes(s, cache, progress, name) for name, s in splits.items()}
    searchers = {name: HashIndex(h.exact, h.phash, near_threshold) for name, h in hashes.items()}
    indexes = []
    for path in pretraining_indexes:
        if progress:
            progress(f"loading pretraining index {path}")
        idx = load_index(path)
        indexes.append((f"pretraining:{Path(path).stem}", idx, idx.searcher(min(near_threshold, index_near_threshold))))

    plan = {"test": ["train", "test"]}
    if "target_test" in splits:
        plan["target_test"] = ["train"] + (["target_train"] if "target_train" in splits else []) + ["target_test"]
    pairs: list[Pair] = []
    for q, refs in plan.items():
        ids = splits[q].ids
        for ref in refs:
            within = ref == q
            pairs += _hash_pairs(q, ids, hashes[q], ref, splits[ref].ids, hashes[ref], searchers[ref],
                                 near_threshold, confirm_correlation, within)
            if features is not None and q in features and ref in features:
                pairs += _embedding_pairs(q, ids, features[q], ref, splits[ref].ids, features[ref],
                                          embedding_threshold, within)
        for name, idx, searcher in indexes:
            pairs += _hash_pairs(q, ids, hashes[q], name, idx.paths, idx, searcher, searcher.radius,
                                 confirm_correlation, False)

    return ContaminationReport(
        task=task.name,
        sizes={n: len(s) for n, s in splits.items()},
        fingerprints={n: s.fingerprint() for n, s in splits.items()},
        thresholds={"near_hamming": near_threshold, "index_near_hamming": min(near_threshold, index_near_threshold),
                    "confirm_correlation": confirm_correlation, "lookalike_correlation": LOOKALIKE_CORRELATION,
                    "embedding_cosine": embedding_threshold},
        pairs=pairs,
        low_information={n: float(h.low_info.mean()) if len(h) else 0.0 for n, h in hashes.items()},
        declared_overlap=declared_overlap(encoder_pretraining_data, task.dataset),
        pretraining_indexes=[str(p) for p in pretraining_indexes],
    )


# -- declared overlap --------------------------------------------------------------------------

_ALIASES = {
    "imagenet": "imagenet-1k", "in1k": "imagenet-1k", "imagenet1k": "imagenet-1k", "ilsvrc2012": "imagenet-1k",
    "ilsvrc-2012": "imagenet-1k", "in21k": "imagenet-21k", "imagenet21k": "imagenet-21k",
    "imagenet-22k": "imagenet-21k", "in22k": "imagenet-21k", "imagenet22k": "imagenet-21k",
    "in12k": "imagenet-12k", "imagenet12k": "imagenet-12k", "cifar10": "cifar-10", "cifar100": "cifar-100",
    "flowers-102": "flowers102", "oxford-flowers102": "flowers102", "pets": "oxford-pets",
    "oxford-iiit-pet": "oxford-pets", "lvd142m": "lvd-142m",
}
#: Datasets drawn from the same image pool: a task from one overlaps pretraining on another.
_FAMILIES = {
    "imagenet": {"imagenet-1k", "imagenet-21k", "imagenet-12k", "imagenet-v2", "imagenet-r", "imagenet-a",
                 "imagenet-sketch"},
    "nist": {"mnist", "emnist", "qmnist", "kmnist-free-nist"},
    "cifar": {"cifar-10", "cifar-100", "cifar-10.1", "tiny-images"},
}
#: Pretraining corpora that declare other datasets inside them (DINOv2 paper, Table 15: LVD-142M
#: was curated around these datasets' train splits).
_CONTAINS = {
    "lvd-142m": {"imagenet-1k", "imagenet-21k", "caltech101", "cub-200", "dtd", "fgvc-aircraft", "flowers102",
                 "food-101", "oxford-pets", "stanford-cars", "sun397", "pascal-voc"},
}


def _norm(name: str) -> str:
    n = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    return _ALIASES.get(n, n)


def declared_overlap(encoder_pretraining_data: Iterable[str], task_dataset: Iterable[str]) -> list[str]:
    """Declared datasets of the task that the encoder's declared pretraining data includes.

    MTEB-style: a task drawn from ImageNet with an ImageNet-pretrained encoder is not a transfer
    to unseen images. Returns ``"TASK_DATASET (in ENCODER_DATA)"`` strings, empty when none.
    """
    out = []
    enc = [_norm(e) for e in encoder_pretraining_data]
    for t in task_dataset:
        tn = _norm(t)
        for e in enc:
            same_family = any(tn in fam and e in fam for fam in _FAMILIES.values())
            if tn == e or same_family or tn in _CONTAINS.get(e, ()):
                out.append(f"{t} (in {e})")
                break
    return out


# -- budget manifests --------------------------------------------------------------------------


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


def check_budget_disjoint(task: TaskData, manifest: Any, cache_dir: Path | str | None = None) -> BudgetCheck:
    """Check a budget manifest against test (and target test) by item id and by exact content hash.

    ``manifest`` is positions into ``task.train`` (integers), item ids (strings), or a mapping /
    object with ``ids`` or ``positions``.
    """
    if isinstance(manifest, Mapping):
        manifest = manifest.get("ids", manifest.get("positions"))
    elif hasattr(manifest, "ids") or hasattr(manifest, "positions"):
        manifest = getattr(manifest, "ids", None) or manifest.positions
    items = list(manifest if manifest is not None else [])
    if items and all(isinstance(x, str) for x in items):
        index = {i: k for k, i in enumerate(task.train.ids)}
        missing = [x for x in items if x not in index]
        if missing:
            raise UserError(f"budget manifest names {missing[0]!r}, which is not in the train pool of {task.name!r}")
        positions = [index[x] for x in items]
    else:
        positions = [int(x) for x in items]
    budget = task.train.subset(positions)
    cache = Path(cache_dir) if cache_dir is not None else None
    bh = split_hashes(budget, None) if cache is None else Hashes(*(
        getattr(split_hashes(task.train, cache), f)[positions] for f in ("exact", "phash", "entropy", "low_info", "thumbs")))
    ids_overlap, content = [], []
    for name in ("test", "target_test"):
        split = task.splits().get(name)
        if split is None:
            continue
        ids_overlap += sorted(set(budget.ids) & set(split.ids))
        th = split_hashes(split, cache)
        qi, ei = HashIndex(th.exact, th.phash, 0).lookup_exact(bh.exact)
        content += [(budget.ids[a], split.ids[b]) for a, b in zip(qi, ei)]
    return BudgetCheck(sorted(set(ids_overlap)), content)


# -- command line ------------------------------------------------------------------------------


def _add_if_absent(parser, flag: str, **kwargs) -> None:
    if flag not in getattr(parser, "_option_string_actions", {}):
        parser.add_argument(flag, **kwargs)


def add_check_arguments(parser) -> None:
    """Arguments of ``bench check TASK [--json] [--contact-sheet PNG] [--pretraining-index FILE]``."""
    parser.add_argument("task", help="task name, e.g. digits, mnist5k, folder:PATH")
    _add_if_absent(parser, "--json", action="store_true", help="print the report (every flagged pair) as JSON")
    parser.add_argument("--contact-sheet", metavar="PNG", help="save example pairs side by side (needs matplotlib)")
    _add_if_absent(parser, "--pretraining-index", metavar="FILE", action="append", default=[],
                   help="also check against a hash index from `bench index build` (repeatable)")
    parser.add_argument("--near-threshold", type=int, default=NEAR_THRESHOLD,
                        help=f"pHash Hamming distance for near duplicates (default {NEAR_THRESHOLD})")
    parser.add_argument("--examples", type=int, default=8, help="example pairs to print per detector (default 8)")
    _add_if_absent(parser, "--data-dir", metavar="DIR", help="where datasets live (torchvision and folder tasks)")
    _add_if_absent(parser, "--download", action="store_true", help="let dataset tasks download their data")
    _add_if_absent(parser, "--cache-dir", metavar="DIR", help="cache folder (default $BENCH_CACHE_DIR or ~/.cache/transfer-bench)")


def add_index_arguments(parser) -> None:
    """``bench index build FOLDER -o FILE`` and ``bench index info FILE``."""
    sub = parser.add_subparsers(dest="index_command", required=True)
    b = sub.add_parser("build", help="hash every image under a folder into an index file (resumable)")
    b.add_argument("folder", help="folder of images (searched recursively)")
    b.add_argument("-o", "--output", required=True, metavar="FILE", help="index file to write or resume")
    b.add_argument("--workers", type=int, default=1, help="processes for decoding and hashing (default 1)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    i = sub.add_parser("info", help="summarise an index file")
    i.add_argument("file")


def _load_task(args) -> TaskData:
    from bench.plugins import load_plugins
    from bench.specs import TaskRequest

    plugins = load_plugins()
    spec, _variant = plugins.tasks.resolve(args.task)

    def resolve(name: str) -> TaskData:
        s, _ = plugins.tasks.resolve(name)
        return s.load(TaskRequest(name=name, data_dir=getattr(args, "data_dir", None),
                                  download=getattr(args, "download", False), resolve=resolve))

    return spec.load(TaskRequest(name=args.task, data_dir=getattr(args, "data_dir", None),
                                 download=getattr(args, "download", False), resolve=resolve))


def _fmt_pair(p: Pair) -> str:
    bits = []
    if p.distance is not None and p.detector != "exact":
        bits.append(f"pHash {p.distance}")
    if p.similarity is not None:
        bits.append(f"{'cos' if p.detector == 'embedding' else 'corr'} {p.similarity:.3f}")
    more = f", {p.matches} matches" if p.matches > 1 else ""
    return f"  {p.split} {p.item_id}  ~  {p.reference} {p.match_id}  [{p.detector}{': ' if bits else ''}{', '.join(bits)}{more}]"


def format_report(report: ContaminationReport, examples: int = 8) -> str:
    lines = [f"contamination check: {report.task} "
             f"({', '.join(f'{k} {v}' for k, v in report.sizes.items())}); "
             f"near = pHash <= {report.thresholds['near_hamming']}, low-information matches confirmed at "
             f"thumbnail corr >= {report.thresholds['confirm_correlation']}"]
    for split in ("test", "target_test"):
        if split not in report.sizes:
            continue
        r = report.rates(split)
        refs = list(r["by_reference"])
        lines.append(f"{split}: {r['n']} images, {report.low_information.get(split, 0):.0%} low-information")
        head = f"  {'detector':<10} {'vs ' + ', '.join(refs) if refs else 'vs other data':<28} {'within ' + split:>16}"
        lines.append(head)
        for d in DETECTORS:
            if d == "embedding" and not any(p.detector == "embedding" for p in report.pairs):
                continue
            lines.append(f"  {d:<10} {r[d + '_count']:>6} ({r[d + '_rate']:.2%}){'':<15} "
                         f"{r['within_' + d + '_count']:>6} ({r['within_' + d + '_rate']:.2%})")
        lines.append(f"  overlap (exact or near, removed from Clean): {r['overlap_count']} ({r['overlap_rate']:.2%})")
    if report.declared_overlap:
        lines.append(f"declared overlap: {', '.join(report.declared_overlap)}")
    for d in DETECTORS:
        ex = [p for p in report.pairs if p.detector == d][:examples]
        if ex:
            lines.append(f"examples ({d}):")
            lines += [_fmt_pair(p) for p in ex]
    return "\n".join(lines)


def contact_sheet(report: ContaminationReport, task: TaskData, out: str | Path, per_detector: int = 4) -> int:
    """Save example pairs side by side as a PNG; returns the number of pairs drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--contact-sheet needs matplotlib; install it with `pip install transfer-bench[plots]`") from None
    splits = task.splits()
    roots = {f"pretraining:{Path(p).stem}": p for p in report.pretraining_indexes}
    chosen = [p for d in DETECTORS for p in [q for q in report.pairs if q.detector == d][:per_detector]]

    def image(split: str, item: str):
        if split in splits:
            s = splits[split]
            return s.images([s.ids.index(item)])[0]
        if split in roots:
            root = load_index(roots[split]).root
            try:
                return load_image_file(Path(root) / item)
            except Exception:
                return None
        return None

    rows = max(len(chosen), 1)
    fig, axes = plt.subplots(rows, 2, figsize=(4.4, 2.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for row, p in enumerate(chosen):
        for col, (split, item) in enumerate(((p.split, p.item_id), (p.reference, p.match_id))):
            img = image(split, item)
            ax = axes[row, col]
            if img is not None:
                ax.imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=255)
            else:
                ax.text(0.5, 0.5, "not available", ha="center", va="center")
            ax.set_title(f"{split}\n{item}", fontsize=6)
        axes[row, 0].text(1.05, -0.12, _fmt_pair(p).split("[")[-1].rstrip("]"), fontsize=6,
                          transform=axes[row, 0].transAxes, ha="center")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return len(chosen)


def cli_check(args) -> int:
    """Body of ``bench check``: print the report (text or JSON); optional contact sheet."""
    task = _load_task(args)
    cache = Path(getattr(args, "cache_dir", None) or default_cache_dir())
    quiet = getattr(args, "json", False)
    report = task_report(task, cache, pretraining_indexes=list(getattr(args, "pretraining_index", None) or []),
                         progress=None if quiet else (lambda m: print(f"bench: {m}", file=sys.stderr)),
                         near_threshold=getattr(args, "near_threshold", NEAR_THRESHOLD))
    if quiet:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(format_report(report, getattr(args, "examples", 8)))
    sheet = getattr(args, "contact_sheet", None)
    if sheet:
        n = contact_sheet(report, task, sheet)
        print(f"bench: contact sheet with {n} pairs written to {sheet}", file=sys.stderr)
    return 0


def cli_index_build(args) -> int:
    """Body of ``bench index build FOLDER -o FILE`` (and ``bench index info FILE``)."""
    if getattr(args, "index_command", "build") == "info":
        idx = load_index(args.file)
        print(f"{args.file}: {len(idx)} images hashed from {idx.root or '?'}; "
              f"{int(idx.low_info.sum())} low-information")
        return 0
    counts = build_index(args.folder, args.output, progress=not getattr(args, "no_progress", False),
                         workers=getattr(args, "workers", 1))
    print(f"bench: {args.output}: {counts['hashed']} images hashed, {counts['skipped_existing']} already there, "
          f"{counts['unreadable']} unreadable", file=sys.stderr)
    return 0
