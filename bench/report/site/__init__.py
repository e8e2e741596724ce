"""The published leaderboard site: ``bench publish RUN... --site DIR``.

Writes ``index.html`` (the classic learning-curve chart first, the overall ranking, a sortable
and filterable table of every score, label efficiency, the other plots), one page per task
(ranks per budget with ties, efficiency, every leaderboard table, each row in detail with its
configuration and provenance), the plots, ``results.json`` (board, ranks, efficiency, validation)
and every input needed to recompute it (``bench validate SITE`` does): ``results.jsonl`` (every
record, stream records included, each with the run folder it came from), ``episodes.jsonl`` (the
few-shot episode records) and ``estimators.jsonl`` (each run's ``rank.json``: the estimators'
scores behind the correlation table). Records from a tree with uncommitted changes or without a
commit are refused unless ``allow_dirty``, which flags them ``dirty`` / ``no-commit`` on the page. Pages load nothing
from the network, so the folder works from a ``file://`` URL and from any static host. HTML comes
from Jinja2 templates with autoescaping on: every string from a plugin or a results file is escaped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench import __version__
from bench.errors import UserError

TEMPLATES = Path(__file__).parent / "templates"


def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from bench.report.site.pages import task_page

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["task_page"] = task_page
    return env


def _provenance(runs: Any, allow_dirty: bool) -> Any:
    """``runs`` with the provenance flags on its records and episodes; a UserError naming how many
    are dirty or commit-less when ``allow_dirty`` is off."""
    from dataclasses import replace

    from bench.report.flags import provenance_flags, with_flags

    records = [with_flags(r, provenance_flags(r)) for r in runs.records]
    episodes = [with_flags(r, provenance_flags(r)) for r in runs.episodes]
    dirty = sum("dirty" in r["flags"] for r in records + episodes)
    bare = sum("no-commit" in r["flags"] for r in records + episodes)
    if (dirty or bare) and not allow_dirty:
        counts = [f"{n} record(s) {why}" for n, why in ((dirty, "from a tree with uncommitted changes (-dirty)"),
                                                         (bare, "without a source commit")) if n]
        raise UserError(f"{' and '.join(counts)}; re-run them from a clean commit, or publish anyway with "
                        "--allow-dirty (they are then flagged dirty / no-commit on the page)")
    return replace(runs, records=tuple(records), episodes=tuple(episodes))


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=True, default=str) + "\n")


def publish(dirs: Iterable[str | Path], site: Path, allow_invalid: bool = False, allow_dirty: bool = False) -> Path:
    """Validate the run folders, merge them and write the site into ``site``."""
    from bench.report import plots, ranking, validate
    from bench.report import tables as leaderboard
    from bench.report.runs import load
    from bench.report.site import pages

    dirs = list(dirs)
    found = validate.problems(dirs)
    if found and not allow_invalid:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UserError(f"{found[0]}{more}; see `bench validate {' '.join(map(str, dirs))}`, or publish anyway with "
                        "--allow-invalid (the problems are then listed on the page)")
    runs = _provenance(load(dirs), allow_dirty)
    records = list(runs.records)
    site = Path(site)
    try:
        site.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create site folder {str(site)!r} ({exc.strerror}); pass a writable --site") from None
    board = leaderboard.aggregate(runs)
    summary = ranking.summarise(board)
    from bench.report.runs import EPISODES_FILE, ESTIMATORS_FILE, RESULTS_FILE

    _write_jsonl(site / RESULTS_FILE, records)
    _write_jsonl(site / EPISODES_FILE, runs.episodes)
    _write_jsonl(site / ESTIMATORS_FILE, runs.estimators)
    _copy_study_reports(runs, site)
    (site / "results.json").write_text(json.dumps(
        {"version": __version__, "board": board, "ranking": summary, "validation": found},
        indent=1, sort_keys=True, default=str), encoding="utf-8")
    drawn = [(n, c) for n, c in plots.write_all(board, site) if n not in ("curves.png", "shift.png")]
    from bench.report.figures import task_figures

    figures = {n: task_figures(board, n, site, "figure-" + pages.task_page(n)[5:-5]) for n in board["tasks"]}
    env = _env()
    common = {
        "css": (TEMPLATES / "site.css").read_text(encoding="utf-8"),
        "js": (TEMPLATES / "site.js").read_text(encoding="utf-8"),
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "version": __version__,
        "n_records": len(records),
        "sources": sorted({(r.get("provenance") or {}).get("source", "?") for r in records}),
        "test": ranking.TEST_NAME, "alpha": ranking.ALPHA,
    }
    from bench.report.flags import board_flags, legend

    lines = pages.scores(board, summary)
    flagged = board_flags(board)
    notes = [*(f"validation: {p}" for p in found), *(f"warning: {w}" for w in board.get("warnings", [])),
             *(f"skipped {s['encoder']} x {s['strategy']} on {s['task']}: {s['reason']}" for s in board["skipped"])]
    first = sorted(figures, key=lambda n: _figure_order(n, board["tasks"][n], figures[n]))
    index = env.get_template("index.html").render(
        **common, plots=drawn, figures=[(n, figures[n][0]) for n in first if figures[n]],
        overall=pages.overall(summary), n_tasks=len(board["tasks"]), scores=lines,
        filters=pages.filters(lines), efficiency=pages.efficiency_tables(board, summary), notes=notes,
        sections=leaderboard.tables(board, per_task=False),
        flagged=flagged, legend=legend(f for x in flagged for f in x["flags"]),
        task_links=[{"name": n, "page": pages.task_page(n)} for n in board["tasks"]])
    (site / "index.html").write_text(index, encoding="utf-8")
    for name, task in board["tasks"].items():
        one = {**board, "tasks": {name: task}, "failed": [f for f in board["failed"] if f["task"] == name]}
        recs = [r for r in records if r.get("task") == name]
        info: dict[str, Any] = next((r["task_info"] for r in recs if r.get("task_info")), {})
        description = "; ".join(f"{k}: {v}" for k, v in sorted(info.items()) if v not in (None, "", []))
        html = env.get_template("task.html").render(
            **common, task=name, description=description, metric=summary["tasks"][name]["metric"],
            figures=figures[name], ranks=pages.ranks(task, summary["tasks"][name]),
            efficiency=pages.efficiency_tables(board, summary, only=name),
            tables=leaderboard.tables(one, per_task=True),
            details=pages.details(name, task, records),
            flagged=[x for x in flagged if x["section"] == "budget tables" and x["where"] == name],
            legend=legend(f for x in flagged if x["where"] == name for f in x["flags"]))
        (site / pages.task_page(name)).write_text(html, encoding="utf-8")
    return site


CLASSIC = frozenset({"scratch", "linear-probe", "finetune"})


def _figure_order(name: str, task: dict[str, Any], figures: list[dict[str, Any]]) -> tuple[bool, bool, int, str]:
    """The index's chart order: same-domain tasks first, those with the classic three curves (scratch,
    linear probe, fine-tune) before the rest, then the chart with more plotted points, then the name."""
    classic = CLASSIC <= {r["strategy"] for r in task["rows"]}
    points = len(figures[0]["meta"]["points"]) if figures else 0
    return (bool(task["shifted"]), not classic, -points, name)


def _copy_study_reports(runs: Any, site: Path) -> None:
    """The validator study's reports (``validator-study/*.json`` of the run folders) into the site's own
    ``validator-study/``, so `bench validate SITE` rebuilds the study table from the published files."""
    from bench.report.validator_study import STUDY_DIR, load_reports

    reports = load_reports(runs)
    target = site / STUDY_DIR
    if target.exists():
        for old in target.glob("*.json"):
            old.unlink()
    if reports:
        target.mkdir(exist_ok=True)
        for i, report in enumerate(reports):
            name = f"{i:03d}-{report.get('strategy', 'grid')}-{str(report.get('task', '')).replace('>', '')}"
            safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
            (target / f"{safe}.json").write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")
