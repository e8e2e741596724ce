"""Figures 1 and 2: the harness's hot loops against bare PyTorch on the same work.

1. Encode pass: ``bench.encoders.encode`` (decode, resize, normalise, forward, copy out) over 2,048
   mnist5k images with EfficientNet-Lite0 at 64 px, batch 256, against a bare ``module(x)`` loop
   under ``torch.inference_mode`` over the same batches, preprocessed beforehand (so the bare loop
   does strictly less: the ratio includes the preprocessing the harness must do).
2. Fine-tune step: ``bench.training.train`` (the finetune strategy's recipe: AdamW, backbone and
   head groups, warm-up + cosine, shift augmentation, frozen BatchNorm) on 200 images (20/class),
   batch 32, 100 steps, against a bare loop with the same model, batch, optimiser groups and
   scheduler, on the same preprocessed batches, without augmentation.

Each side runs three times, alternating, after one warm-up; the best time of each is used.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_hot_loops.py [--device cuda] [--precision bf16]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time
from typing import Any


def alternate(bare: Any, harness: Any, repeats: int = 3) -> tuple[float, float]:
    """Best seconds of ``bare()`` and ``harness()`` over ``repeats`` alternating runs, after one warm-up each."""
    bare()
    harness()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((bare, times[0]), (harness, times[1])):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return min(times[0]), min(times[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    import numpy as np
    import torch
    import torch.nn.functional as F

    if args.device == "cpu":
        torch.set_num_threads(1)
    from bench import accel
    from bench.encoders import encode, preprocess
    from bench.plugins import load_plugins
    from bench.recipes import RECIPE_DEFAULTS
    from bench.run.budgets import parse_budget, sample
    from bench.specs import EncoderRequest, TaskRequest
    from bench.training import Classifier, cosine_lambda, finetune_groups, num_steps, set_batchnorm_eval, train

    accel.configure(args.precision, args.compile)
    dev = args.device
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    plugins = load_plugins()
    task = plugins.tasks.get("mnist5k").load(TaskRequest(name="mnist5k"))
    enc = plugins.encoders.get("efficientnet-lite0").load(EncoderRequest(name="efficientnet-lite0", resolution=64))
    enc.module.to(dev).eval()
    n = min(args.images, len(task.train))

    # 1. encode pass
    batches = [preprocess(task.train.images(range(s, min(s + 256, n))), enc) for s in range(0, n, 256)]
    channels_last = accel.use_channels_last(enc.module, dev)

    def bare_encode() -> None:
        with torch.inference_mode(), accel.autocast(dev):
            for x in batches:
                enc.module(accel.to_device(x, dev, channels_last)).float().cpu()
        sync()

    def harness_encode() -> None:
        encode(enc, task.train.images, n, device=dev, batch_size=256)
        sync()

    enc_bare, enc_harness = alternate(bare_encode, harness_encode)

    # 2. fine-tune step
    pos = sample(np.asarray(task.train.labels), task.classes, "mnist5k", parse_budget("20"), 0)
    split = task.train.subset(list(pos))
    config = {**RECIPE_DEFAULTS, "max_steps": args.steps, "min_steps": args.steps, "layer_decay": None}
    steps = num_steps(len(split), config)
    x_all = preprocess(split.images(range(len(split))), enc)
    y_all = torch.as_tensor(np.asarray(split.labels), dtype=torch.long)
    base = Classifier(copy.deepcopy(enc.module), enc.feature_dim, len(task.classes))

    def harness_train() -> None:
        model = copy.deepcopy(base)
        train(model, finetune_groups(model, enc, config), enc, split, config, seed=0, device=dev)
        sync()

    def bare_train() -> None:
        model = copy.deepcopy(base).to(dev)
        cl = accel.use_channels_last(model, dev)
        fwd = accel.maybe_compile(model)
        groups = finetune_groups(model, enc, config)
        opt = torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(steps, round(steps * config["warmup_frac"])))
        gen = torch.Generator().manual_seed(0)
        order, cursor, b = torch.randperm(len(x_all), generator=gen), 0, config["batch_size"]
        for _ in range(steps):
            model.train()
            set_batchnorm_eval(model)
            if cursor + b > len(order):
                order, cursor = torch.randperm(len(x_all), generator=gen), 0
            idx, cursor = order[cursor : cursor + b], cursor + b
            with accel.autocast(dev):
                loss = F.cross_entropy(fwd(accel.to_device(x_all[idx], dev, cl)).float(), y_all[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss.item()  # the harness reads the loss each step (divergence check)
        sync()

    ft_bare, ft_harness = (t / steps for t in alternate(bare_train, harness_train))

    where = (torch.cuda.get_device_name() if dev.startswith("cuda") else
             f"CPU, {torch.get_num_threads()} thread(s)")
    print("## Hot loops against bare PyTorch (figures 1 and 2)\n")
    print(f"Command: `OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_hot_loops.py --device {dev} "
          f"--precision {args.precision}{' --compile' if args.compile else ''} --images {args.images} "
          f"--steps {args.steps}`. Machine: {platform.machine()} Linux, "
          f"{os.cpu_count()} CPU cores shared with other jobs; {where}; torch {torch.__version__}. Best of 3, "
          "alternating.\n")
    print("| figure | harness | bare PyTorch | ratio | target |\n|---|---|---|---|---|")
    print(f"| 1. encode pass, {n} images, batch 256 (images/s) | {n / enc_harness:.0f} | {n / enc_bare:.0f} "
          f"| {enc_bare / enc_harness:.3f} (throughput harness / bare) | >= 0.9 |")
    print(f"| 2. fine-tune step, batch {config['batch_size']}, {steps} steps (ms/step) | {1000 * ft_harness:.1f} "
          f"| {1000 * ft_bare:.1f} | {ft_harness / ft_bare:.3f} (time harness / bare) | <= 1.1 |")


if __name__ == "__main__":
    main()
