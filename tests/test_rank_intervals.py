"""Rank intervals from a paired bootstrap over seeds and tasks, the top group, and the comparable set (issue 23)."""

from __future__ import annotations

from site_fixture import record

from bench.report import intervals, ranking
from bench.report.aggregate import aggregate


def _recs(rows: dict[tuple[str, str], list[float]], task: str = "mnist5k", budgets=("1/class", "5/class")):
    return [record(task, enc, strat, b, seed, acc) for (enc, strat), accs in rows.items()
            for b in budgets for seed, acc in enumerate(accs)]


def test_identical_rows_share_the_top_and_a_distant_row_never_moves():
    board = aggregate(_recs({("a", "finetune"): [0.5, 0.6, 0.7], ("b", "finetune"): [0.5, 0.6, 0.7],
                             ("c", "finetune"): [0.1, 0.15, 0.2]}))
    ranks = ranking.rank_budget(board["tasks"]["mnist5k"], "1/class")
    assert {e["row"]: e["rank_interval"] for e in ranks} == {
        "a / finetune": (1.5, 1.5), "b / finetune": (1.5, 1.5), "c / finetune": (3.0, 3.0)}
    assert [e["top"] for e in ranks] == [True, True, False]


def test_rows_within_seed_noise_are_both_in_the_top_group_and_intervals_are_seeded():
    # a beats b on seeds 0 and 1, loses on seed 2: resampling seeds makes either first
    rows = {("a", "finetune"): [0.60, 0.60, 0.50], ("b", "finetune"): [0.55, 0.55, 0.70]}
    task = aggregate(_recs(rows))["tasks"]["mnist5k"]
    first = ranking.rank_budget(task, "1/class")
    assert [e["rank_interval"] for e in first] == [(1.0, 2.0), (1.0, 2.0)] and all(e["top"] for e in first)
    assert ranking.rank_budget(task, "1/class") == first  # the same generator seed every time


def test_overall_leaves_out_rows_missing_cells_and_bootstraps_tasks():
    recs = _recs({("a", "finetune"): [0.8, 0.8, 0.8], ("b", "finetune"): [0.5, 0.5, 0.5]})
    recs += _recs({("a", "finetune"): [0.8, 0.8, 0.8], ("b", "finetune"): [0.5, 0.5, 0.5]}, task="digits")
    recs += _recs({("c", "finetune"): [0.9, 0.9, 0.9]}, budgets=("1/class",))  # one cell of four
    o = ranking.overall(aggregate(recs))
    assert [r["row"] for r in o["rows"]] == ["a / finetune", "b / finetune"]
    assert o["left_out"] == [{"row": "c / finetune", "cells": 1,
                              "missing": ["digits 1/class", "digits 5/class", "mnist5k 5/class"]}]
    assert [r["rank_interval"] for r in o["rows"]] == [(1.0, 1.0), (2.0, 2.0)]
    assert [r["top"] for r in o["rows"]] == [True, False]


def test_comparable_maximises_rows_times_cells():
    x, y, z = ("t", "1"), ("t", "2"), ("u", "1")
    cover = {"r1": frozenset({x, y, z}), "r2": frozenset({x, y, z}), "r3": frozenset({x}), "r4": frozenset({x})}
    assert intervals.comparable(cover) == frozenset({x, y, z})  # 2 x 3 = 6 beats 4 x 1
    cover["r5"] = frozenset({x})
    cover["r6"] = frozenset({x})
    cover["r7"] = frozenset({x})
    assert intervals.comparable(cover) == frozenset({x})  # 7 x 1 = 7 beats 2 x 3
    assert intervals.interval_text((1.0, 2.5)) == "1–2.5" and intervals.interval_text((3.0, 3.0)) == "3"


def test_a_single_seed_has_no_interval():
    task = aggregate(_recs({("a", "finetune"): [0.5], ("b", "finetune"): [0.4]}))["tasks"]["mnist5k"]
    ranks = ranking.rank_budget(task, "1/class")
    assert [e["rank_interval"] for e in ranks] == [None, None] and [e["top"] for e in ranks] == [True, False]
