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
    (summary_title, _, _), (_, heads, (row,)), (_, _, (pick,)) = vs.tables(board)
    assert "upper bound no default uses" in summary_title
    assert row[:3] == ["toy-shift", "planted (toy-cnn)", "2 (1 vetoed)"] and row[3] == f"{100 * oracle:.1f}"
    assert row[heads.index("source")].endswith(f" / {100 * (oracle - spread_acc):.1f}")
    assert pick[:2] == ["toy-shift", "planted (toy-cnn)"]
    assert pick[-2:] == [f"collapse={int(collapsed_acc >= spread_acc)}", f"{100 * oracle:.1f}"]
    assert json.loads(json.dumps(board))["validator_study"]["rule"].startswith("lowest mean regret")


def test_a_grid_whose_candidates_all_collapsed_has_no_regret_but_keeps_its_correlation():
    def entry(vetoed, regret):
        return {"vetoed": vetoed, "validators": {n: {"regret": regret, "weighted_spearman": 0.5} for n in vs.NAMES}}

    means = vs.summary([entry([True, True], None), entry([False, True], 0.1)])
    assert means["iwv"]["mean_regret"] == pytest.approx(0.1) and means["iwv"]["all_vetoed"] == 1
    assert means["iwv"]["grids"] == 1 and means["iwv"]["mean_weighted_spearman"] == pytest.approx(0.5)
    assert vs.summary([entry([True], None)])["iwv"]["mean_regret"] is None


def _report(strategy, task, accs, scores, vetoed=None):
    """A study report of one grid: candidates ``w`` = 0, 1, ... with target accuracies ``accs`` and,
    per validator, ``scores[name]`` (other validators score every candidate 0)."""
    vetoed = vetoed or [False] * len(accs)
    return {"strategy": strategy, "encoder": "enc", "tasks": [task], "study": "note", "candidates": [
        {"values": {"w": i}, "study_target_accuracy": {task: [a]},
         "validators": {task: [{n: scores.get(n, [0.0] * len(accs))[i] for n in vs.NAMES}]},
         "collapse_guard": {task: [{"collapsed": bad}]}} for i, (a, bad) in enumerate(zip(accs, vetoed, strict=True))]}


def test_many_grids_render_as_three_tables_with_hand_values():
    """Four grids give the summary, one row per grid (sorted by task, strategy) of weighted Spearman /
    regret, and one row per grid of what the chosen criterion and iwv select; a grid whose candidates
    all collapsed shows no regret and selects nothing."""
    reports = [_report("m1", "b->c", [0.5, 0.7, 0.6], {"iwv": [3, 2, 1], "snd": [1, 3, 2]}),
               _report("m2", "a->b", [0.4, 0.2], {"iwv": [1, 2], "snd": [2, 1]}),
               _report("m1", "a->b", [0.3, 0.3], {}, vetoed=[True, True]),
               _report("m3", "a->b", [0.1, 0.9], {"iwv": [0, 1], "snd": [0, 1]}, vetoed=[False, True])]
    found = vs.study(reports)
    # m3's oracle (90%) collapsed: the oracle is the best candidate, vetoed or not, so both regret 0.8 there
    assert found["summary"]["snd"]["mean_regret"] == pytest.approx((0 + 0 + 0.8) / 3)
    assert found["summary"]["iwv"]["mean_regret"] == pytest.approx((0.2 + 0.2 + 0.8) / 3)
    assert found["chosen"] == "snd"  # iwv loses by regret, and snd comes before none tied with it
    (title, _, summary), (_, heads, per_grid), (_, pick_heads, picks) = vs.tables({"validator_study": found})
    assert "4 grid(s)" in title and [r[0] for r in summary] == list(vs.NAMES)
    assert [r[4] for r in summary if r[4]] == ["chosen"] and summary[vs.NAMES.index("snd")][4] == "chosen"
    assert [r[:3] for r in per_grid] == [["a->b", "m1 (enc)", "2 (2 vetoed)"], ["a->b", "m2 (enc)", "2"],
                                         ["a->b", "m3 (enc)", "2 (1 vetoed)"], ["b->c", "m1 (enc)", "3"]]
    iwv, snd = heads.index("iwv"), heads.index("snd")
    assert per_grid[0][iwv] == "- / -" and per_grid[1][iwv] == "-1.00 / 20.0" and per_grid[1][snd] == "+1.00 / 0.0"
    # iwv 3, 2, 1 against 50, 70, 60%: weights 1, 1, 4/9; weighted ranks 22/9, 13/9, 4/9 and 1, 22/9, 13/9
    assert per_grid[3][3] == "70.0" and per_grid[3][iwv] == "-0.48 / 20.0"
    assert pick_heads[2:6] == ["selected by snd (chosen)", "snd regret (points)", "selected by iwv",
                               "iwv regret (points)"]
    assert picks[0][2:] == ["nothing (all vetoed)", "-", "nothing (all vetoed)", "-", "w=0", "30.0"]
    assert picks[2][2:] == ["w=0", "80.0", "w=0", "80.0", "w=1", "90.0"]
    assert picks[3][2:] == ["w=1", "0.0", "w=0", "20.0", "w=1", "70.0"]
