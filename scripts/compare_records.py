"""Compare two run folders record by record: every cell's metrics must be identical (issue 20).

Usage: python scripts/compare_records.py BEFORE AFTER
Reads every results.jsonl and episodes.jsonl below each folder, pairs records by their cell
identity (``cell_id``, else encoder/strategy/task/budget/seed) and prints one line per record type:
how many pairs, how many identical metrics, and each difference. Exit 1 on any difference or an
unpaired record.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

IGNORED = {"wall_s", "peak_mem_mb", "encode_s", "fit_s", "predict_s"}  # timings differ run to run


def _key(rec: dict) -> str:
    return rec.get("cell_id") or "|".join(str(rec.get(k)) for k in ("encoder", "strategy", "task", "budget", "seed"))


def _records(root: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(root.rglob("*.jsonl")):
        if path.name not in ("results.jsonl", "episodes.jsonl"):
            continue
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[f"{path.parent.name}/{_key(rec)}"] = rec
    return out


def _kind(rec: dict) -> str:
    if rec.get("record_type") == "stream":
        return "stream"
    if rec.get("mode") == "episodes" or "episodes" in str(rec.get("budget", "")):
        return "episodes"
    return "domain adaptation" if "source_only_target_accuracy" in (rec.get("metrics") or {}) else "grid"


def _clean(metrics: dict) -> dict:
    return {k: v for k, v in (metrics or {}).items() if k not in IGNORED}


def main(before: str, after: str) -> int:
    a, b = _records(Path(before)), _records(Path(after))
    bad = 0
    for key in sorted(set(a) ^ set(b)):
        print(f"unpaired: {key} (only in {'BEFORE' if key in a else 'AFTER'})")
        bad += 1
    pairs, same = Counter(), Counter()
    for key in sorted(set(a) & set(b)):
        kind = _kind(a[key])
        pairs[kind] += 1
        ma, mb = _clean(a[key].get("metrics")), _clean(b[key].get("metrics"))
        if ma == mb and a[key].get("status") == b[key].get("status"):
            same[kind] += 1
            continue
        bad += 1
        diff = {k: (ma.get(k), mb.get(k)) for k in sorted(set(ma) | set(mb)) if ma.get(k) != mb.get(k)}
        print(f"differs: {key}: status {a[key].get('status')} -> {b[key].get('status')}; {diff}")
    for kind in sorted(pairs):
        print(f"{kind}: {same[kind]} of {pairs[kind]} records identical")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
