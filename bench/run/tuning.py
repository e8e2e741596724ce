"""Hyper-parameter selection without test data: ``--tune`` by cross-validation inside the budget.

A strategy declares what may be tuned (``StrategySpec.tunable``: option -> candidate values).
:func:`fit_with_tuning` wraps its ``fit``: for each candidate it fits the strategy on the folds of
a stratified k-fold split of ``ctx.labelled`` (a sub-budget, through a context that is the cell's
own with a smaller ``labelled``) and predicts the held-out fold through a label-free view; the
candidate with the best mean held-out accuracy is refitted on the whole budget. No strategy knows
about tuning, and nothing but the labelled budget (and, for domain adaptation, the unlabelled
target images the cell may see anyway) is read. :func:`bench.run.tunables.check_tune_request` refuses ``--tune`` at
plan time for strategies that declare nothing to tune.

Rules (docs/defaults.md): ``k = min(5, smallest class count)``; a budget with fewer than two items
in some labelled class, or a single class, cannot be cross-validated and keeps the defaults
(recorded). Ties go to the candidate holding the current default, else to the first in grid order.
A candidate whose fit raises scores nothing (its error is recorded); if every candidate fails,
the first error is raised.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bench.errors import UserError
from bench.run.tunables import wants_tune
from bench.specs import StrategySpec
from bench.strategies import FitContext, Fitted, Strategy
from bench.views import LabelFreeSplit, LabelledSplit

#: What the record's ``info["tuned"]`` says when the budget cannot be cross-validated.
TOO_SMALL = "budget too small, defaults used"
MAX_FOLDS = 5


def candidates(tunable: Mapping[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Every combination of the candidate values, in grid order (the first option varies slowest)."""
    keys = list(tunable)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(tunable[k] for k in keys))]


def option_grid(spec: StrategySpec, items: list[str], parse: Callable[[str], Any]) -> dict[str, tuple[Any, ...]]:
    """``bench tune``'s candidates: the declared tunable grid, or only the ``--option KEY=V1,V2`` given
    (each value read by ``parse``)."""
    grid = dict(spec.tunable)
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise UserError(f"--option {item!r}: expected KEY=V1,V2,..., e.g. --option lr=1e-4,3e-4,1e-3")
        if key not in spec.defaults or key == "tune":
            raise UserError(f"--option {key!r} is not an option of {spec.name!r}; known: {', '.join(spec.defaults)}")
        grid[key] = tuple(parse(v.strip()) for v in values.split(","))
    return {k: v for k, v in grid.items() if not items or any(i.split("=")[0].strip() == k for i in items)}


def folds(labels: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Stratified ``k``-fold split of a budget's labels, ``k = min(5, smallest class count)``;
    ``None`` when some labelled class has fewer than two items or only one class is labelled."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(y) if len(y) else np.zeros(0, dtype=np.int64)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        return None
    k = int(min(MAX_FOLDS, present.min()))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in splitter.split(np.zeros(len(y)), y)]


def with_config(ctx: FitContext, config: Mapping[str, Any], labelled: LabelledSplit | None = None) -> FitContext:
    """The cell's context with another config (and optionally a sub-budget as ``labelled``)."""
    return FitContext(
        labelled=labelled if labelled is not None else ctx.labelled, unlabelled_target=ctx.unlabelled_target,
        config=dict(config), seed=ctx.seed, device=ctx.device, load_encoder=ctx.load_encoder,
        features=ctx.features, encoder_meta=ctx.encoder_meta, progress=ctx.progress,
        task_name=ctx.task_name, classes=ctx.classes, extra=ctx.extra, shared=ctx.shared,
    )


def held_out(budget: LabelledSplit, positions: np.ndarray) -> LabelFreeSplit:
    """Items of the budget as a label-free view (what ``predict`` gets); ``ctx.features`` serves
    it because its root is the budget."""
    part = budget.subset(positions.tolist())
    return LabelFreeSplit(part.ids, part.images, base=part, positions=np.arange(len(part)))


def cross_validate(strategy: Strategy, ctx: FitContext, config: Mapping[str, Any],
                   splits: list[tuple[np.ndarray, np.ndarray]],
                   reseed: Callable[[int], None] | None = None) -> float:
    """Mean held-out accuracy of ``strategy`` with ``config`` over ``splits`` of ``ctx.labelled``."""
    budget = ctx.labelled
    if not isinstance(budget, LabelledSplit):
        budget = LabelledSplit.of(budget)
    y = np.asarray(budget.labels)
    scores = []
    for train, valid in splits:
        if reseed is not None:
            reseed(ctx.seed)
        fitted = strategy.fit(with_config(ctx, config, budget.subset(train.tolist())))
        pred = np.asarray(fitted.predict(held_out(budget, valid)))
        scores.append(float((pred == y[valid]).mean()))
    return float(np.mean(scores))


def choose(grid: list[dict[str, Any]], scores: list[float | None], defaults: Mapping[str, Any]) -> int:
    """Index of the best score; ties go to the candidate equal to the defaults, else the first."""
    valid = [s for s in scores if s is not None]
    best = max(valid)
    tied = [i for i, s in enumerate(scores) if s is not None and np.isclose(s, best, rtol=0, atol=1e-12)]
    for i in tied:
        if all(defaults.get(k) == v for k, v in grid[i].items()):
            return i
    return tied[0]


def fit_with_tuning(strategy: Strategy, spec: StrategySpec, ctx: FitContext,
                    reseed: Callable[[int], None] | None = None) -> Fitted:
    """``strategy.fit(ctx)``, tuned when ``ctx.config["tune"]`` is set and ``spec`` declares tunables.

    Each candidate of ``spec.tunable`` is cross-validated inside ``ctx.labelled``; the best is
    refitted on the whole budget, and ``info["tuned"]`` records the chosen values, every
    candidate's mean CV accuracy (or its error) and the number of folds. ``reseed(seed)`` (the
    cell's seeding function) is called before every fit, so the refit starts from the same random
    state as an untuned fit. Fits run with ``tune`` off: a strategy's own search never runs twice.
    """
    config = dict(ctx.config)
    if not spec.tunable or not wants_tune(config.get("tune")):
        return strategy.fit(ctx)
    config["tune"] = False
    budget = ctx.labelled if isinstance(ctx.labelled, LabelledSplit) else LabelledSplit.of(ctx.labelled)
    splits = folds(np.asarray(budget.labels), ctx.seed)
    if splits is None:
        if reseed is not None:
            reseed(ctx.seed)
        fitted = strategy.fit(with_config(ctx, config))
        fitted.info["tuned"] = {"status": TOO_SMALL, "chosen": {k: config[k] for k in spec.tunable}}
        return fitted
    grid = candidates(spec.tunable)
    scores: list[float | None] = []
    errors: list[str | None] = []
    first_error: Exception | None = None
    for i, values in enumerate(grid):
        ctx.progress(f"tune {i + 1}/{len(grid)}: {values}")
        try:
            scores.append(cross_validate(strategy, ctx, {**config, **values}, splits, reseed))
            errors.append(None)
        except UserError:
            raise
        except Exception as exc:  # a candidate that fails (e.g. diverges) scores nothing
            first_error = first_error or exc
            scores.append(None)
            errors.append(f"{type(exc).__name__}: {exc}")
    if first_error is not None and all(s is None for s in scores):
        raise first_error
    best = choose(grid, scores, spec.defaults)
    if reseed is not None:
        reseed(ctx.seed)
    fitted = strategy.fit(with_config(ctx, {**config, **grid[best]}))
    table = [{"values": values, "cv_accuracy": None if s is None else round(s, 6), **({"error": e} if e else {})}
             for values, s, e in zip(grid, scores, errors, strict=True)]
    fitted.info["tuned"] = {"chosen": grid[best], "cv_accuracy": table, "folds": len(splits),
                            "metric": "mean held-out accuracy"}
    return fitted
