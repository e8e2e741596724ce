"""Leaderboard aggregation: records -> rows by configuration, seed counts, failures, paired head-start.

A row is one (task, encoder, strategy, configuration): records of different configurations (the
record's ``config_digest``; for records without one, a digest of their options, resolution,
weights and protocol) are never averaged together. When one (encoder, strategy) has several
configurations on a task, each row's strategy label names what differs (``finetune [lr=0.001]``).

Each cell (row x budget) counts the seeds it averages (``n``) against the seeds asked for that
task and budget (``n_expected``: every seed any record of the task and budget has) and lists its
failed seeds with their reason, so a mean of survivors is never shown without its failures.

Each DA record is also paired with the standard source-only cells by :mod:`bench.report.baselines`
(its ``gain_over_S`` metrics average like any metric; its flags reach the row's ``flags``).

Head-start pairs a record with the ``scratch`` record of the same encoder, task, budget and
seed, the same label manifest (``manifest_sha256``), the same protocol and the same shared
training recipe; when no single scratch configuration matches, the record is left unpaired.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from typing import Any

from bench.errors import UserError
from bench.report.baselines import annotate
from bench.run.budgets import parse_budget

#: Metrics kept per (seed, manifest) in each cell, for the paired tests of :mod:`bench.report.ranking`.
PAIRED_METRICS = ("accuracy", "target_accuracy")
#: Numbers a record keeps in ``info`` that the board averages too (``final_domain_accuracy``: the
#: domain critic's accuracy over a DA method's last steps, 0.5 = domains indistinguishable).
INFO_METRICS = ("final_domain_accuracy",)
#: The recipe keys a head-start pair must share (when both configurations have them).
RECIPE_KEYS = ("epochs", "min_steps", "max_steps", "batch_size", "augment", "weight_decay", "warmup_frac")


def mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Mean and 95% t-interval half-width (None for a single value)."""
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, None
    from scipy.stats import t

    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    return m, float(t.ppf(0.975, n - 1) * sd / math.sqrt(n))


def strategy_label(rec: dict[str, Any]) -> str:
    cid = rec.get("config_id", "default")
    return rec["strategy"] if cid in ("default", None) else f"{rec['strategy']}[{cid}]"


def budget_order(label: str) -> Any:
    try:
        return parse_budget(label.replace("/class", "")).order
    except UserError:
        return (9, 0)


def normalise(rec: dict[str, Any]) -> dict[str, Any]:
    """A record as this version reads it: an old ``forgetting`` (adapted minus original) becomes
    ``reference_drop`` (original minus adapted: positive = points lost on the reference task)."""
    metrics = rec.get("metrics") or {}
    if "forgetting" in metrics and "reference_drop" not in metrics:
        metrics = {k: v for k, v in metrics.items() if k != "forgetting"}
        metrics["reference_drop"] = round(-float(rec["metrics"]["forgetting"]), 6)
        rec = {**rec, "metrics": metrics}
    return rec


def failure_reason(rec: dict[str, Any]) -> str:
    """``diverged``, ``timeout``, ``oom``, ``protocol`` or ``error`` (old records: read from the error)."""
    if rec.get("reason"):
        return str(rec["reason"])
    return "diverged" if "diverged" in str(rec.get("error") or "") else "error"


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_of(rec: dict[str, Any]) -> dict[str, Any]:
    """The flat description of a record's configuration (its ``config_summary``, or for older
    records its options, resolution, weights and protocol 1)."""
    if isinstance(rec.get("config_summary"), dict):
        return _flatten(rec["config_summary"])
    info = rec.get("encoder_info") or {}
    return _flatten({"options": rec.get("config") or {}, "resolution": info.get("resolution"),
                     "weights": info.get("weights"), "protocol": rec.get("protocol", 1)})


def config_key(rec: dict[str, Any]) -> str:
    if rec.get("config_digest"):
        return str(rec["config_digest"])
    blob = json.dumps(config_of(rec), sort_keys=True, default=str)
    return "old:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def _value(v: Any) -> str:
    if isinstance(v, list):
        return "+".join(map(str, v))
    return "-" if v is None else str(v)


def config_labels(configs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """``{config key: "[what differs]"}`` for configurations of one (encoder, strategy); "" for one."""
    if len(configs) < 2:
        return {k: "" for k in configs}
    keys = sorted({k for c in configs.values() for k in c})
    differ = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True, default=str) for c in configs.values()}) > 1]
    # a content fingerprint changes with what it digests (resolution, weights): name it only when nothing else differs
    differ = [k for k in differ if not k.endswith("fingerprint")] or differ
    short = {k: k.rsplit(".", 1)[-1] for k in differ}
    if len(set(short.values())) < len(differ):
        short = {k: k for k in differ}
    labels = {}
    for key, c in configs.items():
        parts = [f"{short[k]}={_value(c.get(k))}" for k in differ]
        labels[key] = f"[{', '.join(parts) if parts else 'config ' + key.split(':')[-1][:8]}]"
    return labels


def training_length(rec: dict[str, Any]) -> dict[str, Any] | None:
    """Steps, epochs (steps x batch / labelled items) and whether ``max_steps`` cut the recipe short."""
    info, cfg = rec.get("info") or {}, rec.get("config") or {}
    steps, batch, n = info.get("steps"), info.get("batch_size"), rec.get("n_labelled")
    if not isinstance(steps, int) or not isinstance(batch, int) or not n:
        return None
    capped = info.get("capped")
    if capped is None:
        wanted = int(cfg.get("epochs") or 0) * math.ceil(n / batch)
        capped = bool(cfg.get("max_steps")) and steps >= int(cfg["max_steps"]) and wanted > steps
    return {"steps": steps, "epochs": steps * batch / n, "capped": bool(capped)}


def _recipe_matches(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ca, cb = a.get("config") or {}, b.get("config") or {}
    return all(ca[k] == cb[k] for k in RECIPE_KEYS if k in ca and k in cb)


def scratch_partner(rec: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The one scratch record ``rec`` pairs with (same manifest, protocol and recipe), or None."""
    match = [s for s in candidates if s.get("manifest_sha256") == rec.get("manifest_sha256")
             and s.get("protocol") == rec.get("protocol") and _recipe_matches(rec, s)]
    return match[0] if len({config_key(s) for s in match}) == 1 else None


def _stats(values: list[float]) -> dict[str, Any]:
    mean, ci = mean_ci(values)
    return {"mean": mean, "ci95": ci, "n": len(values)}


def _cell(rs: list[dict[str, Any]], fails: list[dict[str, Any]], expected: int,
          scratch: dict[tuple[Any, ...], list[dict[str, Any]]]) -> dict[str, Any]:
    cell: dict[str, Any] = {"seeds": len(rs), "n": len(rs), "n_expected": expected,
                            "failed": [{"seed": r["seed"], "reason": failure_reason(r), "error": r.get("error") or ""}
                                       for r in sorted(fails, key=lambda r: r["seed"])]}
    names = sorted({k for r in rs for k, v in r["metrics"].items() if isinstance(v, (int, float))})
    for m in names:
        vals = [float(r["metrics"][m]) for r in rs if isinstance(r["metrics"].get(m), (int, float))]
        if vals:
            cell[m] = _stats(vals)
    for key in INFO_METRICS:
        vals = [float(v) for r in rs if isinstance(v := (r.get("info") or {}).get(key), (int, float))]
        if vals:
            cell[key] = _stats(vals)
    diffs = []
    for r in rs:
        s = None if r["strategy"] == "scratch" else scratch_partner(
            r, scratch.get((r["task"], r["encoder"], r["budget"], r["seed"]), []))
        if s is not None:
            diffs.append(r["metrics"]["accuracy"] - s["metrics"]["accuracy"])
    if diffs:
        cell["head_start"] = _stats(diffs)
    cell["by_seed"] = {f"{r['seed']}:{r.get('manifest_sha256') or ''}": {
        m: float(r["metrics"][m]) for m in PAIRED_METRICS if isinstance(r["metrics"].get(m), (int, float))}
        for r in rs}
    if rs:
        cell["n_labelled"] = sum(float(r.get("n_labelled") or 0) for r in rs) / len(rs)
        cell["trainable_share"] = sum(r.get("trainable_share", 0.0) for r in rs) / len(rs)
        cell["trainable_params"] = max(r.get("trainable_params", 0) for r in rs)
        cell["wall_s"] = sum(r.get("wall_s", 0.0) for r in rs) / len(rs)
        cell["peak_mem_mb"] = max(r.get("peak_mem_mb", 0.0) for r in rs)
        refs = sorted({r["forgetting"]["reference_task"] for r in rs if isinstance(r.get("forgetting"), dict)
                       and r["forgetting"].get("reference_task")})
        if refs:
            cell["reference_tasks"] = refs
    lengths = [t for r in rs if (t := training_length(r)) is not None]
    if lengths:
        cell["steps"] = sum(t["steps"] for t in lengths) / len(lengths)
        cell["epochs"] = sum(t["epochs"] for t in lengths) / len(lengths)
        cell["capped"] = sum(t["capped"] for t in lengths)
    return cell


def _names(strategy: str, configs: dict[str, dict[str, Any]], options: dict[str, dict[str, Any]],
           defaults: dict[str, dict[str, Any]] | None) -> dict[str, tuple[str, bool | None]]:
    """``{config key: (row name, is the registered default)}`` of one (task, encoder, strategy)'s
    configurations: in words against the registered default (:mod:`bench.report.names`) when
    ``defaults`` knows the strategy and there are several, else as they differ from each other
    (default unknown: None)."""
    from bench.report.names import changes

    base = strategy.split("[", 1)[0]
    known = defaults is not None and base in defaults
    diffs = {ck: changes(options[ck], defaults[base]) if defaults and known else [] for ck in configs}
    marks: dict[str, bool | None] = {ck: (not d) if known else None for ck, d in diffs.items()}
    # changes every configuration shares do not tell them apart (an option none of them recorded)
    common = set.intersection(*(set(d) for d in diffs.values())) if diffs else set()
    parts = {ck: [p for p in d if p not in common] for ck, d in diffs.items()}
    if len(configs) == 1 or not known or any(not p and not marks[ck] for ck, p in parts.items()):
        labels = config_labels(configs)
        return {ck: (f"{strategy} {labels[ck]}".strip(), marks[ck]) for ck in configs}
    return {ck: (f"{base} ({', '.join(p)})" if p else base, marks[ck]) for ck, p in parts.items()}


def aggregate(records: list[dict[str, Any]], defaults: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Structured leaderboard: per task, per row (configuration), per budget: n, failures, mean/CI
    of every metric, head-start, training length; plus every failed and skipped cell. With
    ``defaults`` (each strategy's registered default options) rows are named by what they change
    from the default, and each row says whether it is the default (``default``: True/False/None)."""
    records = annotate([normalise(r) for r in records])  # standard-baseline gains and flags (bench.report.baselines)
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") == "failed"]
    asked: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for r in records:
        asked[(r["task"], r["budget"])].add(r["seed"])
    scratch: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        if r["strategy"] == "scratch":
            scratch[(r["task"], r["encoder"], r["budget"], r["seed"])].append(r)
    configs: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    options: dict[str, dict[str, Any]] = {}
    groups: dict[tuple[str, str, str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in ok + failed:
        ck = config_key(r)
        configs[(r["task"], r["encoder"], strategy_label(r))][ck] = config_of(r)
        options[ck] = dict(r.get("config") or {})
        groups[(r["task"], r["encoder"], strategy_label(r), ck)][r["budget"]].append(r)
    names = {(*k, ck): named for k, cs in configs.items() for ck, named in _names(k[2], cs, options, defaults).items()}
    out: dict[str, Any] = {"tasks": {}, "failed": [], "skipped": [], "warnings": []}
    for task in sorted({k[0] for k in groups}):
        keys = sorted(k for k in groups if k[0] == task)
        recs = [r for r in ok + failed if r["task"] == task]
        budgets = sorted({r["budget"] for r in recs}, key=budget_order)
        rows = []
        for key in keys:
            _, enc, strat, ck = key
            label, is_default = names[key]
            config = label[len(strat.split("[")[0]):].strip()
            row: dict[str, Any] = {"encoder": enc, "strategy": label, "config": config,
                                   "config_key": ck, "default": is_default, "options": options[ck], "budgets": {}}
            for budget, rs in groups[key].items():
                good = [r for r in rs if r["status"] == "ok"]
                bad = [r for r in rs if r["status"] == "failed"]
                row["budgets"][budget] = _cell(good, bad, len(asked[(task, budget)]), scratch)
                out["failed"] += [{"task": task, "encoder": enc, "strategy": label, "budget": budget, **f}
                                  for f in row["budgets"][budget]["failed"]]
            capped = ["capped"] if any(c.get("capped") for c in row["budgets"].values()) else []
            own = {f for rs in groups[key].values() for r in rs for f in r.get("flags", [])}
            row["flags"] = sorted(own | {*capped})
            rows.append(row)
        shifted = any(r.get("task_info", {}).get("shifted") for r in recs)
        flags = sorted({f for r in recs for f in r.get("flags", [])} | {f for row in rows for f in row["flags"]})
        out["tasks"][task] = {"budgets": budgets, "rows": rows, "shifted": shifted, "flags": flags}
        capped = sum(c.get("capped", 0) for row in rows for c in row["budgets"].values())
        if capped:
            out["warnings"].append(
                f"{task}: max_steps cut the recipe's epochs short in {capped} record(s) (marked * in the training "
                "length table); raise it, e.g. --set max_steps=1000")
    skipped = {(r["task"], r["encoder"], strategy_label(r)): r.get("error") or ""
               for r in records if r.get("status") == "skipped"}
    out["skipped"] = [{"task": t, "encoder": e, "strategy": s, "reason": why}
                      for (t, e, s), why in sorted(skipped.items())]
    return out
