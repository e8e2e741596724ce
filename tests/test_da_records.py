"""What a DA record says about itself: its own step rule's cap, and the collapse guard's flags."""

from __future__ import annotations

import numpy as np

from bench.domain.recipe import DOMAIN_DEFAULTS, DomainRecipe, domain_steps, profile_options, step_rule
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


def _through_the_cli(strategy: str, defaults: dict) -> dict:
    """The config a ``bench run`` with the paper profile's ``--set`` options gives ``strategy``."""
    from bench.cli import build_parser
    from bench.cli.run import run_config_from_args
    from bench.run.plan import strategy_config
    from bench.specs import StrategySpec

    argv = ["run", *" ".join(profile_options(strategy, defaults)).split()]
    cfg = run_config_from_args(build_parser().parse_args(argv))
    return strategy_config(StrategySpec(name=strategy, description="", loader="x:y", defaults=defaults), cfg.options)


def test_the_paper_profile_resolves_to_tll_scale_for_dann_and_cdan_and_a_few_steps_run():
    from bench_plugins.strategies.cdan import CDAN_DEFAULTS
    from bench_plugins.strategies.dann import DANN_DEFAULTS

    for name, defaults in (("dann", DANN_DEFAULTS), ("cdan", CDAN_DEFAULTS)):
        config = _through_the_cli(name, defaults)
        r = DomainRecipe.of(config)
        assert (r.min_steps, r.max_steps, r.batch_size, r.optimizer, r.schedule) == (20000, 20000, 32, "sgd", "anneal")
        assert (r.lr, r.lr * r.head_lr_mult, r.weight_decay, r.critic_optimizer) == (1e-3, 1e-2, 1e-3, "shared")
        assert config["domain_weight"] == 1.0 and r.lr * r.domain_lr_mult == 1e-2
        assert step_rule(4000, r) == (20000, 20000, False)  # 20 x 1,000 iterations, not capped
    # a few steps of the profile on a tiny BatchNorm model (the DA loop tests'); their FAST keys shrink the steps
    from bench_plugins.strategies._dann import Dann
    from tests.test_da_methods import _ctx, _splits

    fitted = Dann().fit(_ctx(_through_the_cli("dann", DANN_DEFAULTS), *_splits()))
    # the rule wants ceil(2 x 40 / 8) = 10 steps of the 40-image pool; FAST caps them at 3
    assert (fitted.info["steps"], fitted.info["steps_wanted"], fitted.info["capped"]) == (3, 10, True)
    assert fitted.baseline is not None
