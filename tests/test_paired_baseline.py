"""A strategy's paired source-only baseline (``Fitted.baseline``) is scored by the harness on the
same splits, and the record keeps its accuracies and the method's paired gain.

Guards against a domain-adaptation record whose "gain over source-only" came from another run,
another seed or the strategy's own say-so: the harness computes both numbers from predictions.
"""

from __future__ import annotations

import numpy as np
from test_sealed_context import SnoopPlugin

import bench
from bench.plugins import load_plugins
from bench.run.plan import RunConfig
from bench.run.runner import Runner
from bench.specs import StrategySpec
from bench.strategies import Fitted


class Paired:
    """Predicts by nearest class mean; its baseline predicts class 0 for everything."""

    def fit(self, ctx):
        x, y = ctx.features(ctx.labelled), np.asarray(ctx.labelled.labels)
        centroids = np.stack([x[y == c].mean(axis=0) for c in range(ctx.num_classes)])

        def predict(split):
            f = ctx.features(split)
            return ((f[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(axis=1)

        constant = Fitted(predict=lambda split: np.zeros(len(split), dtype=int), trainable_params=0, total_params=0)
        return Fitted(predict=predict, trainable_params=0, total_params=int(centroids.size), baseline=constant)


class PairedPlugin:
    @staticmethod
    @bench.hookimpl
    def bench_register_strategies():
        return [StrategySpec(name="paired", description="has a baseline", loader=lambda: Paired(), kind="features")]


def test_baseline_is_scored_on_the_same_splits_and_the_gain_is_paired(tmp_path, with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    cfg = RunConfig(encoders=["toy-cnn"], strategies=["paired"], tasks=["toy-shift"], budgets="2", seeds=1,
                    out=tmp_path / "run", device="cpu", progress=False, forgetting="off", contamination=False)
    plugins = load_plugins(extra=[("paired", PairedPlugin), ("snoop", SnoopPlugin)])  # snoop: the toy-shift task
    [rec] = Runner(cfg, plugins).run()
    assert rec["status"] == "ok", rec["error"]
    m = rec["metrics"]
    # the target test is the test split here, so the constant baseline scores class 0's share on both
    from bench.loading import TaskLoader  # noqa: F401  (the toy task's labels, read the way the harness does)

    assert m["source_only_accuracy"] == m["source_only_target_accuracy"]
    assert 0.0 < m["source_only_target_accuracy"] < 0.5  # three balanced classes: about 1/3
    assert m["paired_gain"] == round(m["target_accuracy"] - m["source_only_target_accuracy"], 6)
    assert m["paired_gain"] > 0.2


def test_da_methods_of_a_cell_group_share_one_baseline_and_groups_do_not(tmp_path, with_plugins, monkeypatch):
    """Guards the paired baseline's memo: two DA methods with the same base recipe (mcc, coral) in
    one cell group train the source-only baseline once (three trainings, not four) and record the
    same baseline numbers; the memo belongs to the group (``ctx.shared``), so a second run trains
    it again instead of reusing a process-global copy."""
    from bench.domain import loop

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    calls: list[str] = []
    train = loop.train_domain

    def counted(ctx, encoder, term=None, sample_weights=None):
        calls.append(term.name if term is not None else "source-only")
        return train(ctx, encoder, term, sample_weights)

    monkeypatch.setattr(loop, "train_domain", counted)
    fast = [(None, "min_steps", 2), (None, "max_steps", 2), (None, "batch_size", 4), (None, "augment", "none")]
    for run in ("a", "b"):
        cfg = RunConfig(encoders=["toy-cnn"], strategies=["mcc", "coral"], tasks=["toy-shift"], budgets="2", seeds=1,
                        out=tmp_path / run, device="cpu", progress=False, forgetting="off", contamination=False,
                        options=fast)
        recs = Runner(cfg, load_plugins(extra=[("snoop", SnoopPlugin)])).run()
        assert [r["status"] for r in recs] == ["ok", "ok"], [r.get("error") for r in recs]
        assert recs[0]["metrics"]["source_only_target_accuracy"] == recs[1]["metrics"]["source_only_target_accuracy"]
    assert sorted(calls) == sorted(["source-only", "mcc", "coral"] * 2)
