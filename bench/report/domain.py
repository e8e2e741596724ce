"""Domain-adaptation tables of the leaderboard: target accuracy, paired gains over both baselines, oracle bound.

For each shifted task and each (encoder, budget), the "Domain adaptation" table lists every row of
the board that has a target accuracy: the method, its target accuracy (mean ± 95% CI over seeds),
its own paired source-only target accuracy (``metrics.source_only_target_accuracy``: the same recipe
with the method's own loss switched off, scored on the same splits), the gain over it (``paired_gain``
per seed, ``gain_s = method_s - baseline_s``, then mean ± CI: a paired interval), the gain over the
STANDARD source-only cell of the same manifest and seed (``finetune``; ``linear-probe`` and
``source-only-features`` for ``*-features`` methods; paired by :mod:`bench.report.baselines`), the
transfer gap, the domain critic's final accuracy where recorded (``info.final_domain_accuracy``, 0.5
= the critic cannot tell the domains apart), a mark and the row's flags. The mark names its
baseline: a gain below zero by more than its CI is ``worse than own source-only`` (or ``worse than
finetune``), above zero by more than its CI ``beats own source-only`` (``beats finetune``); a critic
at chance with no gain over its own baseline, ``critic at chance, no gain``; at 0.95 or more,
``critic won, no gain``. Records without the paired fields (older runs) render with those columns empty.

The oracle table is an UPPER BOUND, in its own table and labelled so: when a grid already ran
several configurations of one method (``--set``), the configuration with the best TARGET TEST
accuracy. Nothing uses it to choose anything (defaults come from ``bench tune``'s label-free criteria).
"""

from __future__ import annotations

from typing import Any

from bench.report.aggregate import budget_order
from bench.report.baselines import standard_baselines

OWN = "own source-only"
WORSE, BETTER = f"worse than {OWN}", f"beats {OWN}"
#: A critic that ends at chance while the method gains nothing: no evidence the adversarial game ran
#: (a critic whose output never left one side scores exactly 0.5; measured on CDAN, issue 11).
IDLE_CRITIC = "critic at chance, no gain"
#: A critic that tells the domains apart almost perfectly at the end: the features were not aligned,
#: the game was lost (measured on dann with its critic on Adam, issue 11).
WON_CRITIC = "critic won, no gain"


def _pct(stat: dict[str, Any] | None, signed: bool = False) -> str:
    if not stat:
        return ""
    mean, ci = 100 * stat["mean"], stat.get("ci95")
    text = f"{mean:+.1f}" if signed else f"{mean:.1f}"
    return text if ci is None else f"{text} ± {100 * ci:.1f}"


def verdict(gain: dict[str, Any] | None, baseline: str = OWN) -> str:
    """``worse than BASELINE`` when the paired gain's CI lies wholly below zero, ``beats BASELINE``
    when wholly above, else "" (also with one seed: no interval, no verdict)."""
    if not gain or gain.get("ci95") is None:
        return ""
    if gain["mean"] + gain["ci95"] < 0:
        return f"worse than {baseline}"
    if gain["mean"] - gain["ci95"] > 0:
        return f"beats {baseline}"
    return ""


def mark(gain: dict[str, Any] | None, critic: dict[str, Any] | None) -> str:
    """:func:`verdict` against the own baseline, else, when the gain is not above zero by more than
    its CI, :data:`IDLE_CRITIC` for a critic's mean accuracy within a point of 0.5 and
    :data:`WON_CRITIC` for one at 0.95 or more."""
    found = verdict(gain)
    if found == BETTER or not critic:
        return found
    if critic["mean"] >= 0.95:
        return found or WON_CRITIC
    return found or (IDLE_CRITIC if abs(critic["mean"] - 0.5) <= 0.01 else "")


def method_of(row: dict[str, Any]) -> str:
    """The strategy's registered name of a board row (``"dann [domain_weight=3]"`` -> ``"dann"``)."""
    return str(row["strategy"]).split(" ", 1)[0].split("[", 1)[0]


HEADERS = ["method", "target acc %", "own source-only target acc %", "gain over own (points)", "seeds",
           "standard baseline", "gain over standard (points)", "transfer gap", "critic acc %", "mark", "flags"]


def standard_gains(row: dict[str, Any], cell: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(standard strategy, its paired gain stats) for each standard baseline the cell was paired with."""
    return [(name, cell[f"gain_over_{name}"]) for name in standard_baselines(method_of(row))
            if f"gain_over_{name}" in cell]


def da_rows(task: dict[str, Any], encoder: str, budget: str) -> list[list[str]]:
    """The rows of one (encoder, budget) table of a shifted task (see the module doc)."""
    out = []
    for row in task["rows"]:
        cell = row["budgets"].get(budget) or {}
        if row["encoder"] != encoder or "target_accuracy" not in cell:
            continue
        gain, standard = cell.get("paired_gain"), standard_gains(row, cell)
        marks = [mark(gain, cell.get("final_domain_accuracy")), *(verdict(g, name) for name, g in standard)]
        out.append([row["strategy"], _pct(cell["target_accuracy"]), _pct(cell.get("source_only_target_accuracy")),
                    _pct(gain, signed=True), str(gain["n"]) if gain else "", ", ".join(n for n, _ in standard),
                    "; ".join(_pct(g, signed=True) for _, g in standard), _pct(cell.get("transfer_gap"), True),
                    _pct(cell.get("final_domain_accuracy")), "; ".join(m for m in marks if m),
                    ", ".join(row.get("flags") or [])])
    return out


def oracle_rows(task: dict[str, Any], encoder: str, budget: str) -> list[list[str]]:
    """Per method with two or more configurations at (encoder, budget): the best and the worst by
    target TEST accuracy (an upper bound on what any label-free selection could reach)."""
    by_method: dict[str, list[tuple[float, dict[str, Any], dict[str, Any]]]] = {}
    for row in task["rows"]:
        cell = row["budgets"].get(budget) or {}
        if row["encoder"] == encoder and "target_accuracy" in cell:
            by_method.setdefault(method_of(row), []).append((cell["target_accuracy"]["mean"], row, cell))
    out = []
    for method, found in sorted(by_method.items()):
        if len(found) < 2:
            continue
        found.sort(key=lambda t: -t[0])
        (_, best, best_cell), (_, _, worst_cell) = found[0], found[-1]
        out.append([method, str(len(found)), best["config"] or best["strategy"], _pct(best_cell["target_accuracy"]),
                    _pct(best_cell.get("paired_gain"), signed=True), _pct(worst_cell["target_accuracy"])])
    return out


def task_tables(name: str, task: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows): a shifted task's DA tables per (encoder, budget), then its oracle tables."""
    if not task.get("shifted"):
        return []
    encoders = sorted({row["encoder"] for row in task["rows"]})
    budgets = sorted({b for row in task["rows"] for b in row["budgets"]}, key=budget_order)
    out, oracle = [], []
    for encoder in encoders:
        for budget in budgets:
            rows = da_rows(task, encoder, budget)
            if rows and any(r[2] for r in rows):  # something was paired with a source-only baseline
                out.append((f"{name}: Domain adaptation, {encoder}, {budget} (target test accuracy, mean ± 95% CI "
                            "over seeds; gain over own = method minus its own source-only baseline, same seed and "
                            "recipe; gain over standard = method minus the standard source-only cell, same manifest "
                            f"and seed; mark: a gain below/above zero by more than its CI, naming its baseline)",
                            HEADERS, rows))
            best = oracle_rows(task, encoder, budget)
            if best:
                oracle.append((f"{name}: ORACLE UPPER BOUND, {encoder}, {budget}: the configuration with the best "
                               "TARGET TEST accuracy among those run (chosen on target labels: never a default)",
                               ["method", "configs", "oracle config", "target acc %", "paired gain (points)",
                                "worst config's target acc %"], best))
    return out + oracle


def source_only_series(task: dict[str, Any]) -> list[tuple[str, list[str], dict[str, float]]]:
    """For the plot: the source-only target accuracy by budget, one series per encoder and distinct
    baseline (rows whose baselines agree at every budget share one), named after their methods."""
    series: list[tuple[str, list[str], dict[str, float]]] = []
    for row in task["rows"]:
        points = {b: c["source_only_target_accuracy"]["mean"] for b, c in row["budgets"].items()
                  if "source_only_target_accuracy" in c}
        if not points:
            continue
        for encoder, methods, known in series:
            shared = set(points) & set(known)
            if encoder == row["encoder"] and shared and all(abs(points[b] - known[b]) < 1e-9 for b in shared):
                methods.append(method_of(row))
                known.update(points)
                break
        else:
            series.append((row["encoder"], [method_of(row)], dict(points)))
    return series
