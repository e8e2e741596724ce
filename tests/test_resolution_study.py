"""The default-resolution rule of benchmarks/resolution_study.py (issue 25), on hand-made rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "resolution_study", Path(__file__).resolve().parents[1] / "benchmarks" / "resolution_study.py")
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)


def row(side, acc, projected):
    return {"side": side, "carve_out_accuracy": acc, "projected_s": projected}


def test_the_best_affordable_side_wins():
    rows = [row(32, 0.60, 100), row(64, 0.70, 400), row(96, 0.74, 590), row(224, 0.90, 2000)]
    assert study.choose(rows) == 96  # 224 scores best but projects past the 600 s budget


def test_ties_go_to_the_smaller_side_and_nothing_affordable_chooses_nothing():
    rows = [row(64, 0.700, 400), row(96, 0.704, 500), row(128, 0.690, 550)]
    assert study.choose(rows) == 64  # 96 is within 0.5 points of 64
    assert study.choose([row(224, 0.9, 900)]) is None
    assert study.choose(rows, budget_s=450) == 64 and study.choose(rows, tie=0.0) == 96
