"""Re-run the measurements behind the measured defaults (docs/defaults.md), with ``bench tune``.

    OMP_NUM_THREADS=1 python benchmarks/choose_defaults.py [--out DIR] [--only finetune,coral]
    OMP_NUM_THREADS=1 python benchmarks/choose_defaults.py --only dann --seeds 2 --corruption blur

Each entry is one ``bench tune`` command: candidates are scored on a validation carve-out of the
training pool that holds no item of a published budget (see ``bench tune --help``). The domain-
adaptation entries (``dann``, ``cdan``, ``mcc``, ``coral``) choose their method's main weight over
three shifts at once, ``mnist5k->digits``, ``digits->mnist5k`` and one corruption shift at severity
3 (the mean over shifts: one general default, not one per shift), by DEV (deep embedded validation,
a label-free estimate of the target accuracy from the SOURCE validation losses and density ratios
to the unlabelled target pool; target labels are never read). The JSON reports land in ``--out``;
copy the chosen values into the registration modules and the scores into docs/defaults.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.cli import main

COMMON = ["--budgets", "10,20", "--seeds", "2", "--validation", "500", "--device", "cpu"]
#: the corruption of the third shift (``mnist5k@CORRUPTION:3``), the same for every method
CORRUPTION = "gaussian-noise"
#: each DA method's main knob and its candidates (a factor of ~3 around the TLL-style default)
DA_KNOBS = {"dann": "domain_weight=0.3,1,3", "cdan": "domain_weight=0.3,1,3", "mcc": "mcc_weight=0.3,1,3",
            "coral": "coral_weight=0.3,1,3"}


def da_entry(method: str, corruption: str, seeds: int) -> list[str]:
    """``bench tune`` arguments for a DA method's knob: three shifts, 10/class, ``--criterion dev``."""
    shifts = f"mnist5k->digits,digits->mnist5k,mnist5k@{corruption}:3"
    return [method, "--task", shifts, "--encoder", "efficientnet-lite0", "--option", DA_KNOBS[method],
            "--budgets", "10", "--seeds", str(seeds), "--validation", "500", "--device", "cpu", "--criterion", "dev"]


def measurements(corruption: str = CORRUPTION, seeds: int = 1) -> dict[str, list[str]]:
    """name -> the ``bench tune`` arguments that chose the default."""
    return {
        "finetune": ["finetune", "--task", "mnist5k", "--encoder", "efficientnet-lite0",
                     "--option", "lr=1e-4,3e-4,1e-3", *COMMON],
        **{method: da_entry(method, corruption, seeds) for method in DA_KNOBS},
    }


def run(out: Path, only: list[str], corruption: str = CORRUPTION, seeds: int = 1) -> None:
    table = measurements(corruption, seeds)
    unknown = [n for n in only if n not in table]
    if unknown:
        raise SystemExit(f"--only {','.join(unknown)}: unknown; choose from {', '.join(table)}")
    out.mkdir(parents=True, exist_ok=True)
    for name, argv in table.items():
        if only and name not in only:
            continue
        print("bench tune " + " ".join(repr(a) if ">" in a else a for a in argv), flush=True)
        code = main(["tune", *argv, "--out", str(out / f"{name}.json")])
        if code:
            raise SystemExit(code)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/defaults", help="folder for the JSON reports")
    parser.add_argument("--only", default="", help="comma-separated subset of " + ", ".join(measurements()))
    parser.add_argument("--corruption", default=CORRUPTION, help=f"the third shift's corruption (default {CORRUPTION})")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the DA entries (default 1)")
    args = parser.parse_args()
    run(Path(args.out), [n for n in args.only.split(",") if n], args.corruption, args.seeds)
