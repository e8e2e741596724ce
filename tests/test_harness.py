"""The harness end to end on tiny models: records, sharing, resume, failures, the probe, the cache."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import bench
from bench.cli import main
from bench.plugins import load_plugins
from bench.report import tables as leaderboard
from bench.run.plan import RunConfig
from bench.run.records import REQUIRED_FIELDS, ResultsFile
from bench.run.runner import Runner
from bench.specs import StrategySpec


@pytest.fixture
def plugins(with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    return load_plugins()


def toy_config(tmp_path, **kw) -> RunConfig:
    base = dict(encoders=["toy-cnn"], strategies=["toy-centroid", "linear-probe"], tasks=["toy-blobs"],
                budgets="2,5", seeds=2, out=tmp_path / "run", device="cpu", progress=False, forgetting="off")
    base.update(kw)
    return RunConfig(**base)


def read(path):
    return [json.loads(line) for line in (path / "results.jsonl").read_text().splitlines()]


def test_records_carry_the_contract_fields(tmp_path, plugins):
    Runner(toy_config(tmp_path), plugins).run()
    records = read(tmp_path / "run")
    assert len(records) == 2 * 2 * 2
    for r in records:
        assert set(REQUIRED_FIELDS) <= set(r)
        assert r["status"] == "ok" and r["error"] is None and r["schema"] == 2 and r["protocol"] == 3
        assert len(r["cell_id"]) == 16 and len(r["config_digest"]) == 16
        assert 0.0 <= r["metrics"]["accuracy"] <= 1.0 and "balanced_accuracy" in r["metrics"]
        assert r["device"] == "cpu" and r["versions"]["transfer-bench"] == bench.__version__
        assert r["budget"] in ("2/class", "5/class") and r["n_labelled"] == int(r["budget"][0]) * 3
    # the toy task is easy: a bright square in a corner
    assert max(r["metrics"]["accuracy"] for r in records) >= 0.9


def test_budget_manifest_is_shared_across_encoders_and_strategies(tmp_path, plugins):
    Runner(toy_config(tmp_path, encoders=["toy-cnn", "pixels"]), plugins).run()
    records = read(tmp_path / "run")
    by_cell: dict[tuple, set] = {}
    for r in records:
        by_cell.setdefault((r["budget"], r["seed"]), set()).add(r["manifest_sha256"])
    assert len(by_cell) == 4 and all(len(v) == 1 for v in by_cell.values())
    assert by_cell[("2/class", 0)] != by_cell[("2/class", 1)]
    manifest = json.loads((tmp_path / "run/manifests/toy-blobs/2-per-class/seed0.json").read_text())
    task = plugins.tasks.get("toy-blobs").load(bench.TaskRequest(name="toy-blobs"))
    assert not set(manifest["ids"]) & set(task.test.ids)


def test_linear_probe_matches_scikit_learn_on_the_same_features(tmp_path, with_plugins, monkeypatch):
    """pixels on digits: the features are the 8x8 images themselves, so the reference can be
    computed from scikit-learn's own copy of the data, independently of the harness."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    cfg = RunConfig(encoders=["pixels"], strategies=["linear-probe"], tasks=["digits"], budgets="10", seeds=1,
                    out=tmp_path / "run", device="cpu", progress=False, forgetting="off", contamination=False)
    Runner(cfg, load_plugins()).run()
    [rec] = read(tmp_path / "run")
    manifest = json.loads((tmp_path / "run/manifests/digits/10-per-class/seed0.json").read_text())
    d = load_digits()
    x = (np.round(d.images * 255 / 16) / 255 * 2 - 1).reshape(len(d.images), -1)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    train = [int(i.split("/")[1]) for i in manifest["ids"]]
    from bench_plugins.tasks.digits import load_digits_task

    test = [int(i.split("/")[1]) for i in load_digits_task(None).test.ids]
    ref = LogisticRegression(C=10.0, max_iter=2000).fit(x[train], d.target[train]).score(x[test], d.target[test])
    assert abs(rec["metrics"]["accuracy"] - ref) <= 0.01
    assert rec["metrics"]["accuracy"] > 0.7


def test_resume_runs_only_missing_cells(tmp_path, plugins):
    cfg = toy_config(tmp_path)
    first = Runner(cfg, plugins).run()
    path = tmp_path / "run/results.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")  # as if interrupted three cells before the end
    again = Runner(cfg, plugins).run()
    assert len(again) == 3
    assert {(r["strategy"], r["budget"], r["seed"]) for r in again} == {
        (r["strategy"], r["budget"], r["seed"]) for r in first[-3:]}
    assert len(read(tmp_path / "run")) == len(first)
    assert Runner(cfg, plugins).run() == []  # nothing left


@pytest.mark.parametrize("retry_failed", [False, True])
def test_a_resume_scanned_in_a_process_runs_what_the_serial_scan_runs(tmp_path, plugins, monkeypatch, retry_failed):
    """Above the size threshold the scan runs beside planning (bench.run.scan.ScanJob): the same cells run,
    and a skipped (incompatible) cell that is already recorded is not recorded again."""
    import shutil

    import bench.run.scan as scan_module
    from bench.run.folder import RunFolder

    cfg = toy_config(tmp_path, encoders=["toy-cnn", "pixels"], strategies=["toy-centroid", "finetune"])
    first = Runner(cfg, plugins).run()
    assert {r["status"] for r in first} == {"ok", "skipped"}  # pixels cannot be fine-tuned
    path = tmp_path / "run/results.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0]["status"] == "skipped" and records[-4]["status"] == "ok"
    records[-4].update(status="failed", error="boom")  # one cell to retry
    # one skip record lost and three cells never finished
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records[1:-3]))
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    jobs = []
    start = RunFolder.start_scan
    monkeypatch.setattr(RunFolder, "start_scan", lambda self: jobs.append(start(self)) or jobs[-1])

    def rerun(out, background_bytes):
        monkeypatch.setattr(scan_module, "BACKGROUND_BYTES", background_bytes)
        again = Runner(toy_config(tmp_path, out=tmp_path / out, encoders=cfg.encoders, strategies=cfg.strategies,
                                  retry_failed=retry_failed), plugins).run()
        return sorted((r["cell_id"], r["status"]) for r in again)

    serial, background = rerun("run", 2**40), rerun("copy", 0)
    assert [job.background for job in jobs] == [False, True]
    expected = [(records[-4]["cell_id"], "ok")] + ([] if retry_failed else [
        (records[0]["cell_id"], "skipped"), *((r["cell_id"], "ok") for r in records[-3:])])
    assert serial == background == sorted(expected)


def test_interrupted_run_keeps_finished_cells_and_resumes(tmp_path, plugins):
    seen = []

    class Interrupt:
        @staticmethod
        @bench.hookimpl
        def bench_cell_finished(record):
            seen.append(record)
            if len(seen) == 3:
                raise KeyboardInterrupt

    cfg = toy_config(tmp_path)
    p = load_plugins(extra=[("interrupt", Interrupt)])
    with pytest.raises(KeyboardInterrupt):
        Runner(cfg, p).run()
    assert len(read(tmp_path / "run")) == 3
    rest = Runner(cfg, plugins).run()
    assert len(rest) == 5 and len(read(tmp_path / "run")) == 8


class Exploding:
    def fit(self, ctx):
        raise RuntimeError(f"boom at budget of {len(ctx.labelled)}")


class FailingPlugin:
    @staticmethod
    @bench.hookimpl
    def bench_register_strategies():
        return [StrategySpec(name="explode", description="always fails", loader=lambda: Exploding(), kind="features")]


def test_failed_cell_is_recorded_and_the_grid_goes_on(tmp_path, with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    p = load_plugins(extra=[("failing", FailingPlugin)])
    Runner(toy_config(tmp_path, strategies=["explode", "toy-centroid"]), p).run()
    records = read(tmp_path / "run")
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 4 and len(records) == 8
    assert failed[0]["error"] == "RuntimeError: boom at budget of 6"
    # failed cells are tried again on resume; finished ones are not
    again = Runner(toy_config(tmp_path, strategies=["explode", "toy-centroid"]), p).run()
    assert len(again) == 4 and all(r["strategy"] == "explode" for r in again)


def test_incompatible_cells_are_skipped_with_the_reason(tmp_path, plugins):
    cfg = toy_config(tmp_path, encoders=["pixels"], strategies=["finetune"], budgets="2", seeds=1)
    Runner(cfg, plugins).run()
    [r] = read(tmp_path / "run")
    assert r["status"] == "skipped"
    assert r["error"] == "finetune needs pre-trained weights, and pixels has none"


def test_training_cells_count_parameters_and_follow_the_step_schedule(tmp_path, plugins):
    cfg = toy_config(tmp_path, strategies=["scratch", "finetune"], budgets="2", seeds=1)
    Runner(cfg, plugins).run()
    records = {r["strategy"]: r for r in read(tmp_path / "run")}
    hand = (3 * 8 * 3 * 3 + 8) + (8 * 3 + 3)  # conv + 3-class head
    for r in records.values():
        assert r["status"] == "ok", r["error"]
        assert r["trainable_params"] == hand == r["total_params"] and r["trainable_share"] == 1.0
        assert r["info"]["steps"] == 50 and r["info"]["batch_size"] == 6  # min_steps; batch = budget size
    assert records["finetune"]["config"]["head_lr_mult"] == 10.0
    assert records["scratch"]["config"]["freeze_bn"] is False


def test_strategy_options_are_recorded_and_keyed(tmp_path, plugins):
    cfg = toy_config(tmp_path, strategies=["finetune"], budgets="2", seeds=1,
                     options=[("finetune", "min_steps", 3), ("finetune", "epochs", 1), (None, "layer_decay", 0.5)])
    Runner(cfg, plugins).run()
    [r] = read(tmp_path / "run")
    assert r["info"]["steps"] == 3 and r["config"]["layer_decay"] == 0.5
    assert r["config_id"] == "epochs=1,layer_decay=0.5,min_steps=3"
    board = leaderboard.aggregate(read(tmp_path / "run"))
    assert board["tasks"]["toy-blobs"]["rows"][0]["strategy"] == "finetune[epochs=1,layer_decay=0.5,min_steps=3]"


def test_feature_cache_is_reused_and_keyed_by_content(tmp_path, plugins):
    from bench.run.features import FeatureCache
    from bench.specs import EncoderRequest, TaskRequest

    task = plugins.tasks.get("toy-blobs").load(TaskRequest(name="toy-blobs"))
    enc = plugins.encoders.get("toy-cnn").load(EncoderRequest(name="toy-cnn"))
    cache = FeatureCache(tmp_path / "cache")
    a = cache.get(enc, task.test)
    b = cache.get(enc, task.test)
    assert cache.misses == 1 and cache.hits == 1 and np.array_equal(a, b)
    enc.module[0].weight.data.add_(0.1)  # new weights
    enc._fingerprint = None
    cache.get(enc, task.test)
    enc.input_size = 20  # other preprocessing
    enc._fingerprint = None
    cache.get(enc, task.test)
    assert cache.misses == 3 and cache.images_encoded == 3 * len(task.test)


def test_leaderboard_mean_ci_and_paired_head_start():
    def rec(strategy, seed, acc):
        return {"schema": 1, "encoder": "e", "strategy": strategy, "task": "t", "budget": "5/class", "seed": seed,
                "config_id": "default", "status": "ok", "metrics": {"accuracy": acc}, "trainable_share": 1.0,
                "trainable_params": 10, "wall_s": 1.0, "peak_mem_mb": 1.0}

    records = [rec("finetune", s, a) for s, a in enumerate([0.5, 0.6, 0.7])]
    records += [rec("scratch", s, a) for s, a in enumerate([0.4, 0.4, 0.6])]
    board = leaderboard.aggregate(records)
    rows = {r["strategy"]: r for r in board["tasks"]["t"]["rows"]}
    acc = rows["finetune"]["budgets"]["5/class"]["accuracy"]
    assert math.isclose(acc["mean"], 0.6)
    assert math.isclose(acc["ci95"], 4.302653 * 0.1 / math.sqrt(3), rel_tol=1e-5)
    hs = rows["finetune"]["budgets"]["5/class"]["head_start"]
    assert math.isclose(hs["mean"], (0.1 + 0.2 + 0.1) / 3) and hs["n"] == 3
    text = leaderboard.render(board, "github")
    assert "60.0 ± 24.8" in text and "+13.3 ± " in text
    for fmt in ("html", "csv", "latex", "json"):
        assert "60.0" in leaderboard.render(board, fmt) or '"mean": 0.6' in leaderboard.render(board, fmt)


def test_results_file_round_trip_and_latest_wins(tmp_path):
    rf = ResultsFile(tmp_path / "results.jsonl")
    rf.append({"encoder": "e", "strategy": "s", "task": "t", "budget": "1/class", "seed": 0, "config_id": "default",
               "status": "failed"})
    rf.append({"encoder": "e", "strategy": "s", "task": "t", "budget": "1/class", "seed": 0, "config_id": "default",
               "status": "ok"})
    assert rf.done_keys() == {("e", "s", "t", "1/class", 0, "default")}
    assert rf.done_ids() == set()  # schema-1 records (no cell_id) never count as done
    from bench.run.records import latest

    assert [r["status"] for r in latest(rf.load())] == ["ok"]


def test_dry_run_prints_grid_and_skips(with_plugins, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    code = main(["run", "--dry-run", "--encoders", "toy-cnn,pixels", "--strategies", "finetune", "--tasks",
                 "toy-blobs", "--budgets", "2", "--seeds", "1", "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0
    assert "grid: 1 cells to run, 1 skipped" in out
    assert "skip  toy-blobs | pixels | finetune | 2/class | seed 0: finetune needs pre-trained weights" in out
    assert not (tmp_path / "r/results.jsonl").exists()


def test_config_file_gives_the_same_options(with_plugins, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    cfg = tmp_path / "run.toml"
    cfg.write_text('encoders = ["toy-cnn"]\nstrategies = "toy-centroid"\ntasks = ["toy-blobs"]\nbudgets = "3"\n'
                   f'seeds = 1\nout = "{tmp_path / "out"}"\nforgetting = "off"\n')
    assert main(["run", "-c", str(cfg), "--no-progress"]) == 0
    [r] = read(tmp_path / "out")
    assert (r["strategy"], r["budget"], r["seed"]) == ("toy-centroid", "3/class", 0)
    assert "| toy-cnn" in capsys.readouterr().out  # the leaderboard is printed


def test_observer_hook_receives_every_record(tmp_path, plugins, monkeypatch):
    log = tmp_path / "toy.log"
    monkeypatch.setenv("TOY_LOG", str(log))
    Runner(toy_config(tmp_path, budgets="2", seeds=1), plugins).run()
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert sorted(line[1] for line in lines) == ["linear-probe", "toy-centroid"]


class ReverseExecutor:
    """A third-party executor: runs cells last-first (records may arrive in any order)."""

    ran: list = []

    def run(self, cells, run_cell):
        for cell in reversed(list(cells)):
            ReverseExecutor.ran.append(cell.key())
            yield run_cell(cell)


class ExecutorPlugin:
    @staticmethod
    @bench.hookimpl
    def bench_register_executors():
        from bench.specs import ExecutorSpec

        return [ExecutorSpec(name="reverse", description="last cell first", loader=lambda: ReverseExecutor())]


def test_plugin_executor_runs_the_cells(tmp_path, with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    p = load_plugins(extra=[("reverse", ExecutorPlugin)])
    ReverseExecutor.ran.clear()
    with pytest.warns(DeprecationWarning, match=r"run\(cells, run_cell\)"):
        Runner(toy_config(tmp_path, executor="reverse", budgets="2", seeds=2), p).run()
    records = read(tmp_path / "run")
    assert [(r["strategy"], r["seed"]) for r in records] == [("linear-probe", 1), ("linear-probe", 0),
                                                             ("toy-centroid", 1), ("toy-centroid", 0)]
    assert len(ReverseExecutor.ran) == 4 and ReverseExecutor.ran[0][3:5] == ("2/class", 1)
    assert all(r["status"] == "ok" for r in records)


class DuplicatePlugin:
    """toy-dup: toy-blobs whose first 3 test images are exact copies of train images."""

    @staticmethod
    @bench.hookimpl
    def bench_register_tasks():
        from bench.specs import TaskSpec

        def load(request):
            from bench.tasks import ArraySplit

            base = request.resolve("toy-blobs")
            images = np.stack(base.test.images(range(len(base.test))))
            images[:3] = np.stack(base.train.images([0, 1, 2]))
            labels = base.test.labels.copy()
            labels[:3] = base.train.labels[:3]
            base.test = ArraySplit(base.test.ids, images, labels)
            return base

        return [TaskSpec(name="toy-dup", description="toy with leaked test items", loader=load,
                         dataset=("toy-pretraining",))]


def test_contamination_is_scored_and_flagged_on_the_leaderboard(tmp_path, with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    p = load_plugins(extra=[("dup", DuplicatePlugin)])
    Runner(toy_config(tmp_path, tasks=["toy-dup"], strategies=["toy-centroid"], budgets="2", seeds=1), p).run()
    [r] = read(tmp_path / "run")
    assert r["metrics"]["overlap_rate"] == pytest.approx(3 / 30)
    assert r["contamination"]["overlap_count_exact"] == 3
    correct = r["metrics"]["accuracy"] * 30
    assert r["metrics"]["accuracy_clean"] * 27 == pytest.approx(correct - r["contamination"]["accuracy_overlap"] * 3)
    assert r["flags"] == ["declared-overlap:toy-pretraining (in toy-pretraining)", "overlap>1%"]
    text = leaderboard.render(leaderboard.aggregate([r]), "github")
    assert "toy-cnn [declared-overlap:" in text and "accuracy % on Clean test items" in text


def test_check_and_index_commands(tmp_path, with_plugins, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    assert main(["check", "toy-blobs", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "toy-blobs" and report["sizes"]["test"] == 30
    folder = tmp_path / "corpus"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    assert main(["index", "build", str(folder), "-o", str(tmp_path / "corpus.idx"), "--no-progress"]) == 0
    assert "3 images hashed" in capsys.readouterr().err


def test_auto_resolution_for_tasks_mixing_image_sizes(plugins, tmp_path):
    from bench.tasks import ArraySplit, TaskData

    runner = Runner(toy_config(tmp_path), plugins)
    small = ArraySplit(["a"], np.zeros((1, 8, 8), np.uint8), [0])
    big = ArraySplit(["b"], np.zeros((1, 28, 28), np.uint8), [0])
    mixed = TaskData(name="mix", classes=["x"], train=big, test=big, target_train=small, target_test=small)
    cnn = {"flexible_resolution": True, "input_size": 224}
    assert runner.resolution_for(cnn, mixed) == 64  # 28 px rounds up to 32, at least 64
    huge = ArraySplit(["c"], np.zeros((1, 300, 300), np.uint8), [0])
    assert runner.resolution_for(cnn, TaskData(name="h", classes=["x"], train=huge, test=huge)) == 224
    assert runner.resolution_for({"input_size": 224}, mixed) is None  # ViTs keep their own size


def test_per_encoder_resolution_reaches_each_encoders_cells(plugins, tmp_path):
    """``--resolution pixels=12,efficientnet-lite0-random=96``: each encoder's own side, in its records'
    identity and encoder_info (an encoder not named keeps auto)."""
    from bench.run.compatibility import parse_resolution

    cfg = toy_config(tmp_path, encoders=["pixels", "efficientnet-lite0-random"], strategies=["linear-probe"],
                     budgets="1", seeds=1, contamination=False)
    cfg.resolution = parse_resolution("pixels=12,efficientnet-lite0-random=96")
    records = Runner(cfg, plugins).run()
    sides = {r["encoder"]: (r["encoder_info"]["resolution"], r["config_summary"]["encoder.input_size"])
             for r in records}
    assert sides == {"pixels": (12, 12), "efficientnet-lite0-random": (96, 96)}
    cfg.resolution = parse_resolution("160,pixels=12")  # a default side, then an override
    runner = Runner(cfg, plugins)
    cnn = {"flexible_resolution": True, "input_size": 224}
    assert runner.resolution_for(cnn, runner.load_task("toy-blobs"), "efficientnet-lite0-random") == 160
    assert runner.resolution_for(cnn, runner.load_task("toy-blobs"), "pixels") == 12


def test_the_forgetting_pass_is_timed_in_the_record(tmp_path, with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    p = load_plugins(extra=[("dup", DuplicatePlugin)])
    cfg = toy_config(tmp_path, strategies=["finetune"], budgets="2", seeds=1, forgetting="toy-dup",
                     contamination=False, options=[(None, "min_steps", 2), (None, "max_steps", 2)])
    Runner(cfg, p).run()
    [r] = read(tmp_path / "run")
    assert r["status"] == "ok", r["error"]
    seconds = r["forgetting"]["forgetting_s"]
    assert isinstance(seconds, float) and 0.0 < seconds < 60.0 and round(seconds, 3) == seconds
    assert r["metrics"]["reference_drop"] == r["forgetting"]["reference_drop"]
