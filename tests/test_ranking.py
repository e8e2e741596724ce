"""Ranks, ties and label efficiency (bench.report.ranking) on the hand-computable fixture run.

Before issue 14 the board had no ranks (rows in alphabetical order), no tie marks, no area under
the learning curve and no "worth N labels": each test below fails on that code.
"""

from __future__ import annotations

import math

import pytest
from site_fixture import XSS, records

from bench.report import ranking
from bench.report.aggregate import aggregate


@pytest.fixture(scope="module")
def summary():
    board = aggregate(records())
    return board, ranking.summarise(board)


def test_holm_and_paired_t_values():
    """Guards the multiple-comparison correction and the paired test against textbook values."""
    assert ranking.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    a = {"0:m": {"accuracy": 0.56}, "1:m": {"accuracy": 0.55}, "2:m": {"accuracy": 0.54}}
    b = {"0:m": {"accuracy": 0.50}, "1:m": {"accuracy": 0.51}, "2:m": {"accuracy": 0.49}}
    # differences 0.06, 0.04, 0.05: t = 0.05 / (0.01 / sqrt 3) = 8.66 on 2 df
    assert ranking.paired_p(a, b, "accuracy") == pytest.approx(0.01307, abs=1e-4)
    assert ranking.paired_p(a, {"0:m": {"accuracy": 0.5}}, "accuracy") is None  # one shared pair: untested
    assert ranking.paired_p(a, {"9:m": {"accuracy": 0.5}, "8:m": {"accuracy": 0.5}}, "accuracy") is None


def test_rows_ranked_by_mean_with_ties_marked(summary):
    """Rows per task and budget best first; knn is within seed noise of finetune (tied), the probe is not."""
    _, s = summary
    ranks = s["tasks"]["mnist5k"]["ranks"]["1/class"]
    assert [e["row"] for e in ranks] == ["enc / finetune", "enc / knn", "enc / linear-probe", "enc / scratch",
                                         f"{XSS} / linear-probe"]
    assert [e["tied_best"] for e in ranks] == [True, True, False, False, False]
    assert ranks[2]["p_holm"] == pytest.approx(2 * 0.01307, abs=2e-4)  # Holm: 3rd smallest of 4 p-values, x (4 - 2)
    five = s["tasks"]["mnist5k"]["ranks"]["5/class"]
    assert [e["rank"] for e in five] == [1.0, 2.5, 2.5, 4.0, 5.0]  # knn and the probe share 70.0
    # shifted tasks rank on target accuracy
    assert s["tasks"]["shift-task"]["metric"] == "target_accuracy"
    assert [e["row"] for e in s["tasks"]["shift-task"]["ranks"]["5/class"]] == ["enc / linear-probe", "enc / finetune"]


def test_overall_ranking_compares_only_rows_covering_the_same_cells(summary):
    """mnist5k's 3 budgets x 5 rows (15) beat both tasks' 6 x 2 rows (12): shift-task is not compared."""
    _, s = summary
    o = s["overall"]
    assert o["cells"] == ["mnist5k 1/class", "mnist5k 5/class", "mnist5k 25/class"]
    assert o["not_compared"] == ["shift-task 1/class", "shift-task 5/class", "shift-task 25/class"]
    assert o["left_out"] == []
    assert [r["row"] for r in o["rows"]] == ["enc / finetune", "enc / knn", "enc / linear-probe", "enc / scratch",
                                            f"{XSS} / linear-probe"]
    assert [r["mean_rank"] for r in o["rows"]] == pytest.approx([1.0, 6.5 / 3, 8.5 / 3, 4.0, 5.0])
    # scratch and the plugin encoder are far from the rest: their rank never moves
    assert [r["rank_interval"] for r in o["rows"][3:]] == [(4.0, 4.0), (5.0, 5.0)]
    assert o["rows"][0]["top"] and o["rows"][0]["rank_interval"][0] == 1.0 and not o["rows"][3]["top"]


def test_label_efficiency_worth_n_labels_and_aulc(summary):
    """finetune at 1/class (55%) is worth 5 * 5^(1/2) = 11.2 scratch labels per class (scratch: 40% at 5,
    70% at 25, interpolated on log budget); at 25/class (90%) scratch never gets there."""
    _, s = summary
    eff = {e["row"]: e for e in s["tasks"]["mnist5k"]["efficiency"]}
    ft = eff["enc / finetune"]["worth"]
    assert ft["1/class"]["scratch"] == {"kind": "equal", "labels": pytest.approx(5 * math.sqrt(5))}
    assert ft["25/class"]["scratch"] == {"kind": "more_than", "labels": 25.0}
    assert ranking.worth_text(ft["25/class"]["scratch"]) == "more than measured (> 25)"
    assert eff["enc / linear-probe"]["worth"]["1/class"]["scratch"]["labels"] == pytest.approx(5 * 5 ** (1 / 3))
    assert "linear-probe" not in eff["enc / linear-probe"]["worth"]["1/class"]  # not against itself
    assert eff[f"{XSS} / linear-probe"]["worth"]["1/class"]["scratch"]["kind"] == "none"  # no scratch of that encoder
    # AULC: trapezoids on log x, normalised by the log range: (55+75)/2 * ln5 + (75+90)/2 * ln5, / ln25
    assert eff["enc / finetune"]["aulc"] == pytest.approx(((0.55 + 0.75) / 2 + (0.75 + 0.90) / 2) / 2)
    assert ranking.labels_to_reach([(1, 0.5), (5, 0.7)], 0.4) == {"kind": "at_most", "labels": 1}


def test_labels_per_class_for_total_budgets():
    """An nN budget sits on the curve at its labelled items over the classes (10 here: 10 labels at 1/class)."""
    recs = records()
    extra = [dict(r, budget="n100", cell_id=r["cell_id"] + "n", n_labelled=100, manifest_sha256="n100")
             for r in recs if r["task"] == "mnist5k" and r["budget"] == "1/class"]
    board = aggregate(recs + extra)
    task = board["tasks"]["mnist5k"]
    row = task["rows"][0]
    assert ranking.labels_per_class(task, "n100", row["budgets"]["n100"]) == pytest.approx(10.0)
