"""The validator study (issue 21): weighted Spearman and regret by hand, the study runner, the board section."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from bench.report import validator_study as vs
from bench.report.runs import Runs
from tests.test_da_select import _planted_strategy, _tune_args
from tests.test_sealed_context import SnoopPlugin


def test_weighted_spearman_by_hand():
    """scores 1, 2, 3 against accuracies 1, 3, 2: dense ranks / max 1/3, 2/3, 1 and 1/3, 1, 2/3;
    weights max(.)^2 = 1/9, 1, 1; weighted ranks 1/9, 10/9, 19/9 and 1/9, 19/9, 10/9; weighted
    Pearson -0.263158 / 0.736842 = -5/14. Plain Spearman says +0.5: the swap at the top costs more."""
    assert vs.weighted_spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(-5 / 14)
    assert spearmanr([1, 2, 3], [1, 3, 2]).statistic == pytest.approx(0.5)
    assert vs.weighted_spearman([0.1, 0.5, 0.9, 0.7], [0.2, 0.3, 0.8, 0.4]) == pytest.approx(1.0)
    assert vs.weighted_spearman([1, 1, 1], [1, 2, 3]) is None and vs.weighted_spearman([1], [1]) is None


def test_weighted_spearman_with_unit_weights_is_spearman_with_ties():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, 12).astype(float), rng.random(12)
    assert vs.weighted_spearman(x, y, power=0) == pytest.approx(spearmanr(x, y).statistic)


def test_regret_is_oracle_minus_the_selected_and_a_vetoed_candidate_is_skipped():
    scores, accs = [0.9, 0.8, 0.7], [0.3, 0.6, 0.5]
    assert vs.regret(scores, accs) == pytest.approx(0.3)  # picks candidate 0 (30%), oracle 60%
    assert vs.regret(scores, accs, [True, False, False]) == pytest.approx(0.0)
    assert vs.regret([0.5, 0.5, None], accs) == pytest.approx(0.3)  # ties: the first
    assert vs.regret(scores, accs, [True, True, True]) is None


def test_the_rule_is_lowest_mean_regret_with_ties_to_iwv():
    means = {n: {"mean_regret": 0.1, "mean_weighted_spearman": 0.0, "grids": 1} for n in vs.NAMES}
    means["source"]["mean_regret"] = 0.05
    assert vs.chosen_criterion(means) == "source"
    means["iwv"]["mean_regret"] = 0.05
    assert vs.chosen_criterion(means) == "iwv"
    means["snd"]["mean_regret"] = None  # unknown: out of the running
    assert vs.chosen_criterion({"snd": means["snd"]}) is None


def test_tune_study_records_target_accuracy_the_choice_ignores_and_the_board_shows_the_study(
        tmp_path, with_plugins, monkeypatch):
    """The planted collapse candidate (all class 0 on the target) is preferred by source accuracy
    and vetoed; --study keeps both candidates' target test accuracies, the choice is the one it
    is without --study, and the board's section computes regrets from the report."""
    from bench.cli.tune import cmd_tune
    from bench.loading import TaskLoader
    from bench.plugins import load_plugins
    from bench.report.sections import SECTIONS

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    blobs = TaskLoader(load_plugins(), None).load("toy-blobs")
    truth = dict(zip(blobs.train.ids, np.asarray(blobs.train.labels).tolist(), strict=True))
    plugins = load_plugins(extra=[("snoop", SnoopPlugin), ("planted", _planted_strategy(truth))])  # toy-shift
    folder = tmp_path / "run" / vs.STUDY_DIR
    folder.mkdir(parents=True)
    args = _tune_args(tmp_path, strategy="planted", task="toy-shift", option=["collapse=1,0"], criterion="source",
                      study=True, out=str(folder / "planted.json"))
    assert cmd_tune(args, plugins) == 0
    report = json.loads((folder / "planted.json").read_text())
    bad, good = report["candidates"]
    assert report["study"] and report["chosen"] == {"collapse": 0} and bad["veto"]
    k = blobs.num_classes
    labels = np.asarray(blobs.test.labels)
    (collapsed_acc,), (spread_acc,) = (row["study_target_accuracy"]["toy-shift"] for row in (bad, good))
    assert collapsed_acc == pytest.approx(float((labels == 0).mean()), abs=1e-6)
    assert spread_acc == pytest.approx(float((np.arange(len(labels)) % k == labels).mean()), abs=1e-6)
    board = {}
    for section in SECTIONS:
        board.update(section.collect(Runs(dirs=(tmp_path / "run",))))
    (grid,) = board["validator_study"]["grids"]
    oracle = max(collapsed_acc, spread_acc)
    assert grid["oracle"]["target_accuracy"] == pytest.approx(oracle)
    assert grid["validators"]["source"]["selected"] == {"collapse": 0}  # the veto holds in the study too
    assert grid["validators"]["source"]["regret"] == pytest.approx(oracle - spread_acc)
    titles = [t for t, _, _ in vs.tables(board)]
    assert any("toy-shift, planted" in t for t in titles) and "upper bound no default uses" in titles[-1]
    (_, _, rows), = [(t, h, r) for t, h, r in vs.tables(board) if "toy-shift" in t]
    assert rows[-1][0] == vs.ORACLE
    assert json.loads(json.dumps(board))["validator_study"]["rule"].startswith("lowest mean regret")


def test_a_grid_whose_candidates_all_collapsed_has_no_regret_but_keeps_its_correlation():
    def entry(vetoed, regret):
        return {"vetoed": vetoed, "validators": {n: {"regret": regret, "weighted_spearman": 0.5} for n in vs.NAMES}}

    means = vs.summary([entry([True, True], None), entry([False, True], 0.1)])
    assert means["iwv"]["mean_regret"] == pytest.approx(0.1) and means["iwv"]["all_vetoed"] == 1
    assert means["iwv"]["grids"] == 1 and means["iwv"]["mean_weighted_spearman"] == pytest.approx(0.5)
    assert vs.summary([entry([True], None)])["iwv"]["mean_regret"] is None
