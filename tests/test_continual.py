"""Continual learning on task streams (issue 16): GEM metrics, the stream runner, the continual
strategy contract, the leaderboard's continual table and the user mistakes of ``--stream``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bench
from bench.continual.spec import ContinualSpec, StreamInfo, gem_metrics
from bench.errors import UserError
from bench.plugins import load_plugins
from bench.run.plan import RunConfig
from bench.specs import EncoderSpec, TaskSpec

# -- a tiny stream: four classes, a bright square in one of four places ----------------------------


def _encoder(request):
    import torch
    from torch import nn

    from bench.encoders import Encoder

    torch.manual_seed(7)
    module = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    return Encoder(name="cl-cnn", module=module, feature_dim=32, input_size=request.resolution or 16,
                   pretrained=request.pretrained, weights="seed-7" if request.pretrained else None)


def _task(request):
    from bench.tasks import ArraySplit, TaskData

    rng = np.random.default_rng(0)

    def make(n, offset):
        images = rng.integers(0, 30, size=(n, 16, 16), dtype=np.uint8)
        labels = np.arange(n) % 4
        for i, c in enumerate(labels):
            r, col = [(1, 1), (1, 9), (9, 1), (9, 9)][c]
            images[i, r:r + 6, col:col + 6] = 255
        return ArraySplit([f"q/{offset + i}" for i in range(n)], images, labels)

    return TaskData(name=request.name, classes=["tl", "tr", "bl", "br"], train=make(80, 0), test=make(40, 80),
                    native_size=16)


class NearestMean:
    """A plugin-defined continual strategy: per-task class means of raw pixels (no torch)."""

    calls: list = []

    def begin(self, stream, ctx):
        NearestMean.calls.append(("begin", stream.name, stream.scenario, [t.name for t in stream.tasks],
                                  len(ctx.labelled)))
        self.means = {}

    def learn(self, task_index, ctx):
        x = np.stack(ctx.labelled.images(range(len(ctx.labelled)))).reshape(len(ctx.labelled), -1).astype(float)
        y = ctx.labelled.labels
        self.means[task_index] = np.stack([x[y == c].mean(0) for c in range(ctx.num_classes)])
        NearestMean.calls.append(("learn", task_index, ctx.task_name, len(ctx.labelled)))
        return {"seen": len(y)}

    def predict(self, task_index, split):
        with pytest.raises(AttributeError):
            split.labels  # noqa: B018 - test labels stay hidden from continual strategies too
        if task_index not in self.means:
            return np.zeros(len(split), dtype=int)
        x = np.stack(split.images(range(len(split)))).reshape(len(split), -1).astype(float)
        d = ((x[:, None, :] - self.means[task_index][None]) ** 2).sum(-1)
        return d.argmin(1)


class StreamFixture:
    @bench.hookimpl
    def bench_register_encoders(self):
        return [EncoderSpec(name="cl-cnn", description="tiny CNN", loader=_encoder)]

    @bench.hookimpl
    def bench_register_tasks(self):
        return [TaskSpec(name="quad", description="four corners", loader=_task, native_size=16),
                TaskSpec(name="quad-b", description="four corners again", loader=_task, native_size=16)]

    @bench.hookimpl
    def bench_register_strategies(self):
        return [ContinualSpec(name="nearest-mean", description="per-task class means", loader=NearestMean)]


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(extra=[("stream-fixture", StreamFixture())])


def _run(plugins, tmp_path, strategies, scenario="task", stream="split-quad", recipe=True, **opts):
    from bench.continual.driver import StreamRunner

    given = {"min_steps": 40, "max_steps": 40, "augment": "none", **opts} if recipe else {}
    options = [(None, k, v) for k, v in given.items()]
    cfg = RunConfig(encoders=["cl-cnn"], strategies=strategies, budgets="8", seeds=1, out=tmp_path / "run",
                    device="cpu", options=options, progress=False, stream=stream, stream_scenario=scenario)
    return StreamRunner(cfg, plugins, log=lambda m: None).run()


# -- GEM metrics --------------------------------------------------------------------------------------


def test_gem_metrics_on_a_hand_made_matrix():
    """ACC, BWT and FWT as Lopez-Paz & Ranzato define them (guards against off-by-one rows/columns)."""
    R = [[0.9, 0.1, 0.2], [0.5, 0.8, 0.3], [0.4, 0.6, 0.7]]
    m = gem_metrics(R, [0.1, 0.2, 0.3])
    assert m["acc"] == pytest.approx((0.4 + 0.6 + 0.7) / 3)
    assert m["bwt"] == pytest.approx(((0.4 - 0.9) + (0.6 - 0.8)) / 2)
    assert m["fwt"] == pytest.approx(((0.1 - 0.2) + (0.3 - 0.3)) / 2)
    assert gem_metrics([[0.5]], [0.2]) == {"acc": 0.5, "bwt": None, "fwt": None}
    with pytest.raises(ValueError):
        gem_metrics([[0.5, 0.1]], [0.1, 0.2])


def test_stream_info_offsets():
    from bench.views import TaskView

    info = StreamInfo("s", "class", (TaskView("a", ["x", "y"]), TaskView("b", ["z", "w", "v"])))
    assert info.offsets == (0, 2) and info.num_classes == 5


# -- the runner and the built-ins ---------------------------------------------------------------------


def test_finetune_forgets_and_rehearsal_and_joint_forget_less(plugins, tmp_path):
    """Class-incremental split stream: naive fine-tuning forgets the first task (its classes lose to
    the new head outputs), a replay buffer and joint training keep it (guards the whole loop: R, the
    per-task heads/offsets, the replay and joint data)."""
    recs = {r["strategy"]: r for r in _run(plugins, tmp_path, ["finetune", "rehearsal", "joint"], scenario="class")}
    assert {r["status"] for r in recs.values()} == {"ok"}
    ft, rh, jt = (recs[f"continual:{n}"]["metrics"] for n in ("finetune", "rehearsal", "joint"))
    for m in (ft, rh, jt):
        assert len(m["R"]) == 2 and len(m["R"][0]) == 2 and len(m["baseline"]) == 2
        assert m["acc"] == pytest.approx(np.mean(m["R"][-1]), abs=1e-6)
        assert m["bwt"] == pytest.approx(m["R"][1][0] - m["R"][0][0], abs=1e-6)
    assert ft["R"][0][0] >= 0.9  # it learned task 1 ...
    assert ft["bwt"] < -0.5  # ... and forgot it
    assert rh["bwt"] > ft["bwt"] + 0.3
    assert jt["bwt"] > ft["bwt"] + 0.3
    rec = recs["continual:finetune"]
    assert rec["record_type"] == "stream" and rec["schema"] == 2 and rec["cell_id"]
    assert rec["stream"]["tasks"] == ["quad/tl-tr", "quad/bl-br"] and rec["stream"]["scenario"] == "class"


def test_resume_skips_finished_stream_cells(plugins, tmp_path):
    """A second run on the same folder runs nothing (cell_id resume), a changed option runs again."""
    first = _run(plugins, tmp_path, ["finetune"], min_steps=5, max_steps=5)
    assert len(first) == 1
    assert _run(plugins, tmp_path, ["finetune"], min_steps=5, max_steps=5) == []
    assert len(_run(plugins, tmp_path, ["finetune"], min_steps=6, max_steps=6)) == 1


def test_a_plugin_defined_continual_strategy(plugins, tmp_path):
    """The contract: begin once with the stream and no labels, learn each task in order on its own
    budget, predict any task at any time; the harness scores R from the predictions."""
    NearestMean.calls.clear()
    (rec,) = _run(plugins, tmp_path, ["nearest-mean"], stream="quad,quad-b", recipe=False)
    assert NearestMean.calls == [("begin", "quad,quad-b", "task", ["quad", "quad-b"], 0),
                                 ("learn", 0, "quad", 32), ("learn", 1, "quad-b", 32)]
    m = rec["metrics"]
    assert rec["status"] == "ok" and rec["strategy"] == "nearest-mean"
    assert m["R"] == [[1.0, 0.25], [1.0, 1.0]] and m["baseline"] == [0.25, 0.25]
    assert m["bwt"] == 0.0 and m["fwt"] == 0.0 and m["acc"] == 1.0
    assert rec["info"] == [{"seen": 32}, {"seen": 32}]


def test_budgets_are_shared_manifests(plugins, tmp_path):
    """Every strategy of a (stream, budget, seed) reads the same manifest, one per stream task."""
    _run(plugins, tmp_path, ["nearest-mean"], recipe=False)
    files = sorted(p.relative_to(tmp_path / "run" / "manifests").as_posix()
                   for p in (tmp_path / "run" / "manifests").rglob("*.json"))
    assert files == ["quad_bl-br/8-per-class/seed0.json", "quad_tl-tr/8-per-class/seed0.json"]
    ids = json.loads((tmp_path / "run" / "manifests" / files[1]).read_text())["ids"]
    assert len(ids) == 16


# -- user mistakes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--stream", "split-nope"], "unknown task 'nope'"),
    (["--stream", "mnist5k"], "at least two tasks"),
    (["--stream", "split-mnist5k", "--strategies", "linear-probe"], "'linear-probe' is not a continual strategy"),
    (["--stream", "digits,mnist5k", "--stream-scenario", "class"], "use --stream-scenario task"),
    (["--strategies", "continual:ewc"], "add --stream"),
])
def test_stream_mistakes_are_one_line(argv, message, capsys, tmp_path):
    """Each mistake exits 2 with one line naming the value and the fix (never a traceback)."""
    from bench.cli import main

    assert main(["run", "--dry-run", "--out", str(tmp_path), "--encoders", "pixels", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_parse_stream_split_needs_four_classes(plugins):
    from bench.continual.spec import class_pairs

    assert class_pairs(10, "s") == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert class_pairs(5, "s") == [[0, 1], [2, 3, 4]]
    with pytest.raises(UserError, match="at least 4"):
        class_pairs(3, "split-toy")


# -- the leaderboard ----------------------------------------------------------------------------------


def _record(strategy, seed, R, baseline, status="ok"):
    from bench.continual.spec import gem_metrics

    return {"schema": 2, "record_type": "stream", "encoder": "e", "strategy": f"continual:{strategy}",
            "task": "split-x", "budget": "20/class", "seed": seed, "config_id": "default", "status": status,
            "stream": {"name": "split-x", "scenario": "task", "tasks": ["a", "b"]},
            "metrics": {**gem_metrics(R, baseline), "R": R, "baseline": baseline} if status == "ok" else {}}


def test_continual_table_from_hand_made_records(tmp_path):
    """ACC/BWT/FWT means and CIs over seeds in the continual table; stream records stay out of the
    task tables (guards against them appearing as a task row)."""
    from bench.report import tables as leaderboard
    from bench.report.stream import heatmap

    recs = [_record("finetune", 0, [[0.9, 0.5], [0.5, 0.9]], [0.5, 0.5]),
            _record("finetune", 1, [[0.9, 0.5], [0.7, 0.9]], [0.5, 0.5]),
            _record("joint", 0, [[0.9, 0.5], [0.9, 0.9]], [0.5, 0.5]),
            _record("joint", 1, [], [], status="failed")]
    board = leaderboard.aggregate(recs)
    assert board["tasks"] == {}
    rows = {r["strategy"]: r for r in board["streams"]}
    ft = rows["finetune"]
    assert ft["n"] == 2 and ft["acc"]["mean"] == pytest.approx(0.75) and ft["bwt"]["mean"] == pytest.approx(-0.3)
    assert ft["bwt"]["ci95"] == pytest.approx(12.706 * 0.1, rel=1e-3)  # t(0.975, 1) x sd/sqrt(2), sd = 0.1 x sqrt(2)
    assert ft["R"] == [[0.9, 0.5], [0.6, 0.9]]
    assert rows["joint"]["failed"] == 1 and rows["joint"]["bwt"]["ci95"] is None
    text = leaderboard.render(board)
    assert "Continual learning: split-x" in text
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]
    assert ["joint", "90.0", "+0.0", "+0.0", "1 (+1 failed)"] in cells
    assert ["finetune", "75.0 ± 63.5", "-30.0 ± 127.1", "+0.0 ± 0.0", "2"] in cells
    pytest.importorskip("matplotlib")
    assert heatmap(board, tmp_path / "R.png").stat().st_size > 1000
