"""What a DA record says about itself: its own step rule's cap, and the collapse guard's flags."""

from __future__ import annotations

import numpy as np

from bench.domain.recipe import DOMAIN_DEFAULTS, domain_steps, step_rule
from bench.report.aggregate import training_length
from bench.run.cell import collapse_guard, da_flags


def test_the_da_step_rule_says_how_many_steps_it_wanted_and_whether_max_steps_cut_them():
    cfg = {**DOMAIN_DEFAULTS, "min_steps": 80, "max_steps": 80, "target_epochs": 2.0, "batch_size": 32}
    assert step_rule(4000, cfg) == (80, 250, True)  # digits->mnist5k: 2 x 4000 / 32 = 250 wanted, 80 ran
    assert step_rule(1258, cfg) == (80, 80, False)  # ceil(2 x 1258 / 32) = 79, raised to min_steps 80
    assert step_rule(4000, {**cfg, "max_steps": 0}) == (250, 250, False)  # no cap
    assert domain_steps(4000, cfg) == 80


def test_the_report_reads_the_da_rule_not_the_labelled_epoch_rule():
    # 50/class: the labelled-epoch rule (10 epochs x ceil(500 / 32)) would want 160 > max_steps 80
    rec = {"n_labelled": 500, "config": {"epochs": 10, "max_steps": 80},
           "info": {"steps": 80, "batch_size": 32, "steps_wanted": 79, "capped": False}}
    assert training_length(rec)["capped"] is False
    rec["info"].update(steps_wanted=250, capped=True)
    assert training_length(rec)["capped"] is True


def test_collapse_guard_counts_target_predictions_and_flags_a_collapsed_record():
    one_class = collapse_guard(np.array([3] * 9 + [1]), 10)
    assert one_class["target_pred_hist"] == [0, 1, 0, 9, 0, 0, 0, 0, 0, 0]
    # exp(H(0.9, 0.1)) = exp(0.3251) = 1.3842
    assert abs(one_class["target_effective_classes"] - 1.3842) < 1e-4
    spread = collapse_guard(np.arange(10), 10)
    assert abs(spread["target_effective_classes"] - 10.0) < 1e-4
    assert da_flags({**one_class, "target_balanced_accuracy": 0.5}, 10) == ["collapsed"]
    assert da_flags({**spread, "target_balanced_accuracy": 0.15}, 10) == ["chance-level"]  # 1/10 + 0.05
    assert da_flags({**spread, "target_balanced_accuracy": 0.16}, 10) == []
