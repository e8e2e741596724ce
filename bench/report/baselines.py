"""Pairs each domain-adaptation record with the standard source-only cells and raises its baseline flags.

A DA record (one whose metrics carry ``source_only_target_accuracy``, its own paired baseline) is
paired with the STANDARD source-only record of the same task, encoder, label manifest
(``manifest_sha256``) and seed: ``finetune`` for methods that fine-tune, and ``linear-probe`` and
``source-only-features`` for the frozen-feature methods (names ending in ``-features``). When
several configurations of a standard strategy match, the record is left unpaired with it (as the
head-start pairing does). :func:`annotate` adds, per standard baseline ``S`` found,
``metrics["gain_over_S"]`` (the record's target accuracy minus S's, same seed: the board averages
it into a paired 95% CI) and these flags, with thresholds fixed in advance (``K`` classes):

- ``chance-level`` (every record, not only DA): its balanced accuracy (the target's on a shifted
  task) is at most ``1/K +`` :data:`CHANCE_MARGIN`;
- ``baseline-at-chance``: its own paired source-only target accuracy is at most ``1/K +``
  :data:`CHANCE_MARGIN`;
- ``weak-source-model``: its own source model (``source_only_accuracy``, SOURCE test) is more than
  :data:`WEAK_SOURCE_POINTS` below the first standard baseline's source test accuracy.

``K`` is the task's ``task_info.num_classes`` or, for a per-class budget, ``n_labelled`` over the
per-class count. Records are copied, never changed in place.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

#: above chance by at most this (accuracy) counts as at chance (fixed before any record was read)
CHANCE_MARGIN = 0.05
#: a method's own source model this far (accuracy) below the standard one on the source test is weak
WEAK_SOURCE_POINTS = 0.10
FINETUNE_BASELINES = ("finetune",)
FEATURE_BASELINES = ("linear-probe", "source-only-features")


def standard_baselines(strategy: str) -> tuple[str, ...]:
    """The standard source-only strategies a DA strategy is compared with (none for themselves)."""
    names = FEATURE_BASELINES if strategy.endswith("-features") else FINETUNE_BASELINES
    return tuple(n for n in names if n != strategy)


def is_da(rec: dict[str, Any]) -> bool:
    """Whether a record carries its own paired source-only baseline (a DA method's record)."""
    return isinstance((rec.get("metrics") or {}).get("source_only_target_accuracy"), (int, float))


def num_classes(rec: dict[str, Any]) -> int | None:
    """``K`` of the record's task (see the module doc), or None when the record does not tell."""
    known = (rec.get("task_info") or {}).get("num_classes")
    if isinstance(known, int) and known > 0:
        return known
    count, _, per = str(rec.get("budget") or "").partition("/")
    n = rec.get("n_labelled")
    if per == "class" and count.isdigit() and int(count) > 0 and isinstance(n, int) and n % int(count) == 0:
        return n // int(count)
    return None


def chance_limit(k: int) -> float:
    """The accuracy at or below which a ``k``-class score is at chance: ``1/k + CHANCE_MARGIN``."""
    return 1.0 / k + CHANCE_MARGIN


def _key(rec: dict[str, Any]) -> tuple[Any, ...]:
    return rec["task"], rec["encoder"], rec.get("manifest_sha256"), rec["seed"]


def _config(rec: dict[str, Any]) -> str:
    return str(rec.get("config_digest") or rec.get("config_id") or "default")


def partners(records: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, dict[str, Any]]]:
    """``{(task, encoder, manifest, seed): {standard strategy: its one ok record}}``."""
    found: dict[tuple[Any, ...], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    names = set(FINETUNE_BASELINES + FEATURE_BASELINES)
    for r in records:
        if r.get("status") == "ok" and r["strategy"] in names and r.get("manifest_sha256"):
            found[_key(r)][r["strategy"]].append(r)
    return {key: {name: rs[0] for name, rs in by.items() if len({_config(r) for r in rs}) == 1}
            for key, by in found.items()}


def at_chance(score: Any, k: int | None) -> bool:
    """Whether an accuracy of a ``k``-class task is at most :func:`chance_limit` (False if unknown)."""
    return bool(k) and isinstance(score, (int, float)) and score <= chance_limit(int(k or 1)) + 1e-12


def chance_flags(rec: dict[str, Any]) -> list[str]:
    """``["chance-level"]`` when the record's balanced accuracy (the target's when it has one) is at chance."""
    metrics = rec.get("metrics") or {}
    shifted = "target_accuracy" in metrics
    score = metrics.get("target_balanced_accuracy", metrics.get("target_accuracy")) if shifted else metrics.get(
        "balanced_accuracy", metrics.get("accuracy"))
    return ["chance-level"] if at_chance(score, num_classes(rec)) else []


def flags_of(rec: dict[str, Any], standard: dict[str, Any] | None) -> list[str]:
    """The baseline flags of one DA record given its first standard baseline (or None)."""
    metrics = rec["metrics"]
    out = ["baseline-at-chance"] if at_chance(metrics["source_only_target_accuracy"], num_classes(rec)) else []
    own = metrics.get("source_only_accuracy")
    std = None if standard is None else standard["metrics"].get("accuracy")
    if isinstance(own, (int, float)) and isinstance(std, (int, float)) and std - own > WEAK_SOURCE_POINTS + 1e-12:
        out.append("weak-source-model")
    return out


def annotate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record, ok ones with ``chance-level`` where due, DA records with their ``gain_over_S``
    metrics and baseline flags added."""
    found = partners(records)
    out = []
    for rec in records:
        if rec.get("status") != "ok":
            out.append(rec)
            continue
        if not is_da(rec):
            new = chance_flags(rec)
            out.append({**rec, "flags": sorted({*rec.get("flags", []), *new})} if new else rec)
            continue
        metrics = dict(rec["metrics"])
        pairs = found.get(_key(rec), {}) if rec.get("manifest_sha256") else {}
        standards = [pairs[n] for n in standard_baselines(rec["strategy"]) if n in pairs]
        for std in standards:
            if isinstance(metrics.get("target_accuracy"), (int, float)) and "target_accuracy" in std["metrics"]:
                metrics[f"gain_over_{std['strategy']}"] = metrics["target_accuracy"] - std["metrics"]["target_accuracy"]
        new = chance_flags(rec) + flags_of(rec, standards[0] if standards else None)
        out.append({**rec, "metrics": metrics, "flags": sorted({*rec.get("flags", []), *new})})
    return out
