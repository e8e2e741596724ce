"""Step cost of the domain-adaptation loop (docs/domain-adaptation.md, "Cost"): one training step of
EfficientNet-Lite0 at 64 px, fully trainable, on a source batch alone (the source-only baseline,
importance) and on a source + target batch in one forward (dann, cdan, mcc, coral), plus an eval
pass; the per-cell estimate for the issue-11 grid follows from them.

    OMP_NUM_THREADS=1 python benchmarks/bench_domain_step.py     # ~30 s on an idle core
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from bench.domain.loop import DomainModel
from bench.plugins import load_plugins
from bench.specs import EncoderRequest


def seconds_per_step(model: DomainModel, batch: int, repeats: int = 5) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = torch.randn(batch, 3, 64, 64), torch.randint(0, 10, (batch,))
    model.train()
    for i in range(repeats + 1):
        if i == 1:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    torch.set_num_threads(1)
    spec = load_plugins().encoders.resolve("efficientnet-lite0")[0]
    enc = spec.load(EncoderRequest(name="efficientnet-lite0", variant=None, pretrained=True, weights=None,
                                   resolution=64, native_size=28, device="cpu"))
    model = DomainModel(enc.module, enc.feature_dim, 10, 256)
    source, joint = seconds_per_step(model, 32), seconds_per_step(model, 64)
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        model(torch.randn(256, 3, 64, 64))
        eval256 = time.perf_counter() - start
    print(f"step, 32 source images:           {source:.3f} s")
    print(f"step, 32 source + 32 target:      {joint:.3f} s")
    print(f"eval pass, 256 images:            {eval256:.3f} s")
    score = 1539 / 256 * eval256  # mnist5k test 1,000 + digits test 539
    for steps in (80, 100):
        print(f"{steps} steps: method cell ~{steps * joint + score:.0f} s, baseline ~{steps * source + score:.0f} s, "
              f"importance ~{steps * source + score:.0f} s")


if __name__ == "__main__":
    main()
