"""CPU time estimates: the images-per-second probe measures the forward it is given, and the line scales it."""

from __future__ import annotations

import time

import pytest
import torch

from bench.run import estimate


class Slow(torch.nn.Module):
    """A forward that takes 50 ms per call, whatever the batch."""

    def forward(self, x):
        time.sleep(0.05)
        return x.mean(dim=(2, 3))


def test_images_per_second_is_the_measured_rate_of_the_forward():
    module = Slow().train()
    rate = estimate.images_per_second(module, 8, n=4, repeats=2)
    assert rate == pytest.approx(4 / 0.05, rel=0.25)  # 4 images per 50 ms call; the warm-up is not counted
    assert module.training  # left as it was


def test_estimate_line_scales_the_rate_to_the_grids_images():
    line = estimate.estimate_line("clip", 10.0, 224, 1200)
    assert line.startswith("estimate: clip on the CPU encodes 10.0 images/s at 224 px")
    assert "over 1200 images takes about 2 min" in line
    assert "about 45 s" in estimate.estimate_line("x", 40.0, 64, 1800)
    assert "about 1.7 h" in estimate.estimate_line("x", 1.0, 224, 6000)
