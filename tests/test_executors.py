"""The built-in executors: ``local --jobs N``, ``ray`` (a local Ray instance started by the test) and
``submitit`` (its local executor) give the ``local`` records, resume each other's grids, report a
failed group after the others' records, and refuse options that are not theirs in one line."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from bench.cli import build_parser
from bench.cli.run import run_config_from_args
from bench.errors import UserError
from bench.plugins import load_plugins
from bench.run.plan import RunConfig
from bench.run.runner import Runner
from tests.conftest import run_cli

VOLATILE = {"wall_s", "peak_mem_mb", "timestamp", "versions", "device_info"}
#: two groups (one per task), two cells each, all on built-in plugins (workers load entry points only)
GRID = dict(encoders=["pixels"], strategies=["linear-probe", "knn"], tasks=["digits", "mnist5k"], budgets="2",
            seeds=1, device="cpu", progress=False, forgetting="off", contamination=False)


def stable(records):
    return sorted(json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True) for r in records)


def run(out, executor="local", options=None, recipe=(), **kw):
    """``options``: the executor's; ``recipe``: ``--set`` values, as (strategy, key, value)."""
    cfg = RunConfig(**{**GRID, **kw}, out=out, executor=executor, executor_options=dict(options or {}),
                    options=list(recipe))
    return Runner(cfg, load_plugins()).run()


@pytest.fixture(scope="module")
def local_records(tmp_path_factory):
    records = run(tmp_path_factory.mktemp("local") / "run")
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    return records


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


SUBMITIT_LOCAL = {"cluster": "local", "cpus_per_task": 1}


def test_local_jobs_gives_the_local_records(tmp_path, local_records):
    """Guards against worker processes giving other numbers than the driver (or losing a group)."""
    records = run(tmp_path / "run", options={"jobs": 2})
    assert stable(records) == stable(local_records)
    assert stable(json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()) \
        == stable(local_records)


def test_ray_gives_the_local_records(tmp_path, local_records, ray_instance):
    """Guards against the Ray executor running groups elsewhere than the started instance, or
    changing records; the driver alone writes results.jsonl."""
    records = run(tmp_path / "run", executor="ray")
    assert stable(records) == stable(local_records)
    assert ray_instance.is_initialized()  # an instance the caller started is left running


def test_submitit_local_gives_the_local_records(tmp_path, local_records):
    """Guards against the job array losing or changing records (one element per group)."""
    pytest.importorskip("submitit")
    records = run(tmp_path / "run", executor="submitit", options=SUBMITIT_LOCAL)
    assert stable(records) == stable(local_records)
    assert (tmp_path / "run" / "submitit").is_dir()  # job files under the run folder by default


#: a group of training cells: fine-tuning's floats depend on the torch thread count (tests/test_cell_threads.py)
TRAINING = dict(encoders=["efficientnet-lite0"], strategies=["finetune"], tasks=["digits"], seeds=2,
                recipe=[("finetune", "max_steps", 6)])


@pytest.fixture(scope="module")
def local_training(tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the driver's process with 2 threads; Ray's and --jobs 2's workers have 1
    try:
        records = run(tmp_path_factory.mktemp("local-training") / "run", **TRAINING)
    finally:
        torch.set_num_threads(before)
    assert len(records) == 2 and {r["status"] for r in records} == {"ok"}
    return records


@pytest.mark.parametrize("executor,options", [("local", {"jobs": 2}), ("ray", {}), ("submitit", SUBMITIT_LOCAL)])
def test_training_cells_give_the_same_records_on_every_executor(tmp_path, local_training, executor, options,
                                                               request):
    """Guards against a cell's number depending on where it ran (a worker's thread count)."""
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    if executor == "submitit":
        pytest.importorskip("submitit")
    records = run(tmp_path / "run", executor=executor, options=options, **TRAINING)
    assert stable(records) == stable(local_training)


@pytest.mark.parametrize("executor,options", [("ray", {}), ("local", {"jobs": 2})])
def test_an_executor_resumes_a_grid_local_started(tmp_path, local_records, executor, options, request):
    """Guards against executors re-running finished cells or missing the rest of a grid (which
    cells are pending is the driver's choice, the same for every executor)."""
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    first = run(tmp_path / "run", tasks=["digits"])
    rest = run(tmp_path / "run", executor=executor, options=options)
    assert {r["task"] for r in first} == {"digits"} and {r["task"] for r in rest} == {"mnist5k"}
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert stable(json.loads(line) for line in lines) == stable(local_records)


def test_a_failed_group_is_reported_after_the_others_records(tmp_path):
    """Guards against one failed worker job hiding the records of the groups that finished."""
    from bench_plugins.executors._local import LocalExecutor

    cfg = RunConfig(**{**GRID, "tasks": ["digits"]}, out=tmp_path / "run", executor_options={"jobs": 2})
    runner = Runner(cfg, load_plugins())
    runner.device = "cpu"
    [good] = list(runner.groups(runner.plan().cells))
    bad = dataclasses.replace(good, task="no-such-task")
    got = []
    with pytest.raises(UserError, match=r"1 of 2 cell groups failed on --executor local --jobs "
                                        r"\(first: no-such-task \| pixels: .*run the same command again"):
        for rec in LocalExecutor().run([bad, good]):
            got.append(rec)
    assert len(got) == 2 and {r["task"] for r in got} == {"digits"}


@pytest.mark.parametrize("executor,options,message", [
    ("ray", {"jobs": 2}, "executor option 'jobs' does not apply to --executor ray; it takes: address, "
                         "connect_timeout, cpus_per_task, gpus_per_task"),
    ("local", {"address": "auto"}, "executor option 'address' does not apply to --executor local; it takes: jobs"),
    ("submitit", {}, "--executor submitit: no Slurm here (sbatch not found)"),
    ("submitit", {"cluster": "local", "gpus_per_task": 0.5}, "--gpus-per-task 0.5: --executor submitit takes a "
                                                             "whole number of GPUs"),
])
def test_options_an_executor_does_not_take_are_refused(tmp_path, executor, options, message, monkeypatch):
    """Guards against an option silently ignored (--jobs with ray) or Slurm silently replaced."""
    pytest.importorskip(executor if executor != "local" else "bench")
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(UserError) as err:
        run(tmp_path / "run", executor=executor, options=options, tasks=["digits"], strategies=["knn"])
    assert str(err.value).startswith(message)
    assert not (tmp_path / "run" / "results.jsonl").exists() or \
        (tmp_path / "run" / "results.jsonl").read_text() == ""


def test_a_missing_cluster_package_is_one_line(tmp_path, monkeypatch):
    """Guards against a ModuleNotFoundError traceback when the extra is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)
    line = r"^--executor ray needs the 'ray' package; pip install 'transfer-bench\[ray\]'$"
    with pytest.raises(UserError, match=line):
        run(tmp_path / "run", executor="ray", tasks=["digits"], strategies=["knn"])


def test_flags_and_config_file_make_executor_options(tmp_path):
    """Guards against executor flags being dropped or mistyped on their way to RunConfig."""
    toml = tmp_path / "run.toml"
    toml.write_text('executor = "submitit"\nslurm_time = 30\nslurm_partition = "gpu"\n[executor_option]\nmem_gb = 16\n')
    args = build_parser().parse_args(["run", "-c", str(toml), "--slurm-partition", "a100", "--gpus-per-task", "2",
                                      "--executor-option", "cluster=local", "--cpus-per-task", "4"])
    cfg = run_config_from_args(args)
    assert cfg.executor == "submitit"
    assert cfg.executor_options == {"mem_gb": 16, "cluster": "local", "slurm_partition": "a100", "slurm_time": 30,
                                    "cpus_per_task": 4, "gpus_per_task": 2}
    args = build_parser().parse_args(["run", "--executor", "ray", "--address", "auto", "--gpus-per-task", "0.25"])
    assert run_config_from_args(args).executor_options == {"address": "auto", "gpus_per_task": 0.25}
    assert run_config_from_args(build_parser().parse_args(["run"])).executor_options == {}


@pytest.mark.parametrize("argv,line", [
    (["--jobs", "0"], "bench: error: --jobs '0': use a positive integer"),
    (["--jobs", "two"], "bench: error: --jobs 'two': use a positive integer"),
    (["--gpus-per-task", "-1"], "bench: error: --gpus-per-task '-1': use a number >= 0"),
    (["--executor-option", "cluster"], "bench: error: --executor-option 'cluster': expected KEY=VALUE"),
])
def test_bad_executor_flags_exit_2_with_one_line(argv, line):
    """Guards against tracebacks (or silently ignored values) for bad executor flags."""
    proc = run_cli("run", "--dry-run", "--tasks", "digits", "--encoders", "pixels", *argv)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(line), proc.stderr
    assert "Traceback" not in proc.stderr


def test_ray_without_a_cluster_at_the_address_is_one_line(tmp_path, monkeypatch):
    """Guards against a Ray ConnectionError traceback when --address finds no cluster (ray.init is
    replaced: whether ``auto`` finds one depends on what else runs on the machine)."""
    ray = pytest.importorskip("ray")
    from bench_plugins.executors import _ray

    def no_cluster(**kw):
        raise ConnectionError("Could not find any running Ray instance.\nmore")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(UserError) as err:
        _ray._connect("auto")
    assert str(err.value) == ("--address auto: no Ray cluster there (Could not find any running Ray instance.); "
                              "start one with `ray start --head`, or leave out --address to start a local instance")


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_at_an_unreachable_address_fails_at_once(tmp_path, monkeypatch):
    """Guards against Ray's own retry loop (minutes at 127.0.0.1:<closed port> before this check):
    a HOST:PORT that refuses is one line naming it, and ray.init is never reached."""
    ray = pytest.importorskip("ray")
    from bench_plugins.executors import _ray

    def must_not_connect(**kw):
        raise AssertionError("ray.init called for an unreachable address")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", must_not_connect)
    port = closed_port()
    with pytest.raises(UserError, match=rf"^--address 127.0.0.1:{port}: no Ray cluster reachable there within 5 s "
                                        r"\(connection refused\); check the head node's address and port"):
        _ray._connect(f"127.0.0.1:{port}", 5)
    with pytest.raises(UserError, match=r"^--executor-option connect_timeout=0: use a positive number of seconds$"):
        _ray._connect(f"127.0.0.1:{port}", 0)
    with pytest.raises(UserError, match=r"^--address 'head-node': use auto or HOST:PORT"):
        _ray._connect("head-node", 5)


def test_ray_at_a_closed_port_exits_2_with_one_line(tmp_path):
    """Guards against a traceback (or a minutes-long hang) from `bench run --executor ray --address HOST:PORT`."""
    pytest.importorskip("ray")
    port = closed_port()
    proc = run_cli("run", "--executor", "ray", "--address", f"127.0.0.1:{port}", "--executor-option",
                   "connect_timeout=3", "--tasks", "digits", "--encoders", "pixels", "--strategies", "knn",
                   "--budgets", "2", "--seeds", "1", "--no-contamination", "--forgetting", "off", "--no-progress",
                   "--out", str(tmp_path / "run"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"bench: error: --address 127.0.0.1:{port}: no Ray cluster")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("executor,options,parts", [
    ("local", {}, [("knn", "linear-probe", "finetune", "scratch")]),
    ("local", {"jobs": 2}, [("knn", "linear-probe"), ("finetune",), ("scratch",)]),
    ("ray", {}, [("knn", "linear-probe"), ("finetune",), ("scratch",)]),
])
def test_a_parallel_executor_gets_a_group_per_training_strategy(tmp_path, executor, options, parts):
    """Guards against one worker running all of an encoder's cells while the others idle (the
    default grid's EfficientNet-Lite0 cells were one group, so --jobs 2 used one core)."""
    cfg = RunConfig(encoders=["efficientnet-lite0"], strategies=["knn", "linear-probe", "finetune", "scratch"],
                    tasks=["digits"], budgets="1", seeds=1, out=tmp_path / "run", executor=executor,
                    executor_options=options)
    runner = Runner(cfg, load_plugins())
    runner.device = "cpu"
    groups = list(runner.groups(runner.plan().cells))
    assert [tuple(dict.fromkeys(c.strategy for c in g.cells)) for g in groups] == parts
    assert sum(len(g.cells) for g in groups) == 4 and {g.encoder for g in groups} == {"efficientnet-lite0"}
