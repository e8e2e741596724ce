"""``bench check`` and ``bench index``: contamination reports of tasks, and pretraining-corpus indexes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.cli.options import add_data_options, add_pretraining_index_option
from bench.contamination import (
    DETECTORS,
    NEAR_THRESHOLD,
    ContaminationReport,
    build_index,
    describe_pair,
    load_index,
    task_report,
)
from bench.loading import cache_root


def add_check_parsers(sub: Any) -> None:
    """``bench check TASK ...`` and ``bench index {build,info} ...``."""
    ck = sub.add_parser("check", help="contamination report of a task: duplicates between test and train")
    add_check_arguments(ck)
    ix = sub.add_parser("index", help="hash index of a pretraining corpus: build FOLDER -o FILE, info FILE")
    add_index_arguments(ix)


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bench check TASK [--json] [--contact-sheet PNG] [--pretraining-index FILE]``."""
    parser.add_argument("task", help="task name, e.g. digits, mnist5k, folder:PATH")
    parser.add_argument("--json", action="store_true", help="print the report (every flagged pair) as JSON")
    parser.add_argument("--contact-sheet", metavar="PNG", help="save example pairs side by side (needs matplotlib)")
    add_pretraining_index_option(parser)
    parser.add_argument("--near-threshold", type=int, default=NEAR_THRESHOLD,
                        help=f"largest pHash Hamming distance for near duplicates (default {NEAR_THRESHOLD}); the "
                        "radius used against each split shrinks with its size so that chance matches stay under "
                        "1%% per test image")
    parser.add_argument("--examples", type=int, default=8, help="example pairs to print per detector (default 8)")
    add_data_options(parser)
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="cache folder (default $BENCH_CACHE_DIR or ~/.cache/transfer-bench)")


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """``bench index build FOLDER -o FILE`` and ``bench index info FILE``."""
    sub = parser.add_subparsers(dest="index_command", required=True)
    b = sub.add_parser("build", help="hash every image under a folder into an index file (resumable)")
    b.add_argument("folder", help="folder of images (searched recursively)")
    b.add_argument("-o", "--output", required=True, metavar="FILE", help="index file to write or resume")
    b.add_argument("--workers", type=int, default=1, help="processes for decoding and hashing (default 1)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    i = sub.add_parser("info", help="summarise an index file")
    i.add_argument("file")


def _radius_text(t: dict[str, Any]) -> str:
    """The near-duplicate rule as used: the radius per reference split and its expected chance matches."""
    by_ref = t.get("near_hamming_by_reference") or {"train": t["near_hamming"]}
    chance = t.get("expected_chance_matches") or {}
    refs = ", ".join(f"{ref} <= {r}" + (f" ({chance[ref]:.2g} chance matches per image)" if ref in chance else "")
                     for ref, r in by_ref.items())
    confirm = (f"confirmed at thumbnail corr >= {t['near_correlation']} "
               f"(>= {t['confirm_correlation']} in crowded neighbourhoods)" if "near_correlation" in t
               else f"low-information matches confirmed at thumbnail corr >= {t['confirm_correlation']}")
    return f"near = pHash {refs}; {confirm}"


def format_report(report: ContaminationReport, examples: int = 8) -> str:
    """The text of ``bench check``: thresholds, counts per detector and split, example pairs."""
    lines = [f"contamination check: {report.task} "
             f"({', '.join(f'{k} {v}' for k, v in report.sizes.items())}); "
             f"{_radius_text(report.thresholds)}"]
    for split in ("test", "target_test"):
        if split not in report.sizes:
            continue
        r = report.rates(split)
        refs = list(r["by_reference"])
        lines.append(f"{split}: {r['n']} images, {report.low_information.get(split, 0):.0%} low-information")
        head = f"  {'detector':<10} {'vs ' + ', '.join(refs) if refs else 'vs other data':<28} {'within ' + split:>16}"
        lines.append(head)
        for d in DETECTORS:
            if d == "embedding" and not any(p.detector == "embedding" for p in report.pairs):
                continue
            lines.append(f"  {d:<10} {r[d + '_count']:>6} ({r[d + '_rate']:.2%}){'':<15} "
                         f"{r['within_' + d + '_count']:>6} ({r['within_' + d + '_rate']:.2%})")
        lines.append(f"  overlap (exact or near, removed from Clean): {r['overlap_count']} ({r['overlap_rate']:.2%})")
    if report.declared_overlap:
        lines.append(f"declared overlap: {', '.join(report.declared_overlap)}")
    for d in DETECTORS:
        ex = [p for p in report.pairs if p.detector == d][:examples]
        if ex:
            lines.append(f"examples ({d}):")
            lines += [describe_pair(p) for p in ex]
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    """Body of ``bench check``: print the report (text or JSON); optional contact sheet."""
    from bench.loading import TaskLoader
    from bench.plugins import load_plugins

    task = TaskLoader(load_plugins(), args.data_dir, bool(args.download)).load(args.task)
    cache = Path(args.cache_dir or cache_root())
    quiet = args.json
    report = task_report(task, cache, pretraining_indexes=list(args.pretraining_index or []),
                         progress=None if quiet else (lambda m: print(f"bench: {m}", file=sys.stderr)),
                         near_threshold=args.near_threshold)
    if quiet:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(format_report(report, args.examples))
    sheet = args.contact_sheet
    if sheet:
        from bench.cli.contact_sheet import contact_sheet

        n = contact_sheet(report, task, sheet)
        print(f"bench: contact sheet with {n} pairs written to {sheet}", file=sys.stderr)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    """Body of ``bench index build FOLDER -o FILE`` (and ``bench index info FILE``)."""
    if args.index_command == "info":
        idx = load_index(args.file)
        print(f"{args.file}: {len(idx)} images hashed from {idx.root or '?'}; "
              f"{int(idx.low_info.sum())} low-information")
        return 0
    counts = build_index(args.folder, args.output, progress=not args.no_progress, workers=args.workers)
    print(f"bench: {args.output}: {counts['hashed']} images hashed, {counts['skipped_existing']} already there, "
          f"{counts['unreadable']} unreadable", file=sys.stderr)
    return 0
