"""Choosing among domain-adaptation candidates without target labels: the criterion, the collapse guard, the veto.

``bench tune --criterion NAME`` maximises one validator of :mod:`bench.domain.validators` (every
score there is higher = better); the report keeps every validator's score per cell.

**The collapse guard** needs no label either. On the unlabelled target sample it records the
predicted-class histogram and the effective number of predicted classes ``exp(H(mean_i P_i))``
(1 when every item gets one class, ``K`` when the mean prediction is uniform). A cell is
*collapsed* when that number is at most :data:`COLLAPSE_FRACTION` of the classes (half, fixed
before any selection was run, as issue 21 proposes); a candidate with a collapsed cell is vetoed:
it is never chosen, whatever its score, and the veto is written in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.domain.select import DOMAIN_CS, MAX_WEIGHT
from bench.domain.validators import DESCRIPTIONS, NAMES, RATIO_VALIDATORS
from bench.errors import UserError

#: the default criterion on shifted tasks: the validator study's choice by the rule fixed in
#: docs/defaults.md before it ran (lowest mean regret, ties to iwv); the command is there
SHIFTED_DEFAULT = "classami"
#: criteria ``bench tune --criterion`` accepts (``oracle-target`` is refused: it reads target labels)
CRITERIA = NAMES
#: a cell whose effective number of predicted target classes is at most this fraction of the
#: classes is collapsed (fixed in advance: half the classes)
COLLAPSE_FRACTION = 0.5
#: one ``bench tune`` cell: validation accuracy, correctness per validation item, (density ratios,
#: domain C), class indices on the target sample and that sample's features (each None if absent)
Cell = tuple[float | None, Any, Any, Any, Any]


def one_hot(predicted: Any, num_classes: int) -> np.ndarray:
    """``[n, K]`` one-hot rows of class indices (what ``Fitted.predict`` returns)."""
    pred = np.asarray(predicted, dtype=np.int64)
    out = np.zeros((len(pred), num_classes))
    out[np.arange(len(pred)), pred] = 1.0
    return out


def class_histogram(probs: Any, num_classes: int) -> list[int]:
    """How many target items are predicted as each class (argmax of each row)."""
    return np.bincount(np.asarray(probs).argmax(axis=1), minlength=num_classes).tolist()


def effective_classes(probs: Any) -> float:
    """``exp(H(mean prediction))``: 1 when one class takes every item, ``K`` for a uniform mean."""
    from scipy.special import entr

    return float(np.exp(entr(np.asarray(probs, dtype=np.float64).mean(axis=0)).sum()))


def collapse_threshold(num_classes: int) -> float:
    """The effective number of classes at or below which a cell is collapsed."""
    return COLLAPSE_FRACTION * num_classes


def collapsed(probs: Any, num_classes: int, threshold: float | None = None) -> bool:
    """Whether the target predictions use at most ``threshold`` classes effectively (default:
    half the classes, :func:`collapse_threshold`)."""
    limit = collapse_threshold(num_classes) if threshold is None else threshold
    return effective_classes(probs) <= limit + 1e-9  # exp(log 2) may round above 2


def guard(probs: Any, num_classes: int) -> dict[str, Any]:
    """What the report records of a cell's target predictions: histogram, effective classes, collapsed."""
    return {"histogram": class_histogram(probs, num_classes), "effective_classes": round(effective_classes(probs), 4),
            "threshold": collapse_threshold(num_classes), "collapsed": collapsed(probs, num_classes)}


def veto(guards: dict[str, Sequence[dict[str, Any] | None]]) -> str | None:
    """Why a candidate is vetoed (its first collapsed cell, by task), or None."""
    for task, cells in guards.items():
        for i, cell in enumerate(cells):
            if cell is not None and cell["collapsed"]:
                return (f"{task} cell {i}: target predictions collapsed to {cell['effective_classes']} effective "
                        f"classes (at most {cell['threshold']:g}, half the classes), histogram {cell['histogram']}")
    return None


def vetoed_scores(means: Sequence[float | None], vetoes: Sequence[str | None]) -> list[float | None]:
    """The means the choice sees: a vetoed candidate's is None (never chosen)."""
    return [None if why else m for m, why in zip(means, vetoes, strict=True)]


def refusal(rows: Sequence[dict[str, Any]]) -> str | None:
    """Why no candidate can be chosen when every one that ran was vetoed, else None."""
    if any(r["mean"] is not None for r in rows) and all(r["veto"] or r["mean"] is None for r in rows):
        return ("bench tune: every candidate that ran collapsed on the target (at most half the classes predicted "
                "effectively); no default is chosen: widen the grid or lower the method's weight")
    return None


def resolve_criterion(requested: str | None, shifted: Sequence[bool], tasks: Sequence[str]) -> str:
    """The criterion ``bench tune`` uses: ``requested``, or by default :data:`SHIFTED_DEFAULT` when
    every task is shifted (``A->B``) and ``source`` otherwise. A target criterion on an unshifted task, or one
    that reads target labels, is refused."""
    if requested in (None, "", "auto"):
        return SHIFTED_DEFAULT if shifted and all(shifted) else "source"
    name = str(requested).strip().lower()
    if name.startswith("oracle"):
        raise UserError(f"--criterion {requested}: a default may not be chosen on target test labels; the "
                        "leaderboard's oracle table shows that upper bound from runs that already happened; "
                        f"use one of {', '.join(CRITERIA)}")
    if name not in CRITERIA:
        raise UserError(f"--criterion {requested!r} is unknown; use one of {', '.join(CRITERIA)} (default: "
                        f"{SHIFTED_DEFAULT} for shifted tasks, source otherwise)")
    unshifted = [t for t, s in zip(tasks, shifted, strict=True) if not s]
    if name != "source" and unshifted:
        raise UserError(f"--criterion {name} needs a shifted task (A->B) with unlabelled target images; "
                        f"{', '.join(unshifted)} has none: use --criterion source")
    return name


def describe(criterion: str, ratio_features: str) -> dict[str, Any]:
    """What ``bench tune``'s report says about the criterion it used, how the ratios were made,
    the validators it records and the collapse guard."""
    ratio = None if criterion not in RATIO_VALIDATORS else {
        "features": f"{ratio_features} encoder features, L2-normalised",
        "classifier": f"logistic regression, balanced, C from {list(DOMAIN_CS)} by 3-fold domain log-loss, "
                      "5-fold cross-fitted", "clip": MAX_WEIGHT}
    rule = f"--criterion, else {SHIFTED_DEFAULT} (the validator study's choice, docs/defaults.md) when every task is "
    return {"criterion": criterion, "criterion_rule": rule + "shifted (A->B), else source",
            "metric": DESCRIPTIONS[criterion], "density_ratio": ratio,
            "validators": {"higher_is_better": True, **DESCRIPTIONS},
            "collapse_guard": f"a candidate is vetoed when a cell's target predictions use at most "
                              f"{COLLAPSE_FRACTION:g} x classes effectively (exp of the mean prediction's entropy)"}



def assess(cells: Sequence[Cell], num_classes: int, seed: int = 0) -> list[tuple[dict[str, Any], Any]]:
    """Per :data:`Cell` (``correct`` None: the cell failed): every validator's score rounded to 6
    places and the collapse guard (None without target predictions); ``({}, None)`` if it failed."""
    from bench.domain.validators import scores

    out: list[tuple[dict[str, Any], Any]] = []
    for _, correct, ratios, predicted, features in cells:
        if correct is None:
            out.append(({}, None))
            continue
        probs = None if predicted is None else one_hot(predicted, num_classes)
        raw = scores(correct, None if ratios is None else ratios[0], probs, features, num_classes, seed)
        out.append(({k: None if v is None else round(v, 6) for k, v in raw.items()},
                    None if probs is None else guard(probs, num_classes)))
    return out


def record_task(row: dict[str, Any], task: str, criterion: str, cells: Sequence[Cell], num_classes: int,
                seed: int = 0, shifted: bool = True) -> None:
    """Write one task's cells into a candidate's report row: ``scores`` (the criterion's) and, on a
    shifted task, every validator's (``validators``) and the collapse guard (``collapse_guard``)."""
    assessed = assess(cells, num_classes, seed)
    row["scores"][task] = [v.get(criterion) for v, _ in assessed]
    if shifted:
        row.setdefault("validators", {})[task] = [v or None for v, _ in assessed]
        row.setdefault("collapse_guard", {})[task] = [g for _, g in assessed]


def summarise(rows: Sequence[dict[str, Any]]) -> list[float | None]:
    """Each candidate's ``mean`` (criterion) and ``source_mean`` over every task and cell (None if
    a cell failed) and its ``veto``, set in place; returns the means the choice sees."""
    for row in rows:
        for key, name in (("mean", "scores"), ("source_mean", "source_scores")):
            every = [s for cells in row[name].values() for s in cells]
            row[key] = None if any(s is None for s in every) else round(float(np.mean(every)), 6)
        row["veto"] = veto(row.get("collapse_guard", {}))
    return vetoed_scores([r["mean"] for r in rows], [r["veto"] for r in rows])
