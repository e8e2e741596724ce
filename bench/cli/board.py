"""``bench leaderboard``, ``bench publish``, ``bench validate`` and ``bench cache``: what is done with finished runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.errors import UserError


def add_board_parsers(sub: Any) -> None:
    """``bench leaderboard DIR...``, ``bench publish DIR... --site DIR`` and ``bench cache {info,clear}``."""
    lb = sub.add_parser("leaderboard", help="tables from one or more run folders")
    lb.add_argument("dirs", nargs="+", metavar="DIR")
    lb.add_argument("--format", default="github", help="github (default), html, csv, latex, json")

    pub = sub.add_parser("publish", help="validate and merge run folders into a static leaderboard site")
    pub.add_argument("dirs", nargs="+", metavar="DIR")
    pub.add_argument("--site", required=True, help="output folder, e.g. leaderboard/")
    pub.add_argument("--allow-invalid", action="store_true",
                     help="publish folders that fail `bench validate`, listing the problems on the page")
    pub.add_argument("--allow-dirty", action="store_true",
                     help="publish records from trees with uncommitted changes or without a source commit "
                          "(refused by default); they are flagged dirty / no-commit on every page that shows them")

    val = sub.add_parser("validate", help="check run folders against the record schema and the protocol; for a "
                         "published site (bench publish --site DIR), check that its numbers recompute from its files")
    val.add_argument("dirs", nargs="+", metavar="DIR")
    val.add_argument("--against", metavar="RESULTS", help="published results.jsonl (or folder) whose label "
                     "manifests a submission must match, e.g. leaderboard/")
    c = sub.add_parser("cache", help="inspect or clear the feature cache")
    c.add_argument("action", choices=["info", "clear"])


def check_format(fmt: str) -> None:
    """Fail with one line, before any work, when ``fmt`` is not a leaderboard format."""
    from bench.report import tables as leaderboard

    if fmt not in leaderboard.FORMATS:
        raise UserError(f"unknown format {fmt!r}; use one of {', '.join(leaderboard.FORMATS)}")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.report import tables as leaderboard
    from bench.report.runs import load

    check_format(args.format)
    board = leaderboard.aggregate(load(args.dirs))
    print(leaderboard.render(board, args.format), end="")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from bench.report.site import publish

    site = publish(args.dirs, Path(args.site), allow_invalid=args.allow_invalid, allow_dirty=args.allow_dirty)
    print(f"wrote {site / 'index.html'}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 when every run folder is fit to publish and every site recomputes, else 1 with one line per problem."""
    from bench.report import recompute, validate

    sites = [d for d in args.dirs if recompute.is_site(Path(d))]
    bad = 0
    for d in sites:
        lines, summary = recompute.report(Path(d))
        print("\n".join([*lines, summary]))
        bad += len(lines)
    runs = [d for d in args.dirs if d not in sites]
    if runs:
        reference = [r for _, r in validate.read(Path(args.against))] if args.against else None
        found = validate.problems(runs, reference)
        for p in found:
            print(p)
        print(f"{len(found)} problem(s) in {', '.join(runs)}" if found else f"ok: {', '.join(runs)}")
        bad += len(found)
    return 1 if bad else 0


def cmd_cache(args: argparse.Namespace) -> int:
    from bench.run.features import FeatureCache

    cache = FeatureCache()
    if args.action == "clear":
        print(f"removed {cache.clear()} cached feature files from {cache.root}")
    else:
        s = cache.stats()
        print(f"{cache.root}: {s['entries']} feature files, {s['bytes'] / 2**20:.1f} MiB")
    return 0
