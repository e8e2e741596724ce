"""Label-free target criteria (IWV, DEV) and ``bench tune --criterion`` (issue 11, model selection).

Before bench.domain.select, ``bench tune`` scored domain-adaptation candidates by source validation
accuracy only: a candidate that is better on the source and worse on the target always won.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import bench
from bench.domain.select import density_ratios, dev_risk, effective, iwv_risk, score, weight_summary
from bench.domain.selection import CRITERIA, SHIFTED_DEFAULT, resolve_criterion
from bench.errors import UserError
from bench.specs import TaskSpec
from bench.tasks import ArraySplit, TaskData
from bench.views import ProtocolError


def test_uniform_weights_give_plain_validation_accuracy():
    """Guards: with no shift (w = 1) both criteria must reduce to the ordinary validation score."""
    correct = np.array([1, 1, 0, 1, 0, 1, 1, 1], dtype=bool)
    ones = np.ones(len(correct))
    assert score("source", correct, None) == 0.75
    assert score("iwv", correct, ones) == pytest.approx(0.75)
    assert score("dev", correct, ones) == pytest.approx(0.75)


def test_iwv_and_dev_by_hand():
    """Hand-computed: l = [0,1,0,1], w = [1,2,1,2]: IWV = 4/6; DEV: Cov(wl, w) = 2/3, Var(w) = 1/3,
    eta = -2, mean(wl) = 1, mean(w) = 1.5 -> 1 - 2 * 0.5 = 0 (the loss is exactly 2(w - 1)/w...
    zero where w = 1). l = [0,1,1,0]: the loss is uncorrelated with w, eta = -0.5, DEV = 0.75 -
    0.25 = 0.5 = IWV = the plain mean."""
    w = np.array([1.0, 2.0, 1.0, 2.0])
    assert iwv_risk([0, 1, 0, 1], w) == pytest.approx(4 / 6)
    assert dev_risk([0, 1, 0, 1], w) == pytest.approx(0.0)
    assert iwv_risk([0, 1, 1, 0], w) == pytest.approx(0.5)
    assert dev_risk([0, 1, 1, 0], w) == pytest.approx(0.5)
    assert score("dev", np.array([1, 0, 0, 1], dtype=bool), w) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        iwv_risk([0, 1], [1.0])
    assert weight_summary(w) == {"mean": 1.5, "min": 1.0, "max": 2.0, "ess": 3.6, "n": 4}


def _planted(seed: int = 0, n_source: int = 600, n_target: int = 1500):
    """1-d covariate shift: source x ~ N(0, 1), target x ~ N(1.5, 1); features (x, 1) so the
    L2-normalised direction encodes x. True ratio: exp(1.5 x - 1.125)."""
    rng = np.random.default_rng(seed)
    xs, xt = rng.normal(0, 1, n_source), rng.normal(1.5, 1, n_target)
    feats = lambda x: np.stack([x, np.ones_like(x)], axis=1)  # noqa: E731
    return xs, xt, feats(xs), feats(xt)


def test_density_ratios_are_cross_fitted_estimates_of_the_true_ratio():
    """Guards: the weights follow p_t/p_s (rank correlation with the true ratio), average about 1
    on overlapping domains, are clipped, and do not depend on the order of calls."""
    xs, _, fs, ft = _planted()
    w = density_ratios(fs, ft, seed=0)
    true = np.exp(1.5 * xs - 1.125)
    assert np.corrcoef(np.argsort(np.argsort(w)), np.argsort(np.argsort(true)))[0, 1] > 0.95
    assert 0.7 < w.mean() < 1.3
    assert w.max() <= 20.0 and w.min() >= 1 / 20.0
    np.testing.assert_array_equal(w, density_ratios(fs, ft, seed=0))
    same = density_ratios(fs, fs.copy(), seed=0)  # no shift: weights about 1
    assert abs(np.median(same) - 1.0) < 0.2


def test_iwv_and_dev_recover_the_target_risk_under_a_planted_shift():
    """A model that errs where x > 1 is good on the source (16% error) and bad on the target (69%).
    Plain validation misses the target risk; IWV and DEV get within 0.12 of it and pick the model
    with uniform 30% errors, which is the better one on the target."""
    xs, xt, fs, ft = _planted()
    w = density_ratios(fs, ft, seed=0)
    rng = np.random.default_rng(1)
    edge_source, edge_target = xs <= 1.0, xt <= 1.0  # correct where x <= 1
    flat_source = rng.random(len(xs)) > 0.3
    target_risk = 1 - edge_target.mean()
    plain = 1 - score("source", edge_source, None)
    assert abs(plain - target_risk) > 0.4
    for criterion in ("iwv", "dev"):
        estimate = 1 - score(criterion, edge_source, w)
        assert abs(estimate - target_risk) < 0.12, (criterion, estimate, target_risk)
        assert score(criterion, flat_source, w) > score(criterion, edge_source, w)
    assert score("source", edge_source, None) > score("source", flat_source, None)


def test_dev_falls_back_to_iwv_when_the_source_does_not_cover_the_target():
    """Guards against DEV's extrapolation: ratios averaging 0.055 (measured on mnist5k->digits with a
    fine-tuned encoder) made DEV score a candidate 0.944 whose validation accuracy was 0.866. Below
    a mean of 0.2 the task is scored by IWV, and the reason is given; above it, DEV stays."""
    low, fine = np.full(10, 0.05), np.linspace(0.5, 1.5, 10)
    assert effective("dev", [fine]) == ("dev", None)
    used, why = effective("dev", [fine, low])
    assert used == "iwv" and "0.050" in why and "extrapolate" in why
    assert effective("iwv", [low])[0] == "iwv" and effective("source", [low]) == ("source", None)
    correct = np.array([1, 1, 1, 0] * 5, dtype=bool)
    w = np.where(np.arange(20) == 18, 0.3, 0.05)  # one target-like item, right: DEV extrapolates to no error
    assert score("dev", correct, w) == 1.0 and score("source", correct, None) == 0.75
    assert score("iwv", correct, w) == pytest.approx(0.8)  # 1 - 0.05 * 5 / (0.05 * 19 + 0.3)


def test_criterion_defaults_and_refusals():
    """dev is the default when every task is shifted, source otherwise; oracle and target criteria
    on an unshifted task are refused in one line."""
    assert resolve_criterion("auto", [True, True], ["a->b", "c->d"]) == SHIFTED_DEFAULT == "classami"  # the study's
    assert resolve_criterion(None, [True, False], ["a->b", "c"]) == "source"
    assert resolve_criterion("IWV", [True], ["a->b"]) == "iwv"
    with pytest.raises(UserError, match="target test labels"):
        resolve_criterion("oracle-target", [True], ["a->b"])
    with pytest.raises(UserError, match="'mystery' is unknown; use one of source, iwv, dev, devn, entropy, im, "
                       "bnm, classami, snd "):
        resolve_criterion("mystery", [True], ["a->b"])
    assert [resolve_criterion(c, [True], ["a->b"]) for c in CRITERIA] == list(CRITERIA)
    with pytest.raises(UserError, match="needs a shifted task.*digits"):
        resolve_criterion("dev", [False], ["digits"])


class _Hidden(ArraySplit):
    """A split whose labels raise: the target pool and target test of the task below."""

    @property
    def labels(self):  # type: ignore[override]
        raise AssertionError("target labels were read")

    @labels.setter
    def labels(self, value):
        pass

    def fingerprint(self) -> str:
        raise AssertionError("the target split's own fingerprint hashes labels")


def _sealed(shift, what):
    class Sealed:
        @staticmethod
        @bench.hookimpl
        def bench_register_tasks():
            def load(request):
                base = request.resolve("toy-blobs")
                pool = base.train.images(range(len(base.train)))
                target = _Hidden([f"t{i}" for i in range(len(pool))], shift(np.stack(pool)), [0] * len(pool))
                return TaskData(name=request.name, classes=base.classes, train=base.train, test=base.test,
                                target_train=target, target_test=target, source_domain="a", target_domain="b",
                                native_size=16)

            return [TaskSpec(name="toy-sealed", description=f"toy-blobs -> {what}, labels sealed", loader=load)]

    return Sealed


#: toy-blobs -> inverted images: kNN and a 2-step fine-tune predict one class on this target
SealedShift = _sealed(lambda x: 255 - x, "inverted")
#: toy-blobs -> mirrored images: kNN's target predictions stay spread over the classes
SealedMirror = _sealed(lambda x: x[:, :, ::-1].copy(), "mirrored")


def _tune_args(tmp_path, **over):
    args = dict(strategy="knn", task="toy-sealed", encoder="toy-cnn", option=["knn_k=1,5"], set_options=[],
                budgets="2", seeds=1, published_budgets="1", published_seeds=1, validation=20, device="cpu",
                resolution="auto", data_dir=None, criterion="auto", ratio_features="frozen",
                out=str(tmp_path / "report.json"))
    return argparse.Namespace(**{**args, **over})


def test_bench_tune_scores_a_shifted_task_by_dev_without_reading_target_labels(tmp_path, with_plugins, monkeypatch):
    """Guards: the target criterion runs end to end through the ordinary cell pipeline, the target
    pool's labels are never touched (they raise), and the report keeps both numbers per candidate."""
    from bench.cli.tune import cmd_tune
    from bench.plugins import load_plugins

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    plugins = load_plugins(extra=[("sealed", SealedMirror)])
    assert cmd_tune(_tune_args(tmp_path, criterion="dev"), plugins) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["criterion"] == "dev" and "deep embedded validation" in report["metric"]
    # where the target is separable from the source the task falls back to iwv and says why
    assert report["criterion_used"]["toy-sealed"] in ("dev", "iwv")
    assert all(row["veto"] is None for row in report["candidates"])
    if report["criterion_used"]["toy-sealed"] == "iwv":
        assert "extrapolate" in report["carve_out"]["density_ratio"]["note"]
    ratio = report["carve_out"]["density_ratio"]
    assert ratio["n"] == 20 and ratio["domain_C"] in (0.01, 0.1, 1.0, 10.0)
    for row in report["candidates"]:
        (acc,), (dev,) = row["source_scores"]["toy-sealed"], row["scores"]["toy-sealed"]
        assert 0.0 <= acc <= 1.0 and 0.0 <= dev <= 1.0
        assert row["source_mean"] == acc and row["mean"] == dev
    best = max(report["candidates"], key=lambda r: r["mean"])["mean"]
    assert report["chosen"] in [r["values"] for r in report["candidates"] if r["mean"] == best]
    source = _tune_args(tmp_path, criterion="source", out=str(tmp_path / "source.json"))
    assert cmd_tune(source, plugins) == 0
    plain = json.loads((tmp_path / "source.json").read_text())
    assert plain["criterion"] == "source" and plain["density_ratio"] is None
    assert [r["mean"] for r in plain["candidates"]] == [r["source_mean"] for r in report["candidates"]]


def test_bench_tune_refuses_oracle_and_target_criteria_on_unshifted_tasks(tmp_path, with_plugins, monkeypatch):
    from bench.cli.tune import cmd_tune
    from bench.plugins import load_plugins

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    plugins = load_plugins()
    with pytest.raises(UserError, match="target test labels"):
        cmd_tune(_tune_args(tmp_path, task="toy-blobs", criterion="oracle-target"), plugins)
    with pytest.raises(UserError, match="needs a shifted task"):
        cmd_tune(_tune_args(tmp_path, task="toy-blobs", criterion="iwv"), plugins)


def test_the_carved_target_pool_hides_its_labels():
    from bench.cli.tune import UnlabelledPool

    split = ArraySplit(["a", "b"], np.zeros((2, 4, 4, 1), dtype=np.uint8), [0, 1])
    pool = UnlabelledPool(split)
    with pytest.raises(ProtocolError):
        pool.labels  # noqa: B018
    other = UnlabelledPool(ArraySplit(["a", "b"], np.zeros((2, 4, 4, 1), dtype=np.uint8), [1, 1]))
    assert pool.fingerprint() == other.fingerprint() != split.fingerprint()  # labels play no part


def test_adapted_ratio_features_use_each_cells_fine_tuned_encoder(tmp_path, with_plugins, monkeypatch):
    """Guards: --ratio-features adapted re-encodes the validation set and the target sample with the
    candidate's own fitted encoder (DEV's "deep embedded" features): one ratio summary per cell,
    none shared through the frozen feature cache."""
    from bench.cli.tune import cmd_tune
    from bench.plugins import load_plugins

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    plugins = load_plugins(extra=[("sealed", SealedShift)])
    args = _tune_args(tmp_path, strategy="finetune", option=["lr=1e-3,1e-2"], criterion="iwv",
                      ratio_features="adapted", set_options=["min_steps=2", "max_steps=2"])
    with pytest.raises(UserError, match="every candidate that ran collapsed"):  # 2 steps: one class on the target
        cmd_tune(args, plugins)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["chosen"] is None and all(row["veto"] for row in report["candidates"])
    assert report["density_ratio"]["features"].startswith("adapted")
    assert "density_ratio" not in report["carve_out"]
    summaries = [row["density_ratio"]["toy-sealed"][0] for row in report["candidates"]]
    assert all(s["n"] == 20 for s in summaries)
    for row, summary in zip(report["candidates"], summaries, strict=True):
        assert 0.0 <= row["mean"] <= 1.0 and summary["min"] >= 0.05


def test_choose_defaults_has_a_dev_entry_per_da_method_over_three_shifts():
    """Guards: each DA method's default is chosen by dev over the same three shifts (a general
    default), and each entry parses as a `bench tune` command on its own (`--only dann`)."""
    import importlib.util
    from pathlib import Path

    from bench.cli import build_parser

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "choose_defaults.py"
    spec = importlib.util.spec_from_file_location("choose_defaults", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.measurements("blur", seeds=2)
    for method, knob in (("dann", "domain_weight"), ("cdan", "domain_weight"), ("mcc", "mcc_weight"),
                         ("coral", "coral_weight")):
        args = build_parser().parse_args(["tune", *table[method]])
        assert args.strategy == method and args.criterion == "dev" and args.seeds == 2
        assert args.task == "mnist5k->digits,digits->mnist5k,mnist5k@blur:3"
        assert [o.split("=")[0] for o in args.option] == [knob] and len(args.option[0].split(",")) == 3
    with pytest.raises(SystemExit, match="unknown"):
        module.run(Path("/nonexistent"), ["nope"])


class Planted:
    """A planted pair of candidates, given the true source labels by id (the test's oracle): with
    ``collapse`` it is right on every source validation item and predicts class 0 for every target
    item; without, it errs on every other validation item and spreads its target predictions evenly."""

    def __init__(self, truth):
        self.truth = truth

    def fit(self, ctx):
        from bench.strategies import Fitted

        k, collapse = ctx.num_classes, ctx.config["collapse"]

        def predict(split):
            if split.ids[0] not in self.truth:  # the sealed task's target items
                return np.zeros(len(split), dtype=int) if collapse else np.arange(len(split)) % k
            pred = np.array([self.truth[i] for i in split.ids])
            if not collapse:
                pred[::2] = (pred[::2] + 1) % k
            return pred

        return Fitted(predict=predict, trainable_params=0, total_params=0)


def _planted_strategy(truth):
    class PlantedCollapse:
        @staticmethod
        @bench.hookimpl
        def bench_register_strategies():
            from bench.specs import StrategySpec

            return [StrategySpec(name="planted", description="collapses on the target when asked", kind="features",
                                 loader=lambda: Planted(truth), defaults={"collapse": 0})]

    return PlantedCollapse


@pytest.mark.parametrize("criterion", ["source", "iwv"])
def test_the_collapse_guard_vetoes_a_candidate_the_criterion_prefers(tmp_path, with_plugins, monkeypatch, criterion):
    """Guards issue 21: source accuracy and IWV prefer the candidate whose target predictions are
    all one class; the guard (1.0 effective classes, at most half of 3) vetoes it, says so in the
    report, and the choice is the other one. Every validator's score and the histogram are kept."""
    from bench.cli.tune import cmd_tune
    from bench.loading import TaskLoader
    from bench.plugins import load_plugins

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    blobs = TaskLoader(load_plugins(), None).load("toy-blobs").train
    truth = dict(zip(blobs.ids, np.asarray(blobs.labels).tolist(), strict=True))
    plugins = load_plugins(extra=[("sealed", SealedShift), ("planted", _planted_strategy(truth))])
    args = _tune_args(tmp_path, strategy="planted", option=["collapse=1,0"], criterion=criterion)
    assert cmd_tune(args, plugins) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    bad, good = report["candidates"]
    assert bad["values"] == {"collapse": 1} and bad["mean"] > good["mean"]
    assert bad["source_mean"] == 1.0 and good["source_mean"] == 0.5
    (guard,) = bad["collapse_guard"]["toy-sealed"]
    k = len(guard["histogram"])
    assert guard["effective_classes"] == 1.0 and guard["collapsed"] and guard["histogram"][1:] == [0] * (k - 1)
    assert guard["threshold"] == k / 2 and bad["veto"].startswith("toy-sealed cell 0: target predictions collapsed")
    (kept,) = good["collapse_guard"]["toy-sealed"]
    assert not kept["collapsed"] and kept["effective_classes"] > k / 2 and good["veto"] is None
    assert report["chosen"] == {"collapse": 0}
    (scores,) = bad["validators"]["toy-sealed"]
    assert set(scores) == set(CRITERIA) and scores[criterion] == bad["mean"]
    assert scores["entropy"] == 0.0 and scores["im"] == 0.0 == good["validators"]["toy-sealed"][0]["entropy"]
    assert report["validators"]["higher_is_better"] is True and "at most 0.5 x classes" in report["collapse_guard"]


def test_an_unknown_criterion_is_one_line_naming_the_valid_ones(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "bench", "tune", "knn", "--task", "toy-blobs", "--encoder", "toy-cnn",
                          "--criterion", "mystery", "--out", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert "source, iwv, dev, devn, entropy, im, bnm, classami, snd" in out.stderr
