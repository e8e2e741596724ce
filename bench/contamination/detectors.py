"""The contamination detectors, and the two checks the harness runs: task_report, check_budget_disjoint.

Is a test image also in the train pool, twice in test, or in pretraining data?

Detectors, reported separately (see ``docs/contamination.md`` for the calibration):

- ``exact``: identical decoded pixels (sha256 of the canonical image, shape included).
- ``near``: 64-bit DCT pHash within a radius chosen from the size of the reference (at most
  ``near_threshold`` bits; :mod:`~bench.contamination.calibration`), confirmed by the 32x32 grey
  thumbnails (:mod:`~bench.contamination.confirm`): correlation at ``confirm_correlation`` or more,
  or at ``NEAR_CORRELATION`` when the pair is not among look-alikes.
- ``lookalike``: a pHash match that the second check did not confirm but whose thumbnails still
  correlate at ``LOOKALIKE_CORRELATION`` or more (or, against a pretraining index, a
  low-information match, which cannot be confirmed because the index keeps no pixels).
- ``embedding``: cosine similarity of the evaluated encoder's features at ``embedding_threshold``
  or more; kept apart because it also fires on same-class look-alikes (as the CLIP paper found).

Each test item is compared with the whole train pool (not only a budget), with the rest of test,
and with any pretraining index; a shifted task's ``target_test`` also with ``target_train``.
*Clean* is test minus the items flagged ``exact`` or ``near`` against another split or a
pretraining index; :meth:`ContaminationReport.cell_metrics` scores All against Clean with the CLIP
paper's one-sided binomial test.
"""


from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.contamination.calibration import CHANCE_BUDGET, expected_chance_matches, near_radius
from bench.contamination.confirm import NEAR_CORRELATION, confirm_pairs, far_candidates
from bench.contamination.corpus import CorpusIndex, load_index
from bench.contamination.declared import declared_overlap
from bench.contamination.hashing import Hashes, hash_images, thumb_correlation
from bench.contamination.index import HashIndex
from bench.contamination.report import (
    CONFIRM_CORRELATION,
    EMBEDDING_THRESHOLD,
    INDEX_NEAR_THRESHOLD,
    LOOKALIKE_CORRELATION,
    NEAR_THRESHOLD,
    BudgetCheck,
    ContaminationReport,
    Pair,
)
from bench.errors import UserError
from bench.tasks import Split, TaskData

#: Bump when the hashing changes, so cached hashes are recomputed.
HASH_VERSION = 1


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
                within: bool, pool: Hashes | None = None,
                near_correlation: float = NEAR_CORRELATION, reach: int = -1) -> list[Pair]:
    """Exact, near and look-alike pairs of one query split against one reference (a split or an
    index). ``pool``: the hashes among which the second check finds neighbours and rivals (default:
    the query and reference images). ``reach``: the cap up to which look-alike-prone pairs beyond the
    radius are registered (at most ``near_threshold`` rather than the reference's size-chosen radius)."""
    qi, ei = searcher.lookup_exact(qh.exact)
    if within:
        keep = qi != ei
        qi, ei = qi[keep], ei[keep]
    pairs = _best_pairs(split, ids, reference, ref_ids, "exact", qi, ei, np.zeros(len(qi), np.int64), None)
    if near_threshold < 0:  # the reference is too large for any pHash radius to be safe
        return pairs
    qn, en, dn = searcher.lookup_near(qh.phash, near_threshold)
    same = (qh.exact[qn] == searcher.exact[en]).all(axis=1) if len(qn) else np.zeros(0, bool)
    qn, en, dn = qn[~same], en[~same], dn[~same]
    if isinstance(rh, Hashes):  # every in-task match is confirmed by the thumbnails (see confirm.py)
        if pool is None:
            pool = qh if within else Hashes.concat([qh, rh])
        corr = thumb_correlation(qh.thumbs[qn], rh.thumbs[en]) if len(qn) else np.zeros(0)
        confirmed = confirm_pairs(qn, en, corr, qh, rh, pool, confirm, near_correlation)
        keep = confirmed | (corr >= LOOKALIKE_CORRELATION)
        qn, en, dn, corr, confirmed = qn[keep], en[keep], dn[keep], corr[keep], confirmed[keep]
        # beyond the radius, up to the cap: only copies that registration (or 0.998) confirms
        fq, fe, fd = far_candidates(qh.phash, rh.phash, near_threshold, reach)
        if len(fq):
            fc = thumb_correlation(qh.thumbs[fq], rh.thumbs[fe])
            ok = confirm_pairs(fq, fe, fc, qh, rh, pool, confirm, near_correlation, registered_only=True)
            qn, en, dn = np.r_[qn, fq[ok]], np.r_[en, fe[ok]], np.r_[dn, fd[ok]]
            corr, confirmed = np.r_[corr, fc[ok]], np.r_[confirmed, np.ones(int(ok.sum()), bool)]
    else:  # a pretraining index keeps no pixels: a low-information match cannot be confirmed
        corr = None
        confirmed = ~(qh.low_info[qn] | rh.low_info[en])
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
    ``near_threshold`` and ``index_near_threshold`` are caps: the radius used against each
    reference is the largest one that keeps the expected chance matches per test image under
    ``CHANCE_BUDGET`` for that reference's size (:func:`~bench.contamination.calibration.near_radius`).
    """
    cache = Path(cache_dir) if cache_dir is not None else None
    splits = task.splits()
    hashes = {name: split_hashes(s, cache, progress, name) for name, s in splits.items()}
    radius = {name: near_radius(len(h), near_threshold) for name, h in hashes.items()}
    searchers = {name: HashIndex(h.exact, h.phash, max(radius[name], 0)) for name, h in hashes.items()}
    indexes = []
    for path in pretraining_indexes:
        if progress:
            progress(f"loading pretraining index {path}")
        idx = load_index(path)
        name = f"pretraining:{Path(path).stem}"
        radius[name] = near_radius(len(idx), min(near_threshold, index_near_threshold))
        indexes.append((name, idx, idx.searcher(max(radius[name], 0))))

    plan = {"test": ["train", "test"]}
    if "target_test" in splits:
        plan["target_test"] = ["train"] + (["target_train"] if "target_train" in splits else []) + ["target_test"]
    pool = Hashes.concat(list(hashes.values()))  # where the second check finds neighbours and rivals
    pairs: list[Pair] = []
    for q, refs in plan.items():
        ids = splits[q].ids
        for ref in refs:
            within = ref == q
            pairs += _hash_pairs(q, ids, hashes[q], ref, splits[ref].ids, hashes[ref], searchers[ref],
                                 radius[ref], confirm_correlation, within, pool, reach=near_threshold)
            if features is not None and q in features and ref in features:
                pairs += _embedding_pairs(q, ids, features[q], ref, splits[ref].ids, features[ref],
                                          embedding_threshold, within)
        for name, idx, searcher in indexes:
            pairs += _hash_pairs(q, ids, hashes[q], name, idx.paths, idx, searcher, radius[name],
                                 confirm_correlation, False)
    sizes = {n: len(s) for n, s in splits.items()} | {name: len(idx) for name, idx, _ in indexes}
    return ContaminationReport(
        task=task.name,
        sizes={n: len(s) for n, s in splits.items()},
        fingerprints={n: s.fingerprint() for n, s in splits.items()},
        thresholds={"near_hamming": radius["train"], "near_hamming_cap": near_threshold,
                    "index_near_hamming": min(near_threshold, index_near_threshold),
                    "near_hamming_by_reference": dict(radius),
                    "expected_chance_matches": {n: expected_chance_matches(sizes[n], r) for n, r in radius.items()},
                    "chance_budget": CHANCE_BUDGET, "near_correlation": NEAR_CORRELATION,
                    "confirm_correlation": confirm_correlation, "lookalike_correlation": LOOKALIKE_CORRELATION,
                    "embedding_cosine": embedding_threshold},
        pairs=pairs,
        low_information={n: float(h.low_info.mean()) if len(h) else 0.0 for n, h in hashes.items()},
        declared_overlap=declared_overlap(encoder_pretraining_data, task.dataset),
        pretraining_indexes=[str(p) for p in pretraining_indexes],
    )


# -- budget manifests --------------------------------------------------------------------------


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
    fields = ("exact", "phash", "entropy", "low_info", "thumbs")
    bh = split_hashes(budget, None) if cache is None else Hashes(*(
        getattr(split_hashes(task.train, cache), f)[positions] for f in fields))
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
