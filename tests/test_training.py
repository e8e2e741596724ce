"""The shared training loop: step schedule, parameter groups, BatchNorm handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.encoders import Encoder
from bench.recipes import RECIPE_DEFAULTS
from bench.tasks import ArraySplit
from bench.training import Classifier, layer_decay_groups, num_steps, recalibrate_batchnorm, reestimate_batchnorm, train


@pytest.mark.parametrize("n, steps", [(10, 50), (100, 50), (200, 70), (2000, 100)])
def test_step_schedule_is_step_based(n, steps):
    # max(epochs * ceil(n / 32), min_steps), capped at max_steps
    assert num_steps(n, RECIPE_DEFAULTS) == steps


def tiny_encoder() -> Encoder:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                           nn.Conv2d(4, 6, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Encoder(name="tiny", module=module, feature_dim=6, input_size=8, layer_groups=[["0", "1"], ["3"]])


def test_layer_decay_gives_each_group_its_rate():
    enc = tiny_encoder()
    model = Classifier(enc.module, 6, 3)
    groups = {g["name"]: g for g in layer_decay_groups(model, enc, lr=1.0, head_lr_mult=10.0, decay=0.5)}
    assert groups["layer0"]["lr"] == 0.5 and groups["layer1"]["lr"] == 1.0 and groups["head"]["lr"] == 10.0
    assert sum(p.numel() for g in groups.values() for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_recalibrated_batchnorm_holds_the_final_weights_statistics():
    enc = tiny_encoder()
    x = torch.randn(20, 3, 8, 8) * 3 + 1
    bn = enc.module[1]
    bn.running_mean.fill_(7.0)
    assert recalibrate_batchnorm(enc.module, x, enc, device="cpu")
    with torch.no_grad():
        pre = enc.module[0](x)
    torch.testing.assert_close(bn.running_mean, pre.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1  # restored


def test_frozen_batchnorm_statistics_do_not_move_during_training():
    enc = tiny_encoder()
    model = Classifier(enc.module, 6, 2)
    rng = np.random.default_rng(0)
    split = ArraySplit([str(i) for i in range(8)], rng.integers(0, 255, (8, 8, 8, 1), dtype=np.uint8), [0, 1] * 4)
    before = enc.module[1].running_mean.clone()
    w_before = enc.module[0].weight.detach().clone()
    info = train(model, [{"params": list(model.parameters()), "lr": 1e-2}], enc, split,
                 {**RECIPE_DEFAULTS, "min_steps": 5, "epochs": 1}, seed=0)
    assert info["steps"] == 5 and info["bn_recalibrated"] is False
    assert torch.equal(enc.module[1].running_mean, before)
    assert not torch.equal(enc.module[0].weight, w_before)


def test_reestimated_batchnorm_is_the_average_over_the_batches_given():
    enc = tiny_encoder()
    batches = [torch.randn(5, 3, 8, 8) * 2 + k for k in range(3)]
    bn = enc.module[1]
    bn.running_mean.fill_(7.0)
    enc.module.eval()
    assert reestimate_batchnorm(enc.module, iter(batches)) == 3
    with torch.no_grad():
        means = torch.stack([enc.module[0](x).mean(dim=(0, 2, 3)) for x in batches])
    torch.testing.assert_close(bn.running_mean, means.mean(0), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1 and enc.module.training  # momentum restored; left in train mode


def test_reestimating_a_model_without_batchnorm_reads_no_batch():
    model = nn.Sequential(nn.Linear(4, 2)).eval()

    def batches():
        raise AssertionError("no batch should be drawn")
        yield torch.zeros(1, 4)

    assert reestimate_batchnorm(model, batches()) == 0 and not model.training


def _encoder(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    return Encoder(name="id", module=torch.nn.Identity(), feature_dim=3 * 16 * 16, input_size=16, mean=mean,
                   std=std)


def test_shift_pads_black_in_pixel_space_before_normalisation():
    """Guards against padding with 0 after normalisation (mid-grey on black digits): a shifted
    all-black image stays all-black, i.e. equals normalise(black) everywhere."""
    from bench.encoders import preprocess
    from bench.training import augment

    enc = _encoder(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    black = preprocess([np.zeros((16, 16, 1), dtype=np.uint8)] * 8, enc)
    out = augment(black, "shift", torch.Generator().manual_seed(0), enc)
    assert torch.allclose(out, black)
    white = preprocess([np.full((16, 16, 1), 255, dtype=np.uint8)] * 8, enc)
    shifted = augment(white, "shift", torch.Generator().manual_seed(0), enc)
    uncovered = ~torch.isclose(shifted, white)
    assert uncovered.any()  # some borders were uncovered, and they are black
    assert torch.allclose(shifted[uncovered], black[uncovered])


def test_domain_adaptation_target_batches_are_augmented_like_source_batches():
    """Guards against DANN/CORAL target batches without the source's augmentation (the domain
    critic could tell the domains apart by their borders)."""
    from bench.adaptation import TargetBatches

    enc = _encoder()
    split = ArraySplit([f"t/{i}" for i in range(8)], np.full((8, 16, 16, 1), 255, dtype=np.uint8), np.zeros(8))
    plain = TargetBatches(split, enc, 8, seed=0).next()
    shifted = TargetBatches(split, enc, 8, seed=0, augment="shift").next()
    assert torch.all(plain == 1.0)
    assert (shifted == -1.0).any() and (shifted == 1.0).any()
    # that the DA loop passes the recipe's augmentation to its target batches: tests/test_da_methods.py


def test_step_done_reports_progress_and_refuses_a_non_finite_loss():
    """The one end-of-step check the training loops share (train, the DA loop, the continual
    strategies): the loss as a float, progress at steps 1, 21, ... and the last, and a divergence
    error naming the stage."""
    from bench.training import step_done

    seen: list[str] = []
    values = [step_done(torch.tensor(0.5), s, 25, seen.append) for s in range(25)]
    assert values == [0.5] * 25 and seen == ["step 1/25 loss 0.500", "step 21/25 loss 0.500", "step 25/25 loss 0.500"]
    with pytest.raises(FloatingPointError, match="training diverged on task 2 at step 3"):
        step_done(float("nan"), 3, 10, None, " on task 2")
