"""The leaderboard shows what a published number rests on: configurations are never averaged
together, missing and failed seeds are visible, head-start pairs only comparable scratch runs,
forgetting reads as points lost, training length and the max_steps cap are shown, and shifted
tasks get a target Clean table. Records here are written by hand (no training)."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.report import tables as leaderboard

RECIPE = {"epochs": 10, "min_steps": 50, "max_steps": 100, "batch_size": 32, "augment": "shift",
          "weight_decay": 0.01, "warmup_frac": 0.1}


def rec(strategy="finetune", seed=0, acc=0.5, status="ok", budget="5/class", task="t", encoder="e", **extra):
    r = {"schema": 1, "encoder": encoder, "strategy": strategy, "task": task, "budget": budget, "seed": seed,
         "config_id": "default", "status": status, "error": None,
         "metrics": {"accuracy": acc} if status == "ok" else {},
         "trainable_share": 1.0, "trainable_params": 10, "total_params": 10, "wall_s": 1.0, "peak_mem_mb": 1.0,
         "config": {**RECIPE, "lr": 3e-4}, "manifest_sha256": f"m{budget}{seed}", "encoder_info": {"resolution": 28}}
    r.update(extra)
    return r


def table_rows(text):
    """The github tables' rows as lists of stripped cells."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]


def rows_of(board, task="t"):
    return {row["strategy"]: row for row in board["tasks"][task]["rows"]}


def test_different_configurations_are_separate_rows_labelled_by_what_differs():
    """Old code keyed rows on (encoder, config_id) only: finetune at lr 1e-3 and at lr 3e-4 (a changed
    default, so both have config_id "default") were averaged into one cell."""
    old = [rec(seed=s, acc=0.9, config={**RECIPE, "lr": 1e-3}) for s in range(2)]
    new = [rec(seed=s, acc=0.5) for s in range(2)]
    board = leaderboard.aggregate(old + new)
    rows = rows_of(board)
    assert set(rows) == {"finetune [lr=0.001]", "finetune [lr=0.0003]"}
    assert rows["finetune [lr=0.001]"]["budgets"]["5/class"]["accuracy"]["mean"] == pytest.approx(0.9)
    assert rows["finetune [lr=0.0003]"]["budgets"]["5/class"]["accuracy"]["mean"] == pytest.approx(0.5)


def test_config_digest_and_summary_from_new_records_separate_rows():
    """Records with a ``config_digest`` group by it; the label comes from ``config_summary``."""
    a = [rec(seed=s, acc=0.8, config_digest="d1", config_summary={"resolution": 224, "protocol": 2}) for s in range(2)]
    b = [rec(seed=s, acc=0.6, config_digest="d2", config_summary={"resolution": 160, "protocol": 2}) for s in range(2)]
    rows = rows_of(leaderboard.aggregate(a + b))
    assert set(rows) == {"finetune [resolution=224]", "finetune [resolution=160]"}
    # fingerprints are named only when nothing else tells the configurations apart
    a = [{**r, "config_summary": {**r["config_summary"], "encoder.fingerprint": "f1"}} for r in a]
    b = [{**r, "config_summary": {**r["config_summary"], "encoder.fingerprint": "f2"}} for r in b]
    assert set(rows_of(leaderboard.aggregate(a + b))) == {"finetune [resolution=224]", "finetune [resolution=160]"}
    b = [{**r, "config_summary": {**r["config_summary"], "resolution": 224}} for r in b]
    assert set(rows_of(leaderboard.aggregate(a + b))) == {"finetune [fingerprint=f1]", "finetune [fingerprint=f2]"}


def test_leaderboard_over_two_runs_with_other_settings_keeps_them_apart(tmp_path, capsys):
    """`bench leaderboard a b` used to mix runs made at different resolutions into one mean."""
    for name, res, acc in (("a", 224, 0.8), ("b", 160, 0.4)):
        (tmp_path / name).mkdir()
        lines = [json.dumps(rec(seed=s, acc=acc, encoder_info={"resolution": res})) for s in range(2)]
        (tmp_path / name / "results.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["leaderboard", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert ["e", "finetune [resolution=224]", "80.0 ± 0.0"] in table_rows(out)
    assert ["e", "finetune [resolution=160]", "40.0 ± 0.0"] in table_rows(out)


def test_missing_and_failed_seeds_are_counted_marked_and_listed():
    """Old code showed the survivors' mean of a cell with a failed seed as if it were complete, and a
    lone seed as if it were a mean; failures were listed per (encoder, strategy) only, once."""
    records = [rec(seed=0, acc=0.7), rec(seed=1, acc=0.8),
               rec(seed=2, status="failed", reason="diverged", error="FloatingPointError: training diverged"),
               rec(strategy="knn", seed=0, acc=0.6)]
    board = leaderboard.aggregate(records)
    cell = rows_of(board)["finetune"]["budgets"]["5/class"]
    assert (cell["n"], cell["n_expected"]) == (2, 3)
    assert cell["failed"] == [{"seed": 2, "reason": "diverged", "error": "FloatingPointError: training diverged"}]
    assert board["failed"] == [{"task": "t", "encoder": "e", "strategy": "finetune", "budget": "5/class", "seed": 2,
                                "reason": "diverged", "error": "FloatingPointError: training diverged"}]
    text = leaderboard.render(board, "github")
    assert "75.0 ± 63.5 (2/3) †" in text
    assert ["e", "knn", "60.0 (1/3)"] in table_rows(text)  # a lone seed: no interval, its count
    assert ["e", "finetune", "5/class", "2", "diverged", "FloatingPointError: training diverged"] in table_rows(text)
    csv_text = leaderboard.render(board, "csv")
    assert "(2/3) †" in csv_text and "failed seeds" in csv_text and "diverged" in csv_text
    latex = leaderboard.render(board, "latex")
    assert "(1/3)" in latex and "diverged" in latex
    data = json.loads(leaderboard.render(board, "json"))
    assert data["tasks"]["t"]["rows"][0]["budgets"]["5/class"]["n_expected"] == 3


def test_a_cell_whose_seeds_all_failed_shows_failed():
    board = leaderboard.aggregate([rec(seed=0, acc=0.7), rec(strategy="knn", seed=0, status="failed",
                                                             error="ValueError: x")])
    text = leaderboard.render(board, "github")
    assert ["e", "knn", "failed (0/1) †"] in table_rows(text)
    assert ["e", "knn", "5/class", "0", "error", "ValueError: x"] in table_rows(text)


def test_old_failed_records_get_a_reason_from_their_error():
    board = leaderboard.aggregate([rec(status="failed", error="FloatingPointError: training diverged at step 3")])
    assert board["failed"][0]["reason"] == "diverged"


def test_head_start_pairs_only_same_manifest_and_recipe():
    """Old code paired with any scratch record of the same (encoder, task, budget, seed), even one
    trained with another max_steps or on another label manifest."""
    ft = [rec(seed=s, acc=0.8) for s in range(2)]
    same = [rec("scratch", seed=s, acc=0.5) for s in range(2)]
    board = leaderboard.aggregate(ft + same)
    hs = rows_of(board)["finetune"]["budgets"]["5/class"]["head_start"]
    assert hs["mean"] == pytest.approx(0.3) and hs["n"] == 2
    other_recipe = [rec("scratch", seed=s, acc=0.5, config={**RECIPE, "lr": 3e-4, "max_steps": 500}) for s in range(2)]
    assert "head_start" not in rows_of(leaderboard.aggregate(ft + other_recipe))["finetune"]["budgets"]["5/class"]
    other_manifest = [rec("scratch", seed=s, acc=0.5, manifest_sha256="other") for s in range(2)]
    assert "head_start" not in rows_of(leaderboard.aggregate(ft + other_manifest))["finetune"]["budgets"]["5/class"]
    # a probe has no recipe keys: it pairs when one scratch configuration matches, not when two do
    probe = [rec("linear-probe", seed=s, acc=0.7, config={"C": 1.0}) for s in range(2)]
    assert "head_start" in rows_of(leaderboard.aggregate(probe + same))["linear-probe"]["budgets"]["5/class"]
    two = rows_of(leaderboard.aggregate(probe + same + other_recipe))["linear-probe"]["budgets"]["5/class"]
    assert "head_start" not in two


def test_forgetting_reads_as_points_lost_on_the_reference_task():
    """Old records store forgetting = adapted - original (-0.02: two points lost); the board showed
    "-2.0" under "forgetting". Now: reference_drop = original - adapted, shown as +2.0 points lost."""
    old = rec(metrics={"accuracy": 0.9, "forgetting": -0.02}, forgetting={"reference_task": "digits"})
    new = rec(strategy="lora", metrics={"accuracy": 0.9, "reference_drop": 0.01},
              forgetting={"reference_task": "digits"})
    board = leaderboard.aggregate([old, new])
    rows = rows_of(board)
    assert rows["finetune"]["budgets"]["5/class"]["reference_drop"]["mean"] == pytest.approx(0.02)
    assert "forgetting" not in rows["finetune"]["budgets"]["5/class"]
    text = leaderboard.render(board, "github")
    assert "points lost on digits" in text and "+2.0" in text and "+1.0" in text


def test_steps_and_epochs_are_shown_and_the_max_steps_cap_warned():
    """Old tables showed neither; `full` on mnist5k trained for under one epoch without a word."""
    capped = rec(budget="full", n_labelled=5000, info={"steps": 100, "batch_size": 32})
    short = rec(strategy="lora", budget="full", n_labelled=20, info={"steps": 50, "batch_size": 20})
    board = leaderboard.aggregate([capped, short])
    text = leaderboard.render(board, "github")
    assert "100 / 0.6*" in text and "50 / 50.0 " in text
    assert board["warnings"] and "max_steps" in board["warnings"][0] and "1 record" in board["warnings"][0]
    assert "- warning: t: max_steps cut" in text


def test_shifted_tasks_get_a_target_clean_table():
    """Old code had a Clean table for the source test split only."""
    r = rec(task_info={"shifted": True}, metrics={"accuracy": 0.9, "target_accuracy": 0.4, "transfer_gap": 0.5,
                                                   "target_overlap_rate": 0.2, "target_accuracy_clean": 0.35})
    text = leaderboard.render(leaderboard.aggregate([r]), "github")
    assert "target-domain accuracy % on Clean target test items" in text and "| 35.0" in text
