"""The leaderboard's domain-adaptation tables, oracle bound and source-only line (issue 11, reporting).

Before bench.report.domain the board showed a shifted task's target accuracy and transfer gap, but not
the paired gain over source-only, its interval, the critic's accuracy, nor a mark on a method that
makes the target worse than doing nothing.
"""

from __future__ import annotations

import pytest

from bench.report import domain as board_da
from bench.report.aggregate import aggregate
from bench.report.tables import render, tables

SHIFT = "a->b"


def rec(strategy, seed, target, baseline=None, budget="10/class", encoder="e", source=0.9, critic=None, config=None):
    metrics = {"accuracy": source, "target_accuracy": target, "transfer_gap": round(source - target, 6)}
    if baseline is not None:
        metrics.update(source_only_accuracy=0.9, source_only_target_accuracy=baseline,
                       paired_gain=round(target - baseline, 6))
    options = {"lr": 3e-4, **(config or {})}
    r = {"schema": 1, "encoder": encoder, "strategy": strategy, "task": SHIFT, "budget": budget, "seed": seed,
         "config_id": "default", "status": "ok", "error": None, "metrics": metrics, "trainable_share": 1.0,
         "trainable_params": 10, "total_params": 10, "wall_s": 1.0, "peak_mem_mb": 1.0, "config": options,
         "manifest_sha256": f"m{budget}{seed}", "encoder_info": {"resolution": 28}, "task_info": {"shifted": True},
         "info": {} if critic is None else {"final_domain_accuracy": critic}}
    return r


BASE = [0.40, 0.50, 0.45]


def records():
    out = []
    for s, b in enumerate(BASE):
        out.append(rec("dann", s, b + [0.10, 0.12, 0.08][s], b, critic=[0.6, 0.7, 0.8][s]))  # +10 points each seed
        out.append(rec("tent", s, b - [0.20, 0.22, 0.18][s], b))  # -20 points each seed
        out.append(rec("coral", s, b + [0.05, -0.05, 0.0][s], b))  # no clear gain
        out.append(rec("finetune", s, 0.3 + 0.01 * s))  # an older record: no paired fields
    return out


def _table(board, title_part):
    found = [(t, h, r) for t, h, r in tables(board) if title_part in t]
    assert found, [t for t, _, _ in tables(board)]
    return found[0]


def test_da_table_values_marks_and_old_records():
    """Hand-computed: dann's per-seed gains 10, 12, 8 points: mean 10.0, sd 2, CI t(.975, 2) * 2 / sqrt(3)
    = 4.97 -> '+10.0 ± 5.0', marked 'beats source-only'; tent's gains -20, -22, -18 -> '-20.0 ± 5.0',
    marked 'worse than source-only'; coral's +5, -5, 0 straddles zero: no mark. The source-only
    target accuracy is the baselines' mean 45.0; the critic 70.0 ± 24.8. dann's own target accuracy
    (50, 62, 53) has the much wider unpaired CI 15.5: why the gain is paired. finetune (no paired
    fields) still renders, its paired cells empty."""
    title, headers, rows = _table(aggregate(records()), "Domain adaptation, e, 10/class")
    assert headers == board_da.HEADERS
    by = {r[0]: dict(zip(headers, r, strict=True)) for r in rows}
    assert by["dann"]["gain over own (points)"] == "+10.0 ± 5.0" and by["dann"]["mark"].startswith(board_da.BETTER)
    assert by["dann"]["target acc %"] == "55.0 ± 15.5"  # unpaired: seeds differ a lot
    assert by["dann"]["own source-only target acc %"] == "45.0 ± 12.4"
    assert by["dann"]["critic acc %"] == "70.0 ± 24.8" and by["dann"]["seeds"] == "3"
    assert by["tent"]["gain over own (points)"] == "-20.0 ± 5.0" and by["tent"]["mark"].startswith(board_da.WORSE)
    assert by["coral"]["gain over own (points)"] == "+0.0 ± 12.4" and "own" not in by["coral"]["mark"]
    assert by["finetune"]["target acc %"] == "31.0 ± 2.5"
    assert by["finetune"]["gain over own (points)"] == by["finetune"]["own source-only target acc %"] == ""
    assert by["finetune"]["critic acc %"] == "" and by["finetune"]["mark"] == ""
    text = render(aggregate(records()))
    assert "Domain adaptation, e, 10/class" in text and board_da.WORSE in text


def test_one_seed_gives_no_verdict_and_unshifted_tasks_have_no_da_table():
    one = [r for r in records() if r["seed"] == 0]
    _, headers, rows = _table(aggregate(one), "Domain adaptation")
    by = {r[0]: dict(zip(headers, r, strict=True)) for r in rows}
    assert by["tent"]["gain over own (points)"] == "-20.0" and by["tent"]["mark"] == ""
    plain = [{**r, "task": "plain", "task_info": {"shifted": False}} for r in records()]
    assert not [t for t, _, _ in tables(aggregate(plain)) if "Domain adaptation" in t]
    only_old = [r for r in records() if r["strategy"] == "finetune"]  # nothing paired: no DA table at all
    assert not [t for t, _, _ in tables(aggregate(only_old)) if "Domain adaptation" in t]


def test_oracle_table_is_separate_labelled_and_picks_by_target_accuracy():
    """Three dann configurations ran: the oracle row names the one with the best target test
    accuracy (weight 3: 60.0), and the worst (weight 0.3: 40.0), in a table titled as an upper bound."""
    recs = []
    for w, t in ((0.3, 0.40), (1, 0.50), (3, 0.60)):
        recs += [rec("dann", s, t + 0.01 * s, 0.4, config={"domain_weight": w}) for s in range(2)]
    title, headers, rows = _table(aggregate(recs), "ORACLE UPPER BOUND")
    assert "never a default" in title and "TARGET TEST" in title
    [row] = rows
    got = dict(zip(headers, row, strict=True))
    assert got["method"] == "dann" and got["configs"] == "3"
    assert got["oracle config"] == "[domain_weight=3]" and got["target acc %"].startswith("60.5")
    assert got["worst config's target acc %"].startswith("40.5")
    assert not [t for t, _, _ in tables(aggregate(records())) if "ORACLE" in t]  # one config each: no oracle


def test_source_only_series_groups_rows_that_share_a_baseline():
    board = aggregate(records() + [rec("mcc", s, 0.5, 0.2) for s in range(3)])
    series = board_da.source_only_series(board["tasks"][SHIFT])
    shared = {tuple(sorted(m)): pts for _, m, pts in series}
    assert shared[("coral", "dann", "tent")]["10/class"] == pytest.approx(0.45)
    assert shared[("mcc",)]["10/class"] == pytest.approx(0.2)


def test_shift_plot_draws_the_source_only_line(tmp_path):
    """Guards: the target panel has the paired source-only line, and no DA method is drawn in a
    classic strategy's colour (the published plot drew tent in finetune's green)."""
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_hex

    from bench.report import plots

    drawn = {}
    real = plots._source_only

    def spy(ax, task):
        real(ax, task)
        drawn.update({line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()})

    plots._source_only = spy
    try:
        assert plots.shift_curves(aggregate(records()), tmp_path / "shift.png") is not None
    finally:
        plots._source_only = real
    assert drawn["e / source-only (paired: coral, dann, tent)"] == "#000000"
    assert drawn["e / tent"] != drawn["e / finetune"]
    assert len(set(drawn.values())) == len(drawn)


def test_a_critic_at_chance_without_a_gain_is_marked():
    """Guards against an adversarial method whose critic never learned (CDAN's ended at exactly 0.5
    in 8 of 9 cells on issue 11's grid) reading as a working method with a small gain: critic
    within a point of 0.5 and no gain beyond its CI -> marked; the same critic with a clear gain
    (the features may really be aligned) -> 'beats source-only'."""
    recs = []
    for s, b in enumerate(BASE):
        recs.append(rec("cdan", s, b + [0.01, -0.02, 0.02][s], b, critic=0.5))
        recs.append(rec("dann", s, b + [0.10, 0.12, 0.08][s], b, critic=[0.5, 0.505, 0.51][s]))
        recs.append(rec("mcc", s, b - [0.10, 0.0, 0.05][s], b, critic=[1.0, 0.99, 0.998][s]))
    _, headers, rows = _table(aggregate(recs), "Domain adaptation, e, 10/class")
    by = {r[0]: dict(zip(headers, r)) for r in rows}
    assert by["cdan"]["mark"] == board_da.IDLE_CRITIC and by["cdan"]["critic acc %"] == "50.0 ± 0.0"
    assert by["dann"]["mark"] == board_da.BETTER
    assert by["mcc"]["mark"].startswith(board_da.WON_CRITIC)  # a critic at 99.6%: the domains stayed apart
