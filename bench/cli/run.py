"""``bench run``: its options, the TOML config file, the RunConfig they make, and the command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.cli.board import check_format
from bench.cli.executor_options import TOML_KEYS, add_executor_options, executor_options
from bench.cli.modes import run_command
from bench.cli.options import add_data_options, add_pretraining_index_option, csv_list, parse_value, resolution_option
from bench.errors import UserError

RUN_EPILOG = """\
defaults: the offline benchmark: encoders efficientnet-lite0,pixels; strategies
scratch,linear-probe,finetune; task mnist5k; budgets 1,2,5,10,20 labels per class; 3 seeds.

budgets: K (labels per class), nN (N labels in total, stratified), full (the whole pool).
A budget's manifest depends only on the train pool's content, the budget and the seed, and is
shared by every encoder, strategy and task with that pool (written to DIR/manifests/). Running
the same command again resumes: a cell is skipped only when a record with the same cell_id (its
whole configuration, weights and data included) finished; failed cells are tried again.
--retry-failed runs only the failed ones. A second run on the same --out refuses at once,
naming the run that holds it; a killed run leaves no lock behind and resumes where it stopped.

--resolution auto (default): each encoder's own input size, except that flexible-resolution
encoders (CNNs) on small images (digits) use the smallest multiple of 32 that holds them, at
least 64 (fast on CPUs); pass --resolution 224 for the standard ImageNet protocol. Encoders whose
patch sizes share no small multiple (ViT-B/32 and ViT-S/14 meet at 224) take a side each:
--resolution clip=32,dinov2=28 (an encoder not named keeps auto; the side is in each record).

-c run.toml takes the same options as keys (encoders = ["a", "b"], budgets = "1,5", seeds = 3,
[set] lr = 0.001, [weights] clip = "/path.pt"); options on the command line win.
"""

def _parse_set(item: str) -> tuple[str | None, str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {item!r}: expected KEY=VALUE or STRATEGY.KEY=VALUE")
    target, dot, name = key.strip().rpartition(".")
    return (target if dot else None), name.replace("-", "_"), parse_value(value.strip())


def _parse_weights(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--weights {item!r}: expected NAME=PATH, e.g. --weights clip=/models/clip.pt")
        out[name.strip()] = path.strip()
    return out

def add_run_parser(sub: Any) -> None:
    """``bench run`` and its options."""
    r = sub.add_parser("run", help="run a grid of encoder x strategy x task x budget x seed",
                       epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("-c", "--config", help="a TOML file with the same options")
    r.add_argument("--encoders", type=csv_list, help="comma-separated encoder names (bench list encoders)")
    r.add_argument("--strategies", type=csv_list, help="comma-separated strategy names (bench list strategies)")
    r.add_argument("--tasks", type=csv_list, help="comma-separated task names (bench list tasks)")
    r.add_argument("--budgets", help="e.g. 1,2,5,10,20 or n100 or full (default 1,2,5,10,20)")
    r.add_argument("--seeds", type=int, help="seeds per cell (default 3)")
    r.add_argument("--out", help="run folder: results.jsonl, manifests/ (default bench-results)")
    r.add_argument("--device", help="auto (GPU when there is one), cpu, cuda[:N]; with --executor ray or submitit, "
                   "cuda is checked on the workers, not here (a login node needs no GPU)")
    r.add_argument("--precision", help="fp32 (default), or bf16: bf16 autocast in the encode pass and in training")
    r.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the model in the training loop (opt-in; the first steps pay the compile)")
    r.add_argument("--weights", action="append", default=[], metavar="NAME=PATH",
                   help="local checkpoint for an encoder (repeatable); checked before caches and hubs")
    r.add_argument("--resolution", help="input side for every encoder, auto (default), or per encoder: "
                   "clip=32,dinov2=28 (others auto) or 64,clip=224 (a default, then overrides)")
    r.add_argument("--set", action="append", default=[], metavar="[STRATEGY.]KEY=VALUE", dest="set_options",
                   help="override a strategy option (repeatable), e.g. --set finetune.lr=3e-4")
    r.add_argument("--layer-decay", type=float, help="layer-wise lr decay for strategies that support it")
    r.add_argument("--lora-rank", type=int, help="LoRA rank")
    r.add_argument("--lora-alpha", type=float, help="LoRA alpha")
    r.add_argument("--head-init", choices=["random", "zero-shot"], help="initialise linear heads from text prompts")
    r.add_argument("--tune", action="store_true", default=None,
                   help="choose hyper-parameters by cross-validation inside the budget (never on test)")
    add_data_options(r)
    add_pretraining_index_option(r)
    r.add_argument("--executor", help="where cells run: local (default), ray, submitit (bench list executors)")
    add_executor_options(r)
    r.add_argument("--forgetting", help="reference task for forgetting: auto (the task's declared reference, "
                   "e.g. digits for mnist5k), off, or a task name")
    r.add_argument("--no-contamination", action="store_true", default=None,
                   help="skip the contamination checks (duplicates between test and train)")
    r.add_argument("--cell-timeout", type=float, metavar="SECONDS",
                   help="record a cell still running after SECONDS as failed (reason timeout) and go on")
    r.add_argument("--retry-failed", action="store_true", default=None,
                   help="run exactly the cells whose latest record failed (a plain resume retries them too, "
                   "after the cells never run)")
    r.add_argument("--episodes", metavar="N:K:Q:E", help="few-shot episodes instead of budgets: E episodes of N "
                   "test classes, K support and Q query items each (e.g. 5:1:15:600); mean accuracy and 95%% CI, "
                   "records in DIR/episodes.jsonl (docs/episodes.md)")
    r.add_argument("--stream", help="continual learning: train on a stream of tasks in order, e.g. split-mnist5k "
                   "(five 2-class tasks) or digits,mnist5k; strategies are continual ones (docs/continual.md)")
    r.add_argument("--multitask", metavar="A,B,...", help="multi-task learning: one shared encoder and a head per "
                   "task, the tasks (two or more) trained jointly, each on its own budget manifest; strategies are "
                   "weightings (equal, uncertainty, gradnorm, pcgrad; default all); each task's gain over single-task "
                   "finetune on the same manifest and seed is recorded (docs/multitask.md)")
    r.add_argument("--stream-scenario", choices=["task", "class"], help="task (default: a head per task, task "
                   "identity known) or class (one head over all classes seen; split-TASK streams only)")
    r.add_argument("--dry-run", action="store_true", help="print the grid and the skipped cells, run nothing")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--format", default="github", help="leaderboard format printed at the end")


def _load_toml(path: str) -> dict[str, Any]:
    import tomllib

    p = Path(path)
    try:
        return tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"config file {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path!r} is not valid TOML: {exc}") from None


_STR, _INT, _NUM, _BOOL, _TABLE = "a string", "an integer", "a number", "true or false", "a table"
_NAMES = "a string or a list of strings"
_RES = "an integer, \"auto\", \"clip=32,dinov2=28\" or a table of encoder = side"
#: The type each run.toml key takes (``bench run -c``): a wrong one is one line naming key, value and type.
TOML_TYPES = {
    "encoders": _NAMES, "strategies": _NAMES, "tasks": _NAMES, "pretraining_index": _NAMES,
    "budgets": "a string, an integer or a list of them", "seeds": _INT, "out": _STR, "device": _STR,
    "resolution": _RES, "weights": _TABLE, "set": _TABLE, "data_dir": _STR, "download": _BOOL,
    "executor": _STR, "layer_decay": _NUM, "lora_rank": _INT, "lora_alpha": _NUM, "head_init": _STR, "tune": _BOOL,
    "forgetting": _STR, "no_contamination": _BOOL, "cell_timeout": _NUM, "retry_failed": _BOOL,
    "stream": _STR, "stream_scenario": _STR,
    "precision": _STR, "compile": _BOOL,
    "episodes": _STR, "multitask": _STR,
}


def _is(value: Any, kind: str) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == _NAMES:
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    if kind.startswith("a string, an integer"):
        items = value if isinstance(value, list) else [value]
        return all(isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in items)
    return {_STR: isinstance(value, str), _INT: number and isinstance(value, int), _NUM: number,
            _BOOL: isinstance(value, bool), _TABLE: isinstance(value, dict),
            _RES: isinstance(value, (str, dict)) or (number and isinstance(value, int))}.get(
        kind, isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)))


def check_toml_types(path: str, file_cfg: dict[str, Any]) -> None:
    """Every key of a run.toml has the type :data:`TOML_TYPES` gives it, else one line naming the fix."""
    for key, value in file_cfg.items():
        kind = TOML_TYPES.get(key)
        if kind is not None and not _is(value, kind):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise UserError(f"config file {path!r}: {key} = {shown} should be {kind}")


def run_config_from_args(args: argparse.Namespace) -> Any:
    from bench.run.plan import RunConfig

    file_cfg = _load_toml(args.config) if args.config else {}
    known = {"encoders", "strategies", "tasks", "budgets", "seeds", "out", "device", "weights", "resolution",
             "set", "data_dir", "download", "pretraining_index", "executor", "layer_decay", "lora_rank",
             "lora_alpha", "head_init", "tune", "forgetting", "no_contamination", "cell_timeout", "retry_failed",
             "stream", "stream_scenario",
             "precision", "compile",
             "episodes", "multitask", *TOML_KEYS}
    unknown = sorted(set(file_cfg) - known)
    if unknown:
        raise UserError(f"config file {args.config!r}: unknown key {unknown[0]!r}; "
                        f"known keys: {', '.join(sorted(known))}")
    check_toml_types(args.config, file_cfg)

    def pick(name: str, default: Any) -> Any:
        value = getattr(args, name, None)
        if value is None:
            value = file_cfg.get(name, default)
        return value

    def as_list(v: Any) -> list[str]:
        return csv_list(v) if isinstance(v, str) else [str(x) for x in v]

    cfg = RunConfig()
    cfg.encoders = as_list(pick("encoders", cfg.encoders))
    cfg.strategies = as_list(pick("strategies", cfg.strategies))
    cfg.tasks = as_list(pick("tasks", cfg.tasks))
    cfg.budgets = pick("budgets", cfg.budgets)
    if isinstance(cfg.budgets, int):
        cfg.budgets = str(cfg.budgets)
    cfg.seeds = pick("seeds", cfg.seeds)
    cfg.out = Path(pick("out", str(cfg.out)))
    cfg.device = str(pick("device", cfg.device))
    cfg.precision, cfg.compile = str(pick("precision", cfg.precision)), bool(pick("compile", False))
    cfg.resolution = resolution_option(pick("resolution", cfg.resolution))
    if isinstance(cfg.resolution, dict):
        asked = {n for e in cfg.encoders for n in (e, e.split(":")[0])}
        stray = sorted(k for k in cfg.resolution if k != "*" and k not in asked)
        if stray:
            raise UserError(f"--resolution names {', '.join(stray)}, not among --encoders "
                            f"{','.join(cfg.encoders)}; name an encoder of the run (bare name or NAME:VARIANT)")
    weights = {str(k): str(v) for k, v in dict(file_cfg.get("weights", {})).items()}
    weights.update(_parse_weights(args.weights))
    cfg.weights = weights
    options: list[tuple[str | None, str, Any]] = []
    for key, value in dict(file_cfg.get("set", {})).items():
        if isinstance(value, dict):  # [set.finetune] lr = ...
            options.extend((key, k, v) for k, v in value.items())
        else:
            options.append((None, key, value))
    for alias in ("layer_decay", "lora_rank", "lora_alpha", "head_init", "tune"):
        v = pick(alias, None)
        if v is not None:
            options.append((None, alias, v))
    options.extend(_parse_set(s) for s in args.set_options)
    cfg.options = options
    cfg.data_dir = pick("data_dir", None)
    cfg.download = bool(pick("download", False))
    # the flag's default is [] (it appends), so the config file's list applies when no flag was given
    cfg.pretraining_indexes = list(args.pretraining_index) or as_list(file_cfg.get("pretraining_index", []))
    cfg.executor = str(pick("executor", cfg.executor))
    cfg.executor_options = executor_options(args, file_cfg)
    cfg.forgetting = str(pick("forgetting", cfg.forgetting))
    cfg.contamination = not bool(pick("no_contamination", False))
    timeout = pick("cell_timeout", None)
    if timeout is not None and not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
        raise UserError(f"--cell-timeout {timeout!r}: use a positive number of seconds")
    cfg.cell_timeout = None if timeout is None else float(timeout)
    cfg.retry_failed = bool(pick("retry_failed", False))
    cfg.stream, cfg.stream_scenario = pick("stream", None), str(pick("stream_scenario", "task"))
    cfg.episodes = pick("episodes", None)
    cfg.multitask = pick("multitask", None)
    cfg.dry_run = bool(args.dry_run)
    cfg.progress = not args.no_progress
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    from bench.plugins import load_plugins

    check_format(args.format)
    cfg = run_config_from_args(args)
    return run_command(cfg, load_plugins(), args.format)
