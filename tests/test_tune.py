"""``--tune`` and ``bench tune``: selection without test data (issue 10, "No choice is made on test data").

Before bench.run.tuning existed only linear-probe could be tuned (its own C search); ``--tune`` on any
other strategy was silently a no-op, and defaults were chosen by code outside the repository.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.errors import UserError
from bench.run.tunables import check_tune_request
from bench.run.tuning import TOO_SMALL, fit_with_tuning, folds
from bench.specs import StrategySpec
from bench.strategies import FitContext, Fitted
from bench.tasks import ArraySplit
from bench.views import LabelFreeSplit, LabelledSplit, gated_features
from tests.conftest import run_cli

CLASSES = ["a", "b", "c"]


def _split(n_per_class: int, offset: int, prefix: str) -> ArraySplit:
    rng = np.random.default_rng(offset)
    labels = np.repeat(np.arange(3), n_per_class)
    images = (labels[:, None, None] * 80 + rng.integers(0, 20, (len(labels), 4, 4))).astype(np.uint8)
    return ArraySplit([f"{prefix}{i}" for i in range(len(labels))], images, labels.tolist())


class Shifted:
    """Nearest class mean, then predicts class ``(c + shift) % 3``: ``shift = 0`` is the only good value.
    Records every config and every budget (ids) it was fitted on."""

    def __init__(self) -> None:
        self.fits: list[tuple[dict, list[str]]] = []

    def fit(self, ctx: FitContext) -> Fitted:
        self.fits.append((dict(ctx.config), list(ctx.labelled.ids)))
        if ctx.config.get("explode") and ctx.config["shift"] == 2:
            raise FloatingPointError("diverged")
        x, y = ctx.features(ctx.labelled), np.asarray(ctx.labelled.labels)
        means = np.stack([x[y == c].mean(axis=0) for c in range(3)])
        shift = int(ctx.config["shift"])

        def predict(split):
            f = ctx.features(split)
            return (((f[:, None, :] - means[None]) ** 2).sum(-1).argmin(axis=1) + shift) % 3

        return Fitted(predict=predict, trainable_params=0, total_params=int(means.size),
                      info={"config": dict(ctx.config)})


SPEC = StrategySpec(name="shifted", description="toy", loader=Shifted, kind="features",
                    defaults={"shift": 1, "explode": False}, tunable={"shift": (2, 1, 0)})


def _context(n_per_class: int, config: dict, seen: list[str]):
    train, test = _split(n_per_class, 0, "tr"), _split(5, 1, "te")

    def source(split):
        seen.append(split.ids[0][:2])  # which real split was encoded: "tr" or "te"
        return np.asarray(split.images(range(len(split))), dtype=np.float64).reshape(len(split), -1)

    features, allow, _ = gated_features(source)
    labelled = allow(LabelledSplit.of(train), train)
    allow(LabelFreeSplit.of(test), test, after_fit_only=True)
    ctx = FitContext(labelled=labelled, config=config, seed=0, features=features, task_name="toy", classes=CLASSES)
    return ctx


def test_spec_declares_tunables_and_gets_a_tune_option():
    """Guards: tunable grids exist on the spec, name real options, and make ``tune`` an option."""
    assert SPEC.tunable == {"shift": (2, 1, 0)}
    assert SPEC.defaults["tune"] is False
    with pytest.raises(ValueError, match="tunable option 'lr' is not one of its defaults"):
        StrategySpec(name="x", description="", loader="m:f", defaults={"C": 1}, tunable={"lr": (1e-3,)})
    with pytest.raises(ValueError, match="no candidate values"):
        StrategySpec(name="x", description="", loader="m:f", defaults={"C": 1}, tunable={"C": ()})


def test_folds_follow_the_smallest_class():
    """k = min(5, smallest class count); fewer than two items in a labelled class: no CV."""
    assert len(folds(np.repeat(np.arange(3), 3), 0)) == 3
    assert len(folds(np.repeat(np.arange(3), 20), 0)) == 5
    assert folds(np.array([0, 0, 1]), 0) is None
    assert folds(np.array([0, 0, 0]), 0) is None


def test_cv_chooses_the_argmax_inside_the_budget_and_never_touches_test():
    """Guards: the choice is the argmax of the recorded CV scores, every fit sees only a sub-budget
    (held-out fold excluded), the refit uses the chosen value on the whole budget, and the test
    split is never encoded during tuning (a sealed context with a spy on the feature source)."""
    seen: list[str] = []
    ctx = _context(4, dict(SPEC.defaults, tune=True), seen)
    strategy = Shifted()
    fitted = fit_with_tuning(strategy, SPEC, ctx)
    tuned = fitted.info["tuned"]
    scores = {row["values"]["shift"]: row["cv_accuracy"] for row in tuned["cv_accuracy"]}
    assert scores == {2: 0.0, 1: 0.0, 0: 1.0}
    assert tuned["chosen"] == {"shift": 0} and tuned["folds"] == 4
    assert fitted.info["config"]["shift"] == 0 and fitted.info["config"]["tune"] is False
    budget = set(ctx.labelled.ids)
    *cv_fits, refit = strategy.fits
    assert len(cv_fits) == 3 * 4
    assert all(set(ids) < budget and len(ids) == 9 for _, ids in cv_fits)
    assert set(refit[1]) == budget
    assert set(seen) == {"tr"}  # the test split ("te") was never encoded


def test_ties_keep_the_default_and_failed_candidates_are_recorded():
    """Guards: a tie does not move away from the default; a candidate that raises scores nothing
    (its error is recorded) instead of ending the cell."""
    spec = StrategySpec(name="tie", description="", loader=Shifted, kind="features",
                        defaults={"shift": 0, "explode": True}, tunable={"shift": (2, 3, 0)})
    fitted = fit_with_tuning(Shifted(), spec, _context(3, dict(spec.defaults, tune=True), []))
    rows = fitted.info["tuned"]["cv_accuracy"]
    assert rows[0]["cv_accuracy"] is None and "diverged" in rows[0]["error"]
    assert rows[1]["cv_accuracy"] == rows[2]["cv_accuracy"] == 1.0  # shift 3 == shift 0 mod 3: a tie
    assert fitted.info["tuned"]["chosen"] == {"shift": 0}


def test_small_budget_keeps_defaults_and_says_so():
    """Guards: one item per class cannot be cross-validated: defaults used, recorded."""
    strategy = Shifted()
    fitted = fit_with_tuning(strategy, SPEC, _context(1, dict(SPEC.defaults, tune=True), []))
    assert fitted.info["tuned"] == {"status": TOO_SMALL, "chosen": {"shift": 1}}
    assert len(strategy.fits) == 1


def test_without_tune_the_strategy_fits_once_untouched():
    strategy = Shifted()
    fitted = fit_with_tuning(strategy, SPEC, _context(4, dict(SPEC.defaults), []))
    assert "tuned" not in fitted.info and len(strategy.fits) == 1


FIXED = StrategySpec(name="prototype", description="", loader="m:f", kind="features")
KNN = StrategySpec(name="knn", description="", loader="m:f", kind="features", defaults={"knn_k": 20},
                   tunable={"knn_k": (5, 20)})


def test_tune_is_refused_for_strategies_without_tunables():
    """Guards: ``--tune`` on strategies that declare nothing to tune was silently ignored."""
    with pytest.raises(UserError) as exc:
        check_tune_request([FIXED], [(None, "tune", True)])
    assert "'prototype' declares no tunable options" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(UserError, match="strategy 'prototype' declares no tunable options; .*support it: knn"):
        check_tune_request([FIXED, KNN], [("prototype", "tune", "true")])
    check_tune_request([FIXED], [(None, "tune", False)])  # not asked: nothing to refuse


def test_mixed_run_tunes_those_that_can_and_lists_the_others_once():
    notes: list[str] = []
    check_tune_request([FIXED, KNN], [(None, "tune", True)], warn=notes.append)
    assert notes == ["bench: --tune applies to knn; not to prototype (no tunable options), which run with their "
                     "defaults"]


def test_builtin_strategies_declare_tunable_grids():
    """Guards: every strategy the issue names can be tuned; defaults are among the candidates."""
    from bench.plugins import load_plugins

    strategies = load_plugins().strategies
    expected = {"finetune": "lr", "lp-ft": "lr", "lora": "lr", "adapter": "lr", "bitfit": "lr", "scratch": "lr",
                "linear-probe": "C", "knn": "knn_k", "coral": "coral_weight"}
    for name, key in expected.items():
        spec = strategies.get(name)
        assert key in spec.tunable, name
        if spec.defaults[key] == "auto":  # linear-probe's C per budget: each value it can take is a candidate
            from bench_plugins.strategies.linear_probe import C_BY_BUDGET

            assert {C for _, C in C_BY_BUDGET} <= set(spec.tunable[key]), name
        else:
            assert spec.defaults[key] in spec.tunable[key], name
        assert spec.defaults["tune"] is False


def test_linear_probe_tunes_C_through_the_shared_machinery():
    """Guards: linear-probe's C search goes through fit_with_tuning (its own search stays off)."""
    from bench.plugins import load_plugins

    spec = load_plugins().strategies.get("linear-probe")
    fitted = fit_with_tuning(spec.load(), spec, _context(4, dict(spec.defaults, tune=True), []))
    tuned = fitted.info["tuned"]
    best = max(r["cv_accuracy"] for r in tuned["cv_accuracy"])
    assert [r["values"]["C"] for r in tuned["cv_accuracy"]] == list(spec.tunable["C"])
    chosen = next(r for r in tuned["cv_accuracy"] if r["values"] == tuned["chosen"])
    assert chosen["cv_accuracy"] == best
    assert fitted.info["C"] == tuned["chosen"]["C"] and "tuned_C" not in fitted.info


def test_bench_tune_refuses_a_strategy_without_tunables():
    result = run_cli("tune", "prototype", "--task", "digits", "--encoder", "pixels")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "'prototype' declares no tunable options" in result.stderr


def test_bench_tune_runs_on_a_tiny_task_and_writes_its_choice(tmp_path):
    """Guards: `bench tune` chooses on a carve-out of the pool (outside every published budget),
    never on test, and writes the scores and the choice."""
    out = tmp_path / "knn.json"
    result = run_cli("tune", "knn", "--task", "digits", "--encoder", "pixels", "--option", "knn_k=1,5",
                     "--budgets", "2", "--seeds", "1", "--published-seeds", "1", "--published-budgets", "2",
                     "--validation", "200", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["strategy"] == "knn" and report["option_grid"] == {"knn_k": [1, 5]}
    means = {json.dumps(r["values"]): r["mean"] for r in report["candidates"]}
    assert report["chosen"] == json.loads(max(means, key=lambda k: means[k]))
    carve = report["carve_out"]
    assert carve["validation_items"] == 200 and carve["excluded_published"] > 0
    assert "knn_k" in result.stdout


def test_tune_reaches_cells_through_the_harness(tmp_path, with_plugins, monkeypatch):
    """--tune is wired into the runner: the record says what was chosen by cross-validation."""
    from bench.plugins import load_plugins
    from bench.run.plan import RunConfig
    from bench.run.runner import Runner

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    cfg = RunConfig(encoders=["toy-cnn"], strategies=["linear-probe"], tasks=["toy-blobs"], budgets="5", seeds=1,
                    out=tmp_path / "run", device="cpu", progress=False, forgetting="off",
                    options=[(None, "tune", True)])
    (rec,) = Runner(cfg, load_plugins()).run()
    tuned = rec["info"]["tuned"]
    assert rec["status"] == "ok" and set(tuned["chosen"]) == {"C"}
    table = tuned["cv_accuracy"]
    assert [row["values"]["C"] for row in table] == list(load_plugins().strategies.get("linear-probe").tunable["C"])
    best = max(row["cv_accuracy"] for row in table)
    assert tuned["chosen"] in [row["values"] for row in table if row["cv_accuracy"] == best]
    assert tuned["folds"] >= 2


def test_tune_for_a_strategy_with_nothing_to_tune_stops_the_run(tmp_path, with_plugins):
    from bench.errors import UserError
    from bench.plugins import load_plugins
    from bench.run.plan import RunConfig
    from bench.run.runner import Runner

    cfg = RunConfig(encoders=["toy-cnn"], strategies=["prototype"], tasks=["toy-blobs"], budgets="5", seeds=1,
                    out=tmp_path / "run", device="cpu", progress=False, options=[(None, "tune", True)])
    with pytest.raises(UserError, match="prototype"):
        Runner(cfg, load_plugins())
