"""CPU time estimates before a run: a measured images-per-second probe of each large encoder, scaled to the grid.

A ViT-B on two CPU cores encodes a few images a second at 224 px, so a grid that looks small can
take an hour; ``bench run`` prints one line per large encoder before the first cell instead of
leaving the user to find out. The probe is a timed forward of the loaded encoder (after one
warm-up batch) on a few random images at the input size the run will use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: Encoders whose declared image tower has more parameters than this get an estimate (ViT-B, CLIP, ...).
LARGE_PARAMS = 50_000_000
#: Random images in the timed forward (and repeats of it).
PROBE_IMAGES, PROBE_REPEATS = 2, 1


def images_per_second(module: Any, input_size: int, device: str = "cpu", n: int = PROBE_IMAGES,
                      repeats: int = PROBE_REPEATS) -> float:
    """Images per second of ``module``'s eval-mode forward on ``n`` random images, measured."""
    import torch

    x = torch.randn(n, 3, input_size, input_size, device=device)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(x[:1])  # warm-up: lazy initialisation and allocator growth are not the rate
            start = time.perf_counter()
            for _ in range(repeats):
                module(x)
            elapsed = time.perf_counter() - start
    finally:
        module.train(was_training)
    return n * repeats / max(elapsed, 1e-9)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_line(encoder: str, rate: float, input_size: int, n_images: int) -> str:
    """The one line printed for a large encoder on the CPU."""
    return (f"estimate: {encoder} on the CPU encodes {rate:.1f} images/s at {input_size} px (measured on "
            f"{PROBE_IMAGES} random images), so its feature pass over {n_images} images takes about "
            f"{_duration(n_images / rate)}; training cells cost several times that per image "
            "(a GPU, a smaller variant or a lower --resolution is faster)")


def cpu_estimates(runner: Any, load_encoder: Callable[..., Any], log: Callable[[str], None]) -> list[str]:
    """Print (with ``log``) and return the estimate line of each large encoder of ``runner``'s grid
    when the run is on the CPU; nothing on a GPU. ``load_encoder(planner, name, task, device,
    pretrained)`` loads an encoder the way the run's cells do."""
    import torch

    device = runner.cfg.device
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return []
    lines = []
    tasks = [runner.load_task(name) for name in runner.planner.task_specs]
    for name in runner.encoder_specs:
        meta = runner.encoder_meta(name)
        if (meta.params or 0) <= LARGE_PARAMS or not tasks:
            continue
        encoder = load_encoder(runner.planner, name, tasks[0], "cpu", True)
        rate = images_per_second(encoder.module, int(encoder.input_size))
        n_images = sum(len(split) for task in tasks for split in task.splits().values())
        lines.append(estimate_line(name, rate, int(encoder.input_size), n_images))
        log(lines[-1])
    return lines
