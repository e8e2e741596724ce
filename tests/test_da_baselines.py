"""One standard baseline for every DA row, and the baseline flags (issue 21).

Before bench.report.baselines a DA row was compared only with its own source-only baseline, which
differed by method and was at chance for tent and bn-adapt on mnist5k->digits; no record carried a
non-contamination flag, so the collapsed Adam-critic dann default ranked without a mark.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.multitask.spec import is_multitask_record as is_multitask
from bench.report import baselines
from bench.report.aggregate import aggregate
from bench.report.stream import is_stream
from bench.report.tables import tables

SHIFT = "a->b"
PUBLISHED = Path(__file__).resolve().parents[1] / "leaderboard" / "results.jsonl"


def rec(strategy, seed, target, baseline=None, source=0.9, own_source=0.9, manifest=None, k=10):
    metrics = {"accuracy": source, "target_accuracy": target, "target_balanced_accuracy": target}
    if baseline is not None:
        metrics.update(source_only_accuracy=own_source, source_only_target_accuracy=baseline,
                       paired_gain=round(target - baseline, 6))
    return {"encoder": "e", "strategy": strategy, "task": SHIFT, "budget": "10/class", "seed": seed,
            "n_labelled": 10 * k, "config_id": "default", "status": "ok", "metrics": metrics, "config": {},
            "manifest_sha256": manifest or f"m{seed}", "task_info": {"shifted": True}, "info": {}}


def _rows(recs, budget="10/class"):
    (_, headers, rows), *_ = [t for t in tables(aggregate(recs)) if f"Domain adaptation, e, {budget}" in t[0]]
    return {r[0]: dict(zip(headers, r, strict=True)) for r in rows}


def test_every_da_row_shows_its_paired_gain_over_the_standard_finetune_cell():
    """Hand values: dann's target 50, 62, 53 against finetune's 30, 31, 32 (same manifests and
    seeds): per-seed gains 20, 31, 21, mean 24.0, sd 6.08, CI t(.975, 2) * 6.08 / sqrt(3) = 15.1:
    'beats finetune'. Its own baseline (45, 55, 45): gains 5, 7, 8, mean 6.7, sd 1.53, CI 3.8:
    'beats own source-only'. A finetune record on another manifest is not a partner."""
    recs = [rec("finetune", s, t) for s, t in enumerate([0.30, 0.31, 0.32])]
    recs.append(rec("finetune", 0, 0.99, manifest="other"))
    recs += [rec("dann", s, t, b) for s, (t, b) in enumerate([(0.50, 0.45), (0.62, 0.55), (0.53, 0.45)])]
    by = _rows(recs)
    assert by["dann"]["standard baseline"] == "finetune"
    assert by["dann"]["gain over standard (points)"] == "+24.0 ± 15.1"
    assert by["dann"]["gain over own (points)"] == "+6.7 ± 3.8"
    assert by["dann"]["mark"] == "beats own source-only; beats finetune"
    cell = aggregate(recs)["tasks"][SHIFT]["rows"][0]["budgets"]["10/class"]
    assert cell["gain_over_finetune"]["mean"] == pytest.approx(0.24) and cell["gain_over_finetune"]["n"] == 3


def test_a_gain_over_its_own_baseline_can_be_a_loss_to_finetune():
    """tent at 20, 22, 21 over an own baseline of 10, 11, 9 (beats it by 11.0) but 10, 9, 11 points
    below finetune's 30, 31, 32: both marks, each naming its baseline; the own baseline is at or
    below 1/10 + 0.05 in every seed: 'baseline-at-chance'."""
    recs = [rec("finetune", s, t) for s, t in enumerate([0.30, 0.31, 0.32])]
    recs += [rec("tent", s, t, b) for s, (t, b) in enumerate([(0.20, 0.10), (0.22, 0.11), (0.21, 0.09)])]
    by = _rows(recs)
    assert by["tent"]["gain over standard (points)"] == "-10.0 ± 2.5"
    assert by["tent"]["mark"] == "beats own source-only; worse than finetune"
    assert by["tent"]["flags"] == "baseline-at-chance"
    board = aggregate(recs)
    tent = next(r for r in board["tasks"][SHIFT]["rows"] if r["strategy"] == "tent")
    assert tent["flags"] == ["baseline-at-chance"] and "baseline-at-chance" in board["tasks"][SHIFT]["flags"]


@pytest.mark.parametrize(("target", "own_source", "expected"), [
    (0.15, 0.9, ["chance-level"]),  # 1/10 + 0.05 exactly: at chance
    (0.16, 0.9, []),
    (0.5, 0.74, ["weak-source-model"]),  # 11 points below finetune's 0.85 on the SOURCE test
    (0.5, 0.75, []),  # exactly 10 points: not more than 10
])
def test_chance_and_weak_source_thresholds_are_the_fixed_ones(target, own_source, expected):
    recs = [rec("finetune", 0, 0.3, source=0.85), rec("mcc", 0, target, 0.3, own_source=own_source)]
    (out,) = [r for r in baselines.annotate(recs) if r["strategy"] == "mcc"]
    assert out["flags"] == expected
    assert baselines.chance_limit(10) == pytest.approx(0.15)


def test_feature_methods_pair_with_linear_probe_and_source_only_features():
    recs = [rec("linear-probe", 0, 0.20), rec("source-only-features", 0, 0.25, 0.25),
            rec("dann-features", 0, 0.40, 0.25)]
    out = {r["strategy"]: r["metrics"] for r in baselines.annotate(recs)}
    assert out["dann-features"]["gain_over_linear-probe"] == pytest.approx(0.20)
    assert out["dann-features"]["gain_over_source-only-features"] == pytest.approx(0.15)
    assert "gain_over_source-only-features" not in out["source-only-features"]  # never its own partner
    assert out["source-only-features"]["gain_over_linear-probe"] == pytest.approx(0.05)
    assert baselines.standard_baselines("dann") == ("finetune",)
    assert baselines.num_classes({"budget": "n100", "n_labelled": 100}) is None  # no K: no chance flags


def test_two_finetune_configurations_on_one_manifest_leave_the_record_unpaired():
    ft = [rec("finetune", 0, 0.3), {**rec("finetune", 0, 0.5), "config_digest": "lr-1e-3"}]
    (dann,) = [r for r in baselines.annotate([*ft, rec("dann", 0, 0.4, 0.3)]) if r["strategy"] == "dann"]
    assert "gain_over_finetune" not in dann["metrics"]


@pytest.mark.skipif(not PUBLISHED.exists(), reason="no published leaderboard")
def test_published_records_flag_the_collapsed_dann_and_the_feature_baselines_at_chance():
    """On the protocol-3 board: tent's and bn-adapt's own source model is a sane one (no
    baseline-at-chance, unlike protocol 2's 9.8%), dann on mnist5k->digits (8.4%) is chance-level
    and collapsed, mcc beats finetune, and the frozen-feature rows on digits->mnist5k, whose
    source-only head is at chance, carry baseline-at-chance."""
    records = [json.loads(line) for line in PUBLISHED.read_text().splitlines() if line.strip()]
    board = aggregate([r for r in records if not is_stream(r) and not is_multitask(r)])
    rows = {r["strategy"]: r for r in board["tasks"]["mnist5k->digits"]["rows"]}
    for name in ("tent", "bn-adapt", "mcc", "coral"):
        assert not {"baseline-at-chance", "weak-source-model"} & set(rows[name]["flags"]), name
    assert {"chance-level", "collapsed"} <= set(rows["dann"]["flags"])
    found = [t for t in tables(board) if "mnist5k->digits: Domain adaptation, efficientnet-lite0, 10/class" in t[0]]
    (_, headers, table), = found
    by = {r[0]: dict(zip(headers, r, strict=True)) for r in table}
    assert (by["mcc"]["target acc %"], by["mcc"]["gain over standard (points)"]) == ("75.3 ± 4.4", "+32.2 ± 30.5")
    assert by["mcc"]["mark"] == "beats own source-only; beats finetune"
    assert (by["dann"]["target acc %"], by["dann"]["flags"]) == ("8.4 ± 6.9", "chance-level, collapsed")
    # a frozen-feature method names both standard baselines: the linear probe and its own family's
    assert by["dann-features"]["standard baseline"] == "linear-probe, source-only-features"
    back = {r["strategy"]: r for r in board["tasks"]["digits->mnist5k"]["rows"]}
    for name in ("dann-features", "mcc-features", "coral-features"):
        assert "baseline-at-chance" in back[name]["flags"], name
    assert "chance-level" in back["source-only-features"]["flags"]
