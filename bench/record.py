"""The record a cell produces, one line of ``results.jsonl``: its fields and their types.

The record builder (:func:`bench.run.records.base_record`, then the cell's evaluation) fills a
:class:`Record`; the report (:mod:`bench.report`) and ``bench_cell_finished`` observers read it.
On disk a record is plain JSON, so readers of old files see the same keys; fields marked
``NotRequired`` appear only where they apply (``record_type`` on stream records, ``forgetting``
where it was measured, ...). docs/leaderboard.md describes each field.
"""


# (no `from __future__ import annotations`: TypedDict must see NotRequired at class creation)
from typing import Any, Literal, NotRequired, TypedDict

#: A cell's outcome: ``skipped`` cells were planned and not run (their reason is ``error``).
Status = Literal["ok", "failed", "skipped"]
#: Records of ``bench run --stream`` and ``bench multitask`` say so; grid records carry no ``record_type``.
RecordType = Literal["stream", "multitask"]


class Metrics(TypedDict, total=False):
    """What a cell measured (every key optional: which ones depend on the task and strategy)."""

    accuracy: float
    balanced_accuracy: float
    accuracy_clean: float
    overlap_rate: float
    target_accuracy: float
    target_balanced_accuracy: float
    target_accuracy_clean: float
    target_overlap_rate: float
    transfer_gap: float
    reference_drop: float
    # domain adaptation: the paired source-only baseline, scored by the harness
    source_only_accuracy: float
    source_only_target_accuracy: float
    paired_gain: float
    # domain adaptation: the label-free collapse guard on the unlabelled target pool
    target_pred_hist: list[int]
    target_effective_classes: float
    # continual streams: GEM metrics and the accuracy matrix
    acc: float
    bwt: float
    fwt: float | None
    R: list[list[float]]
    baseline: list[float]
    # multi-task records: the gain over each task's single-task cell, and per task its scores
    delta_m: float
    mean_gain: float
    tasks: dict[str, dict[str, Any]]


class Record(TypedDict):
    """One cell's record (schema :data:`bench.run.records.SCHEMA_VERSION`)."""

    schema: int
    protocol: int | None
    cell_id: str | None
    config_digest: str | None
    config_summary: dict[str, Any] | None
    encoder: str
    strategy: str
    task: str
    budget: str
    seed: int
    config_id: str
    config: dict[str, Any]
    status: Status
    error: str | None
    metrics: Metrics
    trainable_params: int
    total_params: int
    trainable_share: float
    wall_s: float
    peak_mem_mb: float
    device: str
    encoder_info: dict[str, Any]
    task_info: dict[str, Any]
    versions: dict[str, str]
    timestamp: str
    provenance: NotRequired[dict[str, Any]]
    record_type: NotRequired[RecordType]
    stream: NotRequired[dict[str, Any]]
    info: NotRequired[Any]
    flags: NotRequired[list[str]]
    contamination: NotRequired[dict[str, Any]]
    device_info: NotRequired[dict[str, Any]]
    forgetting: NotRequired[dict[str, Any]]
    manifest_sha256: NotRequired[str]
    n_labelled: NotRequired[int | list[int]]  # a list on multi-task records: one per task
    multitask: NotRequired[dict[str, Any]]
