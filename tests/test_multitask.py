"""Multi-task learning (issue 24): the weightings' equations on hand examples, the joint runner's
known answers on a tiny CNN (identical tasks, a shuffled-label auxiliary task), the paired gains,
the board section, local vs ``--jobs 2`` records, and the user mistakes of ``--multitask``."""

from __future__ import annotations

import numpy as np
import pytest

import bench
from bench.errors import UserError
from bench.multitask.spec import paired_gains
from bench.plugins import load_plugins
from bench.run import dispatch
from bench.run.plan import RunConfig
from bench.specs import TaskSpec
from tests.test_continual import StreamFixture, _task
from tests.test_run_modes import toy_site as toy_site  # the fixture

torch = pytest.importorskip("torch")

# -- the weightings on hand examples ------------------------------------------------------------------


def _impl():
    from bench_plugins.multitask import _weightings

    return _weightings


def test_pcgrad_projection_equals_the_hand_formula():
    """g1 = (1, 0), g2 = (-1, 1) conflict (g1 . g2 = -1): g1' = g1 + g2 / 2 = (0.5, 0.5),
    g2' = g2 + g1 = (0, 1); the sum is (0.5, 1.5). Agreeing gradients are left alone."""
    w = _impl()
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    assert w.pcgrad([g1, g2], [[1], [0]]).tolist() == pytest.approx([0.5, 1.5])
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 0.5])
    assert w.pcgrad([a, b], [[1], [0]]).tolist() == pytest.approx((a + b).tolist())
    # the strategy's combine() leaves exactly the projected sum on the shared parameter, and the plain loss as value
    W = torch.zeros(2, requires_grad=True)
    losses = [(g1 * W).sum() + 1.0, (g2 * W).sum() + 2.0]
    total = w.PCGrad(2, {}, seed=0).combine(losses, [W], W)
    assert float(total.detach()) == pytest.approx(3.0)
    total.backward()
    assert W.grad.tolist() == pytest.approx([0.5, 1.5])


def test_gradnorm_update_follows_its_equation_on_a_hand_example():
    """L1 = 3 W0 + 1, L2 = 4 W1 + 2 at W = (1, 0): ||grad_W L|| = (3, 4). Step 0 sets L(0) = (4, 2)
    (r = 1, 1): G = (3, 4), target mean(G) = 3.5, dL_grad/dw = (sign(3 - 3.5) 3, sign(4 - 3.5) 4)
    = (-3, 4). SGD at 0.1: w = (1.3, 0.6), renormalised to sum 2: (1.3, 0.6) * 2 / 1.9. Step 1 with
    L = (2, 2): rates (0.5, 1), r = (2/3, 4/3), G = (1.3 * 3, 0.6 * 4) * 2 / 1.9, target =
    mean(G) r ** 1.5; the weights' gradient is sign(G - target) * ||grad L||."""
    w = _impl()
    gn = w.GradNorm(2, {"gradnorm_alpha": 1.5}, seed=0)
    sgd = torch.optim.SGD(gn.parameters(), lr=0.1)
    W = torch.tensor([1.0, 0.0], requires_grad=True)
    losses = [3 * W[0] + 1, 4 * W[1] + 2]
    total = gn.combine(losses, [W], W)
    assert float(total.detach()) == pytest.approx(6.0)  # the weighted loss, w = (1, 1)
    total.backward()
    assert gn.w.grad.tolist() == pytest.approx([-3.0, 4.0])
    assert W.grad.tolist() == pytest.approx([3.0, 4.0])  # the network trains on sum w_i L_i
    sgd.step()
    gn.after_step()
    assert gn.weights() == pytest.approx([1.3 * 2 / 1.9, 0.6 * 2 / 1.9])
    sgd.zero_grad()
    w1, w2 = gn.weights()
    r = np.array([2 / 3, 4 / 3])
    G = np.array([w1 * 3, w2 * 4])
    target = G.mean() * r ** 1.5
    W2 = torch.tensor([1 / 3, 0.0], requires_grad=True)  # L1 = 2, L2 = 2
    gn.combine([3 * W2[0] + 1, 4 * W2[1] + 2], [W2], W2).backward()
    assert gn.w.grad.tolist() == pytest.approx((np.sign(G - target) * np.array([3, 4])).tolist())


def test_uncertainty_weighting_is_kendalls_classification_form():
    """sum exp(-s_i) L_i + s_i; dL/ds_i = 1 - exp(-s_i) L_i; the weight is exp(-s_i)."""
    w = _impl()
    u = w.Uncertainty(2, {}, seed=0)
    with torch.no_grad():
        u.log_vars.copy_(torch.tensor([0.5, -1.0]))
    losses = [torch.tensor(2.0), torch.tensor(0.3)]
    total = u.combine(losses, [], torch.zeros(1))
    assert float(total.detach()) == pytest.approx(np.exp(-0.5) * 2 + 0.5 + np.exp(1.0) * 0.3 - 1.0)
    total.backward()
    assert u.log_vars.grad.tolist() == pytest.approx([1 - np.exp(-0.5) * 2, 1 - np.exp(1.0) * 0.3])
    assert u.weights() == pytest.approx([np.exp(-0.5), np.exp(1.0)])


def test_paired_gains_and_delta_m():
    out = paired_gains({"a": 0.8, "b": 0.5}, {"a": 0.6, "b": 0.5})
    assert out["gains"] == {"a": pytest.approx(0.2), "b": 0.0}
    assert out["mean_gain"] == pytest.approx(0.1)
    assert out["delta_m"] == pytest.approx((0.2 / 0.6 + 0.0) / 2, abs=1e-6)  # rounded to 6 digits
    missing = paired_gains({"a": 0.8, "b": 0.5}, {"a": 0.6, "b": None})
    assert missing["gains"]["b"] is None and missing["mean_gain"] is None and missing["delta_m"] is None


# -- the joint runner on a tiny CNN -------------------------------------------------------------------


def _faint(request):
    """quad with its squares barely brighter than the background noise: learnable, not at once."""
    import dataclasses

    from bench.tasks import ArraySplit

    task = _task(request)

    def dim(split):
        images = np.stack(split.images(range(len(split))))
        return ArraySplit(list(split.ids), np.where(images == 255, 40, images).astype(np.uint8), split.labels)

    return dataclasses.replace(task, train=dim(task.train), test=dim(task.test))


def _shuffled(request):
    """faint quad's images with its labels permuted: nothing to learn."""
    import dataclasses

    from bench.tasks import ArraySplit

    task = _faint(request)
    rng = np.random.default_rng(1)

    def shuffle(split):
        return ArraySplit(list(split.ids), np.stack(split.images(range(len(split)))), rng.permutation(split.labels))

    return dataclasses.replace(task, train=shuffle(task.train), test=shuffle(task.test))


class MultitaskFixture(StreamFixture):
    """The continual tests' tiny CNN and four-corner task, plus a faint and a shuffled-label variant."""

    @bench.hookimpl
    def bench_register_tasks(self):
        return [TaskSpec(name="quad", description="four corners", loader=_task, native_size=16),
                TaskSpec(name="quad-b", description="four corners again", loader=_task, native_size=16),
                TaskSpec(name="quad-faint", description="four faint corners", loader=_faint, native_size=16),
                TaskSpec(name="quad-noise", description="four corners, labels shuffled", loader=_shuffled,
                         native_size=16)]


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(extra=[("multitask-fixture", MultitaskFixture())])


RECIPE = [(None, "min_steps", 60), (None, "max_steps", 60), (None, "augment", "none")]


def _run(plugins, out, tasks, strategies, **kw):
    cfg = RunConfig(encoders=["cl-cnn"], strategies=strategies, budgets="4", seeds=1, out=out, device="cpu",
                    options=list(RECIPE), progress=False, contamination=False, forgetting="off", multitask=tasks, **kw)
    return dispatch.driver(cfg, plugins, log=lambda m: None).run()


def test_two_identical_tasks_lose_nothing_to_joint_training(plugins, tmp_path):
    """The same task twice (same pool, so the same manifest): joint training sees the task's gradient
    twice per step, and Adam's update is invariant to that scale, so each task should match single-task
    fine-tuning; the tolerance is one test item in 40 (the heads' random inits differ)."""
    (rec,) = _run(plugins, tmp_path / "run", "quad,quad-b", ["equal"])
    assert rec["status"] == "ok" and rec["record_type"] == "multitask"
    tasks = rec["metrics"]["tasks"]
    assert rec["multitask"]["manifest_sha256"][0] == rec["multitask"]["manifest_sha256"][1]
    for name in ("quad", "quad-b"):
        assert tasks[name]["single_task_accuracy"] is not None
        assert tasks[name]["gain"] == pytest.approx(tasks[name]["accuracy"] - tasks[name]["single_task_accuracy"])
        assert tasks[name]["gain"] >= -1 / 40 - 1e-9
    assert rec["multitask"]["task_weights"]["final"] == [1.0, 1.0]
    assert rec["info"]["steps"] == 60 and rec["flags"] == []
    # the single-task finetune cells are the grid's own records in the same folder; a rerun reuses everything
    assert _run(plugins, tmp_path / "run", "quad,quad-b", ["equal"]) == []


def test_a_shuffled_label_task_transfers_negatively_and_uncertainty_gives_it_the_smaller_weight(plugins, tmp_path):
    """An auxiliary task with permuted labels pulls the shared encoder away from the faint main task
    (single-task finetune reaches 100% here); uncertainty weighting's log-variance rises on the task
    whose loss stays high, so its weight ends below the main task's."""
    run = _run(plugins, tmp_path / "run", "quad-faint,quad-noise", ["equal", "uncertainty"])
    recs = {r["strategy"]: r for r in run}
    equal, unc = recs["multitask:equal"], recs["multitask:uncertainty"]
    assert equal["metrics"]["tasks"]["quad-faint"]["gain"] < 0
    w_quad, w_noise = unc["multitask"]["task_weights"]["final"]
    assert w_noise < w_quad
    trajectory = unc["multitask"]["task_weights"]["trajectory"]
    assert trajectory[0] == {"step": 0, "weights": [1.0, 1.0]} and trajectory[-1]["step"] == 60
    at_chance = any(m["balanced_accuracy"] <= 1 / 4 + 0.05 for m in equal["metrics"]["tasks"].values())
    assert ("chance-level" in equal["flags"]) == at_chance


# -- the board ----------------------------------------------------------------------------------------


def test_the_multitask_section_gives_gains_with_cis_over_seeds():
    from bench.report import multitask
    from bench.report.runs import Runs

    def rec(seed, gain_a, gain_b, delta):
        tasks = {"a": {"accuracy": 0.5 + gain_a, "gain": gain_a}, "b": {"accuracy": 0.4 + gain_b, "gain": gain_b}}
        return {"record_type": "multitask", "task": "a,b", "encoder": "e", "strategy": "multitask:equal",
                "config_id": "default", "budget": "4/class", "seed": seed, "status": "ok",
                "metrics": {"tasks": tasks, "delta_m": delta, "mean_gain": (gain_a + gain_b) / 2},
                "multitask": {"tasks": ["a", "b"], "task_weights": {"final": [1.0, 1.0]}}}

    board = multitask.collect(Runs([rec(0, 0.1, -0.1, 0.05), rec(1, 0.3, -0.1, 0.15)]))
    (row,) = board["multitask"]
    assert row["per_task"]["a"]["gain"]["mean"] == pytest.approx(0.2)
    assert row["per_task"]["a"]["gain"]["ci95"] == pytest.approx(12.7062 * 0.1414214 / np.sqrt(2), rel=1e-4)
    assert row["delta_m"]["mean"] == pytest.approx(0.1)
    (title, headers, body), = multitask.tables(board)
    assert headers[:5] == ["weighting", "a acc", "a gain", "b acc", "b gain"]
    assert body[0][0] == "equal" and body[0][2] == "+20.0 ± 127.1" and body[0][4] == "-10.0 ± 0.0"


# -- mistakes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw,message", [
    ({"multitask": "quad"}, "--multitask 'quad': give at least two tasks separated by commas"),
    ({"multitask": "quad,quad"}, "--multitask 'quad,quad' lists a task twice"),
    ({"multitask": "quad,nope"}, "--multitask 'quad,nope': unknown task 'nope'"),
    ({"multitask": "quad,quad-b", "strategies": ["finetune"]}, "strategy 'finetune' is not a multi-task weighting"),
    ({"multitask": "quad,quad-b", "stream": "split-quad"}, "--multitask cannot be combined with --stream"),
    ({"strategies": ["multitask:equal"]}, "strategy 'multitask:equal' is a multi-task weighting: it trains several "
                                          "tasks jointly; add --multitask"),
])
def test_multitask_mistakes_are_one_line(plugins, tmp_path, kw, message):
    cfg = RunConfig(**{"encoders": ["cl-cnn"], "tasks": ["quad"], "out": tmp_path, **kw})
    with pytest.raises(UserError) as err:
        dispatch.driver(cfg, plugins)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


# -- executors ----------------------------------------------------------------------------------------


def test_multitask_records_are_identical_locally_and_with_two_jobs(toy_site, tmp_path):
    """Two groups (one per weighting) on a pool of two spawned workers, which find the toy plugin by
    entry point and rebuild the driver from the group's config: the same records as in-process."""
    def records(out, options):
        cfg = RunConfig(multitask="toy-blobs,digits", encoders=["toy-cnn"], strategies=["equal", "pcgrad"], budgets="1",
                        seeds=1, device="cpu", progress=False, resolution=16, contamination=False, forgetting="off",
                        options=[(None, "min_steps", 2), (None, "max_steps", 2), (None, "augment", "none")],
                        out=out, executor_options=options)
        recs = dispatch.driver(cfg, load_plugins(), log=lambda m: None).run()
        return {r["cell_id"]: (r["status"], r["metrics"], r["multitask"]) for r in recs}

    local, pooled = records(tmp_path / "local", {}), records(tmp_path / "jobs", {"jobs": 2})
    assert len(local) == 2 and {s for s, _, _ in local.values()} == {"ok"}
    assert pooled == local
