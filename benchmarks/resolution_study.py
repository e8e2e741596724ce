"""Choose the default input side for CNNs on small images from the probe's curve over sides on a pool carve-out.

Issue 25: at ``--resolution auto`` CNNs run at 64 px on 28 px images, where the frozen ImageNet probe
ties raw pixels. This script measures, for each candidate side, the linear probe's accuracy on a
carve-out of mnist5k's training pool (never a test split) and the cost of the default run at that
side, and applies a rule fixed before it ran (this docstring was committed before the first run):

**The rule.** Candidates ``SIDES``. For each side ``r``: the carve-out accuracy ``A(r)`` is the mean,
over the default grid's budgets (1, 2, 5, 10, 20 per class) and seeds 0-2, of the default probe
(``bench.probe.FeatureScale`` + logistic regression at the strategy's default ``C``) fitted on a
budget drawn from 80% of the pool (stratified, seed 0) and scored on the other 20%. The projected
default-run time is ``T(r) = T64 * c(r) / c(64)``: ``T64`` the default run's wall time at 64 px
(``--t64`` seconds, measured by ``bench run --jobs 2``; the README's figure), ``c(r)`` the measured
time of one training step of the encoder at side ``r`` (batch 32, forward and backward, one torch
thread: the cells' protocol), which dominates the run (scratch and fine-tune cells). The default
side is the ``r`` with the highest ``A(r)`` among those with ``T(r) <= BUDGET_S`` (600 s, the issue's
"about 10 minutes on 2 cores"), ties within ``TIE`` (0.5 points) to the smaller (cheaper) side.
Test accuracy is never read.

    OMP_NUM_THREADS=1 python benchmarks/resolution_study.py --t64 400 [--encoder efficientnet-lite0] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

SIDES = (32, 48, 64, 96, 128, 160, 224)
BUDGETS = ("1", "2", "5", "10", "20")
SEEDS = (0, 1, 2)
BUDGET_S = 600.0
TIE = 0.005


def choose(rows: list[dict], budget_s: float = BUDGET_S, tie: float = TIE) -> int | None:
    """The rule: the side with the best carve-out accuracy among the affordable ones (ties to the smaller)."""
    affordable = sorted((r for r in rows if r["projected_s"] <= budget_s), key=lambda r: r["side"])
    if not affordable:
        return None
    best = max(r["carve_out_accuracy"] for r in affordable)
    return next(r["side"] for r in affordable if r["carve_out_accuracy"] >= best - tie)


def step_seconds(module, side: int, repeats: int = 3) -> float:
    """Median wall time of one SGD step (batch 32, forward + backward) at ``side`` px, one thread."""
    import torch

    module.train()
    opt = torch.optim.SGD(module.parameters(), lr=1e-3)
    x = torch.randn(32, 3, side, side).contiguous(memory_format=torch.channels_last)
    module.to(memory_format=torch.channels_last)
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        opt.zero_grad()
        module(x).float().pow(2).mean().backward()
        opt.step()
        times.append(time.perf_counter() - t)
    module.eval()
    return sorted(times[1:])[len(times[1:]) // 2]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--t64", type=float, required=True, help="the default run's wall seconds at 64 px (--jobs 2)")
    ap.add_argument("--encoder", default="efficientnet-lite0")
    ap.add_argument("--out", default=None, help="write the table and the choice as JSON here")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from bench.encoders import encode
    from bench.plugins import load_plugins
    from bench.probe import FeatureScale, fit_logistic_info
    from bench.run.budgets import parse_budget, pool_digest, sample
    from bench.specs import EncoderRequest, TaskRequest
    from bench.tasks import stratified_split

    torch.set_num_threads(1)
    plugins = load_plugins()
    C = float(plugins.strategies.get("linear-probe").defaults["C"])
    task = plugins.tasks.get("mnist5k").load(TaskRequest(name="mnist5k"))
    y_pool = np.asarray(task.train.labels)
    fit_pos, val_pos = stratified_split(y_pool, 0.2, seed=0)
    digest = pool_digest(y_pool[fit_pos], [task.train.ids[i] for i in fit_pos])
    draws = {(b, s): fit_pos[sample(y_pool[fit_pos], task.classes, "carve", parse_budget(b), s, pool=digest)]
             for b in BUDGETS for s in SEEDS}
    rows = []
    for side in SIDES:
        enc = plugins.encoders.get(args.encoder).load(EncoderRequest(name=args.encoder, resolution=side,
                                                                     native_size=28))
        t = time.perf_counter()
        x = encode(enc, task.train.images, len(task.train))
        encode_s = time.perf_counter() - t
        by_budget = {}
        for b in BUDGETS:
            acc = []
            for s in SEEDS:
                pos = draws[(b, s)]
                scale = FeatureScale.fit(x[pos])
                clf, _ = fit_logistic_info(scale(x[pos]), y_pool[pos], C, 2000, s)
                acc.append(float((clf.predict(scale(x[val_pos])) == y_pool[val_pos]).mean()))
            by_budget[b] = float(np.mean(acc))
        rows.append({"side": side, "carve_out_accuracy": float(np.mean(list(by_budget.values()))),
                     "by_budget": by_budget, "encode_pool_s": round(encode_s, 2),
                     "step_s": step_seconds(enc.module, side)})
        print(f"{side:4d} px: carve-out {100 * rows[-1]['carve_out_accuracy']:.1f}% "
              + " ".join(f"{b}/cl {100 * a:.1f}" for b, a in by_budget.items())
              + f"  encode pool {encode_s:.1f} s  step {rows[-1]['step_s'] * 1000:.0f} ms", flush=True)
    base = next(r["step_s"] for r in rows if r["side"] == 64)
    for r in rows:
        r["cost_vs_64"] = round(r["step_s"] / base, 3)
        r["projected_s"] = round(args.t64 * r["step_s"] / base, 1)
    chosen = choose(rows)
    print("side  carve-out  cost/64  projected default run")
    for r in rows:
        print(f"{r['side']:4d}  {100 * r['carve_out_accuracy']:8.1f}%  {r['cost_vs_64']:6.2f}x  "
              f"{r['projected_s']:7.0f} s"
              + ("  <- chosen" if r["side"] == chosen else ""))
    print(f"chosen side (rule: best carve-out accuracy with T(r) <= {BUDGET_S:.0f} s, ties within "
          f"{100 * TIE:.1f} points to the smaller): {chosen}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"encoder": args.encoder, "task": "mnist5k", "C": C, "t64_s": args.t64, "budget_s": BUDGET_S,
                       "tie": TIE, "rows": rows, "chosen": chosen}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
