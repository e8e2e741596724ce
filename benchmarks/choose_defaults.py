"""Re-run the measurements behind the measured defaults (docs/defaults.md), with ``bench tune``.

    OMP_NUM_THREADS=1 python benchmarks/choose_defaults.py [--out DIR] [--only finetune,coral]

Each entry is one ``bench tune`` command: candidates are scored on a validation carve-out of the
training pool that holds no item of a published budget (see ``bench tune --help``), or for domain
adaptation on the SOURCE pool of the shifted task (source labels only; target labels are never
read). The JSON reports land in ``--out``; copy the chosen values into the registration modules
and the scores into docs/defaults.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.cli import main

COMMON = ["--budgets", "10,20", "--seeds", "2", "--validation", "500", "--device", "cpu"]

#: name -> the ``bench tune`` arguments that chose the default
MEASUREMENTS = {
    "finetune": ["finetune", "--task", "mnist5k", "--encoder", "efficientnet-lite0",
                 "--option", "lr=1e-4,3e-4,1e-3", *COMMON],
    "coral": ["coral", "--task", "mnist5k->digits", "--encoder", "efficientnet-lite0",
              "--option", "coral_weight=0.3,1,3", *COMMON],
}


def run(out: Path, only: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, argv in MEASUREMENTS.items():
        if only and name not in only:
            continue
        print("bench tune " + " ".join(argv), flush=True)
        main(["tune", *argv, "--out", str(out / f"{name}.json")])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/defaults", help="folder for the JSON reports")
    parser.add_argument("--only", default="", help="comma-separated subset of " + ", ".join(MEASUREMENTS))
    args = parser.parse_args()
    run(Path(args.out), [n for n in args.only.split(",") if n])
