"""Forgetting: reference-task probe accuracy of the adapted backbone minus the original's, on a
seeded, stratified subsample, with the original's score computed once."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import timm  # noqa: E402

from bench.encoders import Encoder  # noqa: E402
from bench.run import forgetting  # noqa: E402
from bench.tasks import ArraySplit, TaskData  # noqa: E402


def tiny_cnn(seed: int) -> Encoder:
    torch.manual_seed(seed)
    net = timm.create_model("test_efficientnet", num_classes=0)
    return Encoder(name="tiny-cnn", module=net, feature_dim=net.num_features, input_size=16)


def reference_task(n_train: int = 90, n_test: int = 60) -> TaskData:
    """Three classes: bright left half, bright right half, bright centre (plus noise)."""
    rng = np.random.default_rng(0)

    def make(n, prefix):
        y = np.arange(n) % 3
        x = rng.integers(0, 60, size=(n, 8, 8, 1))
        for i, c in enumerate(y):
            cols = [slice(0, 4), slice(4, 8), slice(2, 6)][c]
            x[i, :, cols] += 180
        return ArraySplit([f"{prefix}/{i}" for i in range(n)], x.astype(np.uint8), y)

    return TaskData(name="ref", classes=["l", "r", "c"], train=make(n_train, "tr"), test=make(n_test, "te"))


@pytest.fixture(autouse=True)
def empty_cache():
    forgetting._original_cache.clear()
    yield
    forgetting._original_cache.clear()


def test_unchanged_backbone_has_zero_forgetting():
    original = tiny_cnn(0)
    result = forgetting.measure(original, copy.deepcopy(original), reference_task(), "cpu", seed=0)
    assert result["reference_drop"] == 0.0
    assert result["reference_accuracy_original"] == result["reference_accuracy_adapted"]
    assert result["reference_accuracy_original"] > 0.6  # the probe works on this toy reference task
    assert result["reference_task"] == "ref"


def test_reference_drop_is_original_minus_adapted_probe_accuracy():
    """Positive means points lost on the reference task (the old ``forgetting`` had the opposite sign)."""
    original, other = tiny_cnn(0), tiny_cnn(1)
    ref = reference_task()
    train, test = forgetting.reference_splits(ref, seed=0)
    a_orig = forgetting.probe_accuracy(original, train, test, seed=0)
    a_other = forgetting.probe_accuracy(other, train, test, seed=0)
    result = forgetting.measure(original, other, ref, "cpu", seed=0)
    assert result["reference_accuracy_original"] == pytest.approx(a_orig, abs=1e-4)
    assert result["reference_accuracy_adapted"] == pytest.approx(a_other, abs=1e-4)
    assert result["reference_drop"] == pytest.approx(a_orig - a_other, abs=1e-4) and "forgetting" not in result


def test_original_score_is_computed_once_and_can_be_passed_in(monkeypatch):
    calls = []
    real = forgetting.probe_accuracy
    monkeypatch.setattr(forgetting, "probe_accuracy", lambda enc, *a, **k: calls.append(enc) or real(enc, *a, **k))
    original, ref = tiny_cnn(0), reference_task()
    first = forgetting.measure(original, tiny_cnn(1), ref, "cpu", seed=0)
    second = forgetting.measure(original, tiny_cnn(2), ref, "cpu", seed=0)
    assert len(calls) == 3  # original once, each adapted once
    assert first["reference_accuracy_original"] == second["reference_accuracy_original"]
    given = forgetting.measure(original, tiny_cnn(1), ref, "cpu", seed=0, original_score=0.5)
    assert len(calls) == 4
    assert given["reference_accuracy_original"] == 0.5
    assert given["reference_drop"] == pytest.approx(0.5 - first["reference_accuracy_adapted"], abs=1e-4)


def test_reference_subsample_is_bounded_stratified_and_seeded():
    ref = reference_task(n_train=300, n_test=120)
    train, test = forgetting.reference_splits(ref, seed=3, max_train=100, max_test=50)
    assert len(train) <= 100 and len(test) <= 50
    assert min(np.bincount(train.labels)) >= 33  # proportional per class
    assert set(test.labels.tolist()) == {0, 1, 2}
    again, _ = forgetting.reference_splits(ref, seed=3, max_train=100, max_test=50)
    assert again.ids == train.ids
    other, _ = forgetting.reference_splits(ref, seed=4, max_train=100, max_test=50)
    assert other.ids != train.ids
    small_train, small_test = forgetting.reference_splits(reference_task(30, 20), seed=0)
    assert len(small_train) == 30 and len(small_test) == 20  # small tasks are used whole
