"""The frozen-feature DA protocol (bench.domain.features): a planted shift it must fix, its terms
against hand values, determinism under a seed, and a ``bench run`` of its strategies."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from bench.domain.features import fit_features, source_only_features
from bench.domain.loop import BaselineMemo
from bench.domain.terms import AdversarialTerm, coral_loss, mcc_loss
from bench.strategies import FitContext
from bench.tasks import Split
from bench_plugins.strategies._features import SourceOnlyFeatures
from bench_plugins.strategies.dann_features import DANN_FEATURES_DEFAULTS
from tests.conftest import run_cli

SMALL = {"min_steps": 800, "max_steps": 800, "bottleneck_dim": 32, "domain_hidden": 64}


class Rows(Split):
    """A split of feature rows (the test's features are the data itself)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, tag: str) -> None:
        self.x, self.labels, self.ids = x, y, [f"{tag}{i}" for i in range(len(y))]

    def images(self, positions):
        return [self.x[i] for i in positions]


def _planted(seed: int):
    """4 Gaussian classes in 16-d (source, 80 labelled); the target's class means are partly rotated and
    offset, so a source-only head misreads it while the classes stay separable."""
    rng = np.random.default_rng(0)
    means = rng.normal(0, 2.0, (4, 16))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    target_means = means @ (0.4 * np.eye(16) + 0.6 * q) + 1.8
    r = np.random.default_rng(seed)

    def draw(n, m, tag):
        y = r.integers(0, 4, n)
        return Rows((m[y] + r.normal(0, 1.0, (n, 16))).astype(np.float32), y, tag)

    return draw(80, means, "s"), draw(600, target_means, "t"), draw(600, target_means, "u")


def _ctx(source, target, test, seed, config):
    rows = {i: x for s in (source, target, test) for i, x in zip(s.ids, s.x, strict=True)}
    return FitContext(task_name="planted", classes=list("abcd"), labelled=source, unlabelled_target=target,
                      config={**DANN_FEATURES_DEFAULTS, **SMALL, **config}, seed=seed,
                      features=lambda split: np.stack([rows[i] for i in split.ids]))


def _accuracy(fitted, split) -> float:
    return float((fitted.predict(split) == split.labels).mean())


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_dann_features_beats_source_only_features_on_a_planted_shift():
    gaps = []
    for seed in (0, 1, 2):
        source, target, test = _planted(seed)
        ctx = _ctx(source, target, test, seed, {})
        fitted = fit_features(ctx, AdversarialTerm(ctx.config))
        alone = SourceOnlyFeatures().fit(_ctx(source, target, test, seed, {}))
        assert _accuracy(fitted.baseline, test) == _accuracy(alone, test)  # the baseline is that cell
        gaps.append(_accuracy(fitted, test) - _accuracy(fitted.baseline, test))
        assert fitted.info["steps"] == 800 and fitted.info["capped"] is False
        assert 0.0 <= fitted.info["final_domain_accuracy"] <= 1.0
    assert min(gaps) > 0.1, gaps


def test_the_same_seed_gives_identical_predictions_and_another_seed_does_not():
    source, target, test = _planted(0)
    short = {"min_steps": 100, "max_steps": 100}
    contexts = [_ctx(source, target, test, seed, short) for seed in (0, 0, 1)]
    runs = [fit_features(c, AdversarialTerm(c.config)) for c in contexts]
    preds = [r.predict(test) for r in runs]
    assert np.array_equal(preds[0], preds[1]) and runs[0].info == runs[1].info
    assert runs[0].info["final_loss"] != runs[2].info["final_loss"]


def test_the_source_only_baseline_is_memoised_per_session():
    source, target, test = _planted(0)
    ctx = _ctx(source, target, test, 0, {})
    first, again = source_only_features(ctx), source_only_features(ctx)
    assert first.info == again.info and np.array_equal(first.predict(test), again.predict(test))
    assert len(BaselineMemo.of(ctx).entries) == 1  # trained once


def test_mcc_and_coral_terms_equal_hand_values():
    # MCC, T = 1, two items, two classes: p rows (0.5, 0.5) (H = ln 2) and (1, 0) (H = 0)
    logits = torch.tensor([[0.0, 0.0], [40.0, 0.0]])
    w = np.array([1 + 0.5, 1 + 1.0])
    w = w / w.sum() * 2
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    c = (p * w[:, None]).T @ p
    c = c / c.sum(axis=1, keepdims=True)
    assert abs(float(mcc_loss(logits, 1.0)) - (c.sum() - np.trace(c)) / 2) < 1e-6
    # by hand: w = (6/7, 8/7); C = [[19/14, 3/14], [3/14, 3/14]]; rows normalised [[19/22, 3/22], [1/2, 1/2]];
    # off-diagonal mass 3/22 + 1/2 = 7/11, over K = 2: 7/22
    assert abs(float(mcc_loss(logits, 1.0)) - 7 / 22) < 1e-6
    # CORAL: source rows (0, 0), (2, 0); target rows (0, 0), (0, 2); means (1, 0) vs (0, 1): mean term 1;
    # covariances diag(2, 0) vs diag(0, 2): squared entries 4 + 4 over d^2 = 4 -> 2, a quarter 0.5
    s, t = torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    assert abs(float(coral_loss(s, t)) - 1.5) < 1e-6


def test_feature_strategies_run_through_bench_run_with_their_paired_baseline_and_guard(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", "--tasks", "digits@blur:3", "--encoders", "pixels", "--strategies",
                   "dann-features,mcc-features,source-only-features", "--budgets", "3", "--seeds", "1",
                   "--no-contamination", "--forgetting", "off", "--no-progress", "--set", "min_steps=40",
                   "--set", "max_steps=40", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    recs = {r["strategy"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert {k: r["status"] for k, r in recs.items()} == {"dann-features": "ok", "mcc-features": "ok",
                                                         "source-only-features": "ok"}
    alone = recs["source-only-features"]["metrics"]["target_accuracy"]
    for name in ("dann-features", "mcc-features"):
        m = recs[name]["metrics"]
        assert m["source_only_target_accuracy"] == alone  # the paired baseline is the protocol's own cell
        assert math.isclose(m["paired_gain"], m["target_accuracy"] - alone, abs_tol=1e-6)
        assert sum(m["target_pred_hist"]) == 1258 and 1.0 <= m["target_effective_classes"] <= 10.0
        assert recs[name]["info"]["steps"] == 40 and recs[name]["info"]["capped"] is False
    assert "target_pred_hist" not in recs["source-only-features"]["metrics"]  # not a DA record
