"""One cell: the sealed context, fit, predict, metrics, Clean-vs-All overlap, forgetting, peak memory.

:func:`evaluate_cell` takes a :class:`CellJob` (everything one cell needs, already loaded) and
fills in the cell's record. Strategies see label-free views (:mod:`bench.views`); the real labels
stay here, for the metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from bench.run.budgets import ids_digest
from bench.run.deadline import CellTimeout, deadline
from bench.run.device import cell_threads, deterministic_settings, seed_everything
from bench.run.plan import Cell
from bench.run.records import jsonable
from bench.run.tuning import fit_with_tuning
from bench.strategies import FitContext, Fitted, Strategy
from bench.tasks import Split, TaskData
from bench.views import LabelFreeSplit, LabelledSplit, gated_features


@dataclass(frozen=True)
class CellJob:
    """What one cell needs, loaded once per (task, encoder) group by the worker."""

    cell: Cell
    task: TaskData
    #: positions of the budget in ``task.train`` (from the shared manifest)
    positions: np.ndarray
    strategy: Strategy
    #: the strategy's kind: ``"features"`` strategies deploy the frozen encoder too
    kind: str
    #: the pre-trained encoder (shared by the group's cells; never modified)
    encoder: Any
    encoder_total: int
    encoder_meta: Any
    #: ``load_encoder(pretrained)`` as strategies call it
    load_encoder: Callable[..., Any]
    #: frozen features of a real split of the task (the group's feature cache)
    features: Callable[[Split], np.ndarray]
    device: str
    #: the record so far (:func:`bench.run.records.base_record`)
    record: dict[str, Any]
    report: Any = None
    reference: TaskData | None = None
    #: test items whose content is in this budget's manifest (None: not checked)
    budget_content_copies: int | None = None
    #: ``--cell-timeout`` in seconds (None: no limit)
    timeout: float | None = None
    #: the strategy's spec: its ``tunable`` grid drives ``--tune`` (cross-validation inside the budget)
    spec: Any = None
    progress: Callable[[str], None] = lambda message: None
    #: what the group's cells share (``FitContext.shared``: the DA baseline memo)
    shared: dict[str, Any] | None = None


def baseline_metrics(baseline: Fitted, task: Any, test: Any, target_test: Any,
                     metrics: dict[str, Any]) -> dict[str, Any]:
    """The paired source-only baseline's accuracies on the same test splits, and the method's gain
    over it (on the target test when the task is shifted, else on the test split)."""
    out: dict[str, Any] = {}
    bpred = np.asarray(baseline.predict(test))
    out["source_only_accuracy"] = classification_metrics(task.test.labels, bpred, task.num_classes)["accuracy"]
    gain_of, base = "accuracy", out["source_only_accuracy"]
    if target_test is not None and task.target_test is not None:
        tpred = np.asarray(baseline.predict(target_test))
        base = classification_metrics(task.target_test.labels, tpred, task.num_classes)["accuracy"]
        out["source_only_target_accuracy"] = base
        gain_of = "target_accuracy"
    out["paired_gain"] = round(metrics[gain_of] - base, 6)
    return out


def evaluate_cell(job: CellJob) -> dict[str, Any]:
    """Run one cell and return its record: ``ok``, or ``failed`` with the error and a ``reason``
    (:func:`failure_reason`). Anything the strategy raises, a :class:`~bench.errors.UserError`
    included, is this cell's failure: the rest of the grid goes on."""
    cell, task = job.cell, job.task
    rec = job.record
    real_labelled = task.train.subset(cast("Sequence[int]", job.positions))
    rec["n_labelled"] = len(job.positions)
    rec["manifest_sha256"] = ids_digest(real_labelled.ids)
    features, allow, open_after_fit = gated_features(job.features)
    labelled = allow(LabelledSplit.of(real_labelled), real_labelled)
    target = None
    if task.target_train is not None:
        target = allow(LabelFreeSplit.of(task.target_train), task.target_train)
    test = allow(LabelFreeSplit.of(task.test), task.test, after_fit_only=True)
    target_test = None
    if task.target_test is not None:
        target_test = allow(LabelFreeSplit.of(task.target_test), task.target_test, after_fit_only=True)
    ctx = FitContext(
        task_name=task.name, classes=list(task.classes), extra=task.extra, labelled=labelled,
        unlabelled_target=target, config=dict(cell.config), seed=cell.seed, device=job.device,
        load_encoder=job.load_encoder, features=features, encoder_meta=job.encoder_meta, progress=job.progress,
        shared=job.shared,
    )
    rec["device_info"] = deterministic_settings(job.device)
    start = time.perf_counter()
    try:
        with PeakMemory(job.device) as mem, deadline(job.timeout), cell_threads():
            seed_everything(cell.seed)
            fitted = (job.strategy.fit(ctx) if job.spec is None
                      else fit_with_tuning(job.strategy, job.spec, ctx, reseed=seed_everything))
            open_after_fit()
            pred = np.asarray(fitted.predict(test))
            metrics = classification_metrics(task.test.labels, pred, task.num_classes)
            if job.report is not None:
                rec["contamination"] = overlap_metrics(job.report, task.test, pred, metrics, "")
            if target_test is not None and task.target_test is not None:
                tpred = np.asarray(fitted.predict(target_test))
                tm = classification_metrics(task.target_test.labels, tpred, task.num_classes)
                metrics["target_accuracy"] = tm["accuracy"]
                metrics["target_balanced_accuracy"] = tm["balanced_accuracy"]
                metrics["transfer_gap"] = round(metrics["accuracy"] - tm["accuracy"], 6)
                if job.report is not None:
                    breakdown = overlap_metrics(job.report, task.target_test, tpred, metrics, "target_")
                    rec["contamination"].update(breakdown)
            if fitted.baseline is not None:
                metrics.update(baseline_metrics(fitted.baseline, task, test, target_test, metrics))
                if target is not None:  # the collapse guard, on the unlabelled target pool
                    metrics.update(collapse_guard(np.asarray(fitted.predict(target)), task.num_classes))
            wall = time.perf_counter() - start
            if job.reference is not None and fitted.encoder is not None and fitted.encoder.pretrained:
                from bench.run import forgetting

                job.progress(f"forgetting on {job.reference.name}")
                forgetting_start = time.perf_counter()
                f = forgetting.measure(job.encoder, fitted.encoder, job.reference, job.device, seed=0)
                f["forgetting_s"] = round(time.perf_counter() - forgetting_start, 3)
                metrics["reference_drop"] = f["reference_drop"]
                rec["forgetting"] = f
    except (Exception, CellTimeout) as exc:  # MemoryError and CUDA's OutOfMemoryError are Exceptions
        rec.update(status="failed", reason=failure_reason(exc), error=f"{type(exc).__name__}: {exc}",
                   wall_s=round(time.perf_counter() - start, 3))
        return rec
    if job.report is not None:
        rec["flags"] = flags(rec["contamination"])
        if job.budget_content_copies is not None:
            rec["contamination"]["budget_test_content_copies"] = job.budget_content_copies
    if fitted.baseline is not None:
        rec["flags"] = [*rec.get("flags", []), *da_flags(metrics, task.num_classes)]
    trainable, total = int(fitted.trainable_params), int(fitted.total_params)
    if job.kind == "features":
        total += job.encoder_total  # the frozen encoder is part of the deployed model
    rec.update(
        status="ok",
        metrics=metrics,
        trainable_params=trainable,
        total_params=total,
        trainable_share=round(trainable / total, 6) if total else 0.0,
        wall_s=round(wall, 3),
        peak_mem_mb=mem.peak_mb,
        info=jsonable(fitted.info),
    )
    return rec


def failure_reason(exc: BaseException) -> str:
    """Why a cell failed: ``diverged`` (a non-finite training loss: :mod:`bench.training` raises
    FloatingPointError), ``protocol`` (the strategy reached for what it may not see), ``oom`` (out of
    memory: ``MemoryError`` or CUDA's "out of memory"), ``timeout`` (``--cell-timeout``) or ``error``."""
    from bench.views import ProtocolError

    if isinstance(exc, CellTimeout):
        return "timeout"
    if isinstance(exc, FloatingPointError):
        return "diverged"
    if isinstance(exc, ProtocolError):
        return "protocol"
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "oom"
    return "error"


def flags(contamination: dict[str, Any]) -> list[str]:
    """The leaderboard's warning flags for a cell's contamination breakdown."""
    out = []
    if contamination.get("declared_overlap"):
        out.append("declared-overlap:" + "+".join(contamination["declared_overlap"]))
    if contamination.get("overlap_flag") and contamination.get("overlap_rate", 0) > 0.01:
        out.append("overlap>1%")
    return out


#: ``chance-level``: a DA record whose target balanced accuracy is at most 1/K plus this margin (fixed in advance)
CHANCE_MARGIN = 0.05


def collapse_guard(target_pred: np.ndarray, num_classes: int) -> dict[str, Any]:
    """A DA record's predicted-class histogram on the unlabelled target pool and its effective number of
    predicted classes ``exp(H(mean prediction))`` (:mod:`bench.domain.selection`'s guard)."""
    from bench.domain.selection import guard, one_hot

    g = guard(one_hot(target_pred, num_classes), num_classes)
    return {"target_pred_hist": g["histogram"], "target_effective_classes": g["effective_classes"],
            "target_collapsed": g["collapsed"]}


def da_flags(metrics: dict[str, Any], num_classes: int) -> list[str]:
    """``collapsed`` (effective target classes at most half of K) and ``chance-level`` (target balanced
    accuracy at most ``1/K + CHANCE_MARGIN``) for a DA record's metrics."""
    out = ["collapsed"] if metrics.pop("target_collapsed", False) else []
    balanced = metrics.get("target_balanced_accuracy")
    if balanced is not None and balanced <= 1.0 / num_classes + CHANCE_MARGIN + 1e-9:
        out.append("chance-level")
    return out


def overlap_metrics(report: Any, split: Split, pred: np.ndarray, metrics: dict[str, Any],
                    prefix: str) -> dict[str, Any]:
    """Clean-vs-All scores of one split; headline numbers go into ``metrics`` (prefixed for the
    target domain), the full breakdown is returned for the record's ``contamination`` field."""
    correct = pred == np.asarray(split.labels)
    m = report.cell_metrics(split.ids, correct, split="target_test" if prefix else "test")
    if m.get("accuracy_clean") is not None:
        metrics[f"{prefix}accuracy_clean"] = round(m["accuracy_clean"], 6)
    metrics[f"{prefix}overlap_rate"] = round(m["overlap_rate"], 6)
    return {f"{prefix}{k}": v for k, v in m.items()}


def classification_metrics(labels: np.ndarray, pred: np.ndarray, num_classes: int) -> dict[str, float]:
    labels = np.asarray(labels)
    pred = np.asarray(pred)
    if pred.shape != labels.shape:
        raise ValueError(f"predict() returned shape {pred.shape}, expected {labels.shape}")
    if pred.dtype.kind == "f" and not np.isfinite(pred).all():  # a model lost to NaN: not a score of 0
        raise FloatingPointError(f"predict() returned {int((~np.isfinite(pred)).sum())} non-finite class indices")
    acc = float((pred == labels).mean()) if len(labels) else float("nan")
    recalls = [float((pred[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()]
    return {"accuracy": round(acc, 6), "balanced_accuracy": round(float(np.mean(recalls)), 6)}


class PeakMemory:
    """Peak memory of one cell: CUDA's allocator peak on a GPU; on the CPU, the peak resident set
    size of this process sampled every 20 ms (so it includes what was resident before the cell)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_mb = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _rss_mb(self) -> float:
        try:
            with open("/proc/self/statm") as f:
                pages = int(f.read().split()[1])
            import os

            return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError):
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss_mb())
            self._stop.wait(0.02)

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            self.peak_mb = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = round(max(self.peak_mb, self._rss_mb()), 1)
