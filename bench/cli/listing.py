"""``bench list``: the registered encoders, strategies, tasks, executors or plugins (imports no torch)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_list_parser(sub: Any) -> None:
    """``bench list WHAT [--json]``."""
    ls = sub.add_parser("list", help="list encoders, strategies, tasks, executors or plugins")
    ls.add_argument("what", choices=["encoders", "strategies", "tasks", "executors", "plugins"])
    ls.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_list(args: argparse.Namespace) -> int:
    from bench.plugins import load_plugins

    plugins = load_plugins()
    rows: list[dict[str, Any]] = []
    if args.what == "plugins":
        for name in sorted(set(plugins.sources) | set(plugins.failures) | set(plugins.blocked)):
            status = "failed" if name in plugins.failures else "blocked" if name in plugins.blocked else "loaded"
            rows.append({"name": name, "plugin": name, "distribution": plugins.sources.get(name, ""),
                         "status": status, "description": plugins.failures.get(name, "")})
    else:
        for spec in plugins.registry(args.what):
            row: dict[str, Any] = {"name": spec.name, "plugin": spec.plugin, "description": spec.description}
            if args.what == "encoders":
                meta = spec.variant_metadata(None)
                row.update(pretraining_data=list(spec.pretraining_data), params=meta.get("params"),
                           feature_dim=meta.get("feature_dim"), input_size=meta.get("input_size"),
                           license=meta.get("license"), variants=list(spec.variants))
            elif args.what == "strategies":
                row.update(kind=spec.kind, requires=list(spec.requires), options=dict(spec.defaults))
            elif args.what == "tasks":
                row.update(dataset=list(spec.dataset), shifted=spec.shifted, pattern=spec.pattern)
            row["metadata"] = {k: v for k, v in spec.metadata.items()}
            rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from tabulate import tabulate

    if args.what == "encoders":
        table = [[r["name"], r["plugin"], ",".join(r["pretraining_data"]) or "-",
                  _params(r.get("params")), r.get("feature_dim") or "-",
                  ", ".join(r["variants"][:3]) + (f" (+{len(r['variants']) - 3})" if len(r["variants"]) > 3 else ""),
                  r["description"]]
                 for r in rows]
        headers = ["name", "plugin", "pretraining data", "params", "dim", "variants", "description"]
    elif args.what == "strategies":
        table = [[r["name"], r["plugin"], r["kind"], ",".join(r["requires"]) or "-", r["description"]] for r in rows]
        headers = ["name", "plugin", "kind", "requires", "description"]
    elif args.what == "plugins":
        table = [[r["name"], r["distribution"], r["status"], r["description"]] for r in rows]
        headers = ["plugin", "distribution", "status", "error"]
    else:
        table = [[r["name"], r["plugin"], r["description"]] for r in rows]
        headers = ["name", "plugin", "description"]
    print(tabulate(table, headers, tablefmt="simple"))
    return 0


def _params(n: Any) -> str:
    if not n:
        return "-"
    return f"{n / 1e6:.1f}M" if n >= 100_000 else f"{n:,}"
