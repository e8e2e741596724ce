"""Meta-learning on the episode protocol: the base/novel class split, what meta-training sees, and
the known answers of ProtoNet's loss, MAML's inner step and Reptile's outer update."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.encoders import Encoder, encode
from bench.episodes.classes import class_split
from bench.episodes.meta import ADAPT, head_features, head_logits, inner_sgd, prototypical_loss, training_episodes
from bench.episodes.spec import EpisodeSpec, meta_train, run_episode, sample_episodes
from bench.errors import UserError
from bench.strategies import FitContext
from bench.tasks import ArraySplit, TaskData
from bench.views import LabelledSplit
from bench_plugins.strategies._fomaml import fomaml_loss
from bench_plugins.strategies._protonet import ProtoNet
from bench_plugins.strategies._prototype import Prototype
from bench_plugins.strategies._reptile import Reptile


def toy_task(n_classes=8, per_class=12, novel=()) -> TaskData:
    labels = np.repeat(np.arange(n_classes), per_class)
    images = np.zeros((len(labels), 4, 4, 1), dtype=np.uint8)
    return TaskData(name="toy", classes=[f"c{i}" for i in range(n_classes)],
                    train=ArraySplit([f"r{i}" for i in range(len(labels))], images, labels),
                    test=ArraySplit([f"t{i}" for i in range(len(labels))], images.copy(), labels.copy()),
                    novel_classes=tuple(novel))


def context(**config):
    return {"config": config, "seed": 0, "device": "cpu", "load_encoder": None, "encoder_meta": None,
            "progress": lambda m: None}


def label_features(split):
    return np.asarray(split.labels, dtype=np.float32)[:, None]


def test_derived_class_split_is_seeded_disjoint_and_half_novel():
    """Guards the derived split: ceil(C/2) novel classes, base and novel disjoint and covering every
    class, the same for the same content and seed, another for another seed; a declared split wins."""
    task = toy_task(9)
    a, b = class_split(task, 0), class_split(toy_task(9), 0)
    assert a == b and not a.declared and len(a.novel) == 5 and len(a.base) == 4
    assert sorted(a.base + a.novel) == list(range(9))
    assert {class_split(task, s).novel for s in range(6)} != {a.novel}
    declared = class_split(toy_task(novel=("c6", "c2")), 3)
    assert declared.novel == (2, 6) and declared.declared and declared.base == (0, 1, 3, 4, 5, 7)
    assert declared.record(toy_task().classes)["novel_classes"] == ["c2", "c6"]
    with pytest.raises(UserError, match="not among its classes"):
        class_split(toy_task(novel=("c9",)), 0)
    with pytest.raises(UserError, match="every class novel"):
        class_split(toy_task(2, novel=("c0", "c1")), 0)


def test_episodes_never_mix_base_and_novel_classes():
    """Guards the evaluation rule: every episode's classes, support and query items are novel only."""
    task = toy_task(10)
    split = class_split(task, 1)
    eps = sample_episodes(task.test.labels, task.test.ids, EpisodeSpec(3, 2, 3, 40), 1, among=split.novel)
    labels = np.asarray(task.test.labels)
    assert set(eps.classes.ravel()) <= set(split.novel)
    assert set(labels[eps.support.ravel()]) | set(labels[eps.query.ravel()]) <= set(split.novel)
    with pytest.raises(UserError, match="5 novel classes with at least K\\+Q = 5 items, fewer than N = 6"):
        sample_episodes(task.test.labels, task.test.ids, EpisodeSpec(6, 2, 3, 4), 1, among=split.novel)


def test_no_novel_item_reaches_meta_training():
    """Guards the meta-training rule, by item id: meta_train's context holds exactly the train
    split's base-class items (relabelled 0..B-1, base class names), features answer for them only."""
    task = toy_task(8)
    split = class_split(task, 0)
    seen = {}

    class Spy:
        def meta_train(self, ctx):
            seen.update(ids=list(ctx.labelled.ids), labels=list(ctx.labelled.labels), classes=ctx.classes,
                        features=ctx.features(ctx.labelled)[:, 0].tolist(), episode=ctx.extra["episode"])
            return "state"

    assert meta_train(Spy(), task, label_features, context(), split, EpisodeSpec(3, 1, 2, 5)) == "state"
    train_labels = np.asarray(task.train.labels)
    base_ids = {task.train.ids[i] for i in np.flatnonzero(np.isin(train_labels, split.base))}
    novel_ids = {task.train.ids[i] for i in np.flatnonzero(np.isin(train_labels, split.novel))}
    assert set(seen["ids"]) == base_ids and not set(seen["ids"]) & novel_ids
    assert seen["classes"] == [f"c{c}" for c in split.base] and set(seen["labels"]) == set(range(len(split.base)))
    assert set(seen["features"]) == {float(c) for c in split.base}  # the real labels behind the base items
    assert (seen["episode"]["n_way"], seen["episode"]["k_shot"], seen["episode"]["q_query"]) == (3, 1, 2)


def test_protonet_loss_equals_a_hand_computation_on_2_way_1_shot():
    """Guards Snell et al.'s loss: logits are minus squared distances to the class means."""
    zs, zq = torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.tensor([[0.5, 0.0], [2.0, 1.0]])
    loss = prototypical_loss(zs, torch.tensor([0, 1]), zq, torch.tensor([0, 1]), 2)
    # query 0: distances 0.25 and 2.25, true class 0; query 1: distances 5 and 1, true class 1
    hand = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-4.0))) / 2
    assert float(loss) == pytest.approx(hand, rel=1e-6)


def hand_params():
    g = torch.Generator().manual_seed(0)
    return {"A": torch.randn(2, 2, generator=g) * 0.1, "W": torch.randn(2, 2, generator=g),
            "b": torch.tensor([0.1, -0.2])}


def test_maml_inner_step_changes_only_the_adapted_parameters_and_is_a_hand_sgd_step():
    """Guards the inner loop: with ``adapt=head`` the block A is the same tensor, bit for bit; W and
    b move by one SGD step of the cross-entropy, (p - y)^T h / n by hand."""
    params = hand_params()
    frozen = params["A"].clone()
    x, y, lr = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]), torch.tensor([0, 1, 1]), 0.5
    out = inner_sgd(params, x, y, lr, 1, ADAPT["head"])
    assert torch.equal(out["A"], frozen) and torch.equal(params["A"], frozen)
    h = x + x @ params["A"].T
    p = torch.softmax(h @ params["W"].T + params["b"], 1) - F.one_hot(y, 2)
    assert torch.allclose(out["W"], params["W"] - lr * p.T @ h / 3, atol=1e-6)
    assert torch.allclose(out["b"], params["b"] - lr * p.mean(0), atol=1e-6)
    everything = inner_sgd(params, x, y, lr, 1, ADAPT["all"])
    assert not torch.equal(everything["A"], frozen) and torch.allclose(everything["W"], out["W"])


def test_fomaml_outer_gradient_is_the_query_gradient_at_the_adapted_weights():
    """Guards the first-order rule: d(query loss)/d(theta) equals the gradient of the query loss at phi."""
    params = {k: v.clone().requires_grad_(True) for k, v in hand_params().items()}
    xs, ys = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1])
    xq, yq = torch.tensor([[1.0, 0.5], [0.2, 1.0]]), torch.tensor([0, 1])
    fomaml_loss(params, xs, ys, xq, yq, 0.5, 2, ADAPT["all"]).backward()
    phi = {k: v.clone().requires_grad_(True) for k, v in inner_sgd(params, xs, ys, 0.5, 2, ADAPT["all"]).items()}
    F.cross_entropy(head_logits(phi, xq), yq).backward()
    for k in params:
        assert torch.allclose(params[k].grad, phi[k].grad, atol=1e-6), k


def toy_ctx(task, split, features, config, spec=EpisodeSpec(2, 1, 2, 3)):
    """The context meta-training receives (through the protocol's own meta_train)."""
    holder = {}

    class Capture:
        def meta_train(self, ctx):
            holder["ctx"] = ctx

    meta_train(Capture(), task, features, context(**config), split, spec)
    return holder["ctx"]


def test_reptile_outer_update_is_theta_plus_eps_times_phi_minus_theta():
    """Guards Reptile's outer step on one meta-training step: theta (zero at the start) becomes
    theta + eps (phi - theta), phi the inner SGD steps on the episode's support and query items."""
    task = toy_task(6)
    split = class_split(task, 0)

    def features(s):  # two distinct features per class
        y = np.asarray(s.labels, dtype=np.float32)
        return np.stack([np.cos(y), np.sin(y) + 0.01 * np.arange(len(y))], 1)

    config = {"meta_steps": 1, "meta_query": 2, "inner_steps": 3, "inner_lr": 0.2, "outer_lr": 0.25,
              "feature_scale": 10.0, "adapt": "all"}
    ctx = toy_ctx(task, split, features, config)
    head = Reptile().meta_train(ctx)
    eps = training_episodes(ctx.labelled, ctx.extra["episode"], 2, 1, 0)
    x = head_features(ctx.features(ctx.labelled), 10.0)
    items = np.concatenate([eps.support[0], eps.query[0]])
    y = torch.tensor([0, 1, 0, 0, 1, 1])  # support (one per class), then query (two per class)
    theta = {"A": torch.zeros(2, 2), "W": torch.zeros(2, 2), "b": torch.zeros(2)}
    phi = inner_sgd(theta, x[items], y, 0.2, 3, ADAPT["all"])
    for k in theta:
        assert torch.allclose(head.params[k], theta[k] + 0.25 * (phi[k] - theta[k]), atol=1e-6), k
    assert head.info["steps"] == 1 and float(head.params["W"].abs().sum()) > 0


SIGNAL, NOISE = (0, 1), (4, 5)  # flat pixel positions of channel 0 in a 4x4 image


def planted_task(seed=0, per_class=20, n_classes=8):
    """Class c sits at angle 2 pi c / 8 in two signal pixels; two other pixels are loud noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)

    def images(labels):
        img = np.zeros((len(labels), 16), dtype=np.float64)
        angle = 2 * np.pi * labels / n_classes
        img[:, SIGNAL[0]] = 128 + 90 * np.cos(angle) + rng.normal(0, 4, len(labels))
        img[:, SIGNAL[1]] = 128 + 90 * np.sin(angle) + rng.normal(0, 4, len(labels))
        img[:, list(NOISE)] = rng.uniform(0, 255, (len(labels), 2))
        return np.clip(img, 0, 255).astype(np.uint8).reshape(-1, 4, 4, 1)

    return TaskData(name="planted", classes=[f"c{i}" for i in range(n_classes)],
                    train=ArraySplit([f"r{i}" for i in range(len(labels))], images(labels), labels),
                    test=ArraySplit([f"t{i}" for i in range(len(labels))], images(labels), labels),
                    novel_classes=("c1", "c3", "c5", "c7"))


def planted_encoder():
    """A linear encoder that scales the signal pixels down (x0.02) and passes the noise (x1)."""
    torch.manual_seed(0)
    linear = nn.Linear(48, 4, bias=False)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[0, SIGNAL[0]], linear.weight[1, SIGNAL[1]] = 0.02, 0.02
        linear.weight[2, NOISE[0]], linear.weight[3, NOISE[1]] = 1.0, 1.0
    return Encoder(name="planted", module=nn.Sequential(nn.Flatten(), linear), feature_dim=4, input_size=4)


def test_protonet_beats_the_frozen_prototype_when_base_and_novel_classes_share_structure():
    """Guards that meta-training learns from base classes what the novel ones need: the frozen
    embedding is dominated by noise, episodic training on base classes re-weights the signal pixels."""
    task, encoder = planted_task(), planted_encoder()
    split = class_split(task, 0)
    spec = EpisodeSpec(4, 1, 5, 40)
    episodes = sample_episodes(task.test.labels, task.test.ids, spec, 0, among=split.novel)

    def features(s):
        return encode(encoder, s.images, len(s))

    def accuracy(strategy, config):
        ctx = context(**config) | {"load_encoder": lambda pretrained=True: copy.deepcopy(encoder)}
        state = meta_train(strategy, task, features, ctx, split, spec)
        return np.mean([run_episode(strategy, task, episodes, i, features, ctx, state)[0]
                        for i in range(len(episodes))])

    frozen = accuracy(Prototype(), {})
    meta = accuracy(ProtoNet(), {"meta_steps": 60, "meta_query": 5, "lr": 0.05, "weight_decay": 0.0,
                                 "warmup_frac": 0.0})
    assert frozen < 0.5 and meta > frozen + 0.3, (frozen, meta)


def test_meta_strategies_outside_episodes_are_one_line():
    """A meta-learner's fit without meta-training (a budget grid) says to use --episodes."""
    ctx = FitContext(task_name="t", classes=["a", "b"], labelled=LabelledSplit(["x"], np.array([0]), lambda p: []),
                     config={})
    with pytest.raises(UserError, match="protonet runs on the episode protocol only"):
        ProtoNet().fit(ctx)


def test_run_records_the_class_split_and_meta_training_cost_and_shows_the_meta_table(tmp_path, capsys, with_plugins):
    """Guards the driver end to end (toy CNN, digits): every strategy on the same novel-class episodes,
    the split and meta-training's steps and seconds in each meta-learner's record, the Meta-learning
    table at the end."""
    import json

    from bench.cli import main

    out = tmp_path / "run"
    argv = ["run", "--episodes", "5:1:3:4", "--tasks", "digits", "--encoders", "toy-cnn", "--seeds", "1",
            "--strategies", "prototype,protonet,fomaml,reptile,good-embedding", "--no-progress", "--forgetting", "off",
            "--no-contamination", "--set", "protonet.meta_steps=3", "--set", "meta_steps=3", "--set", "max_steps=3",
            "--set", "min_steps=3", "--out", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    recs = {r["strategy"]: r for r in map(json.loads, (out / "episodes.jsonl").read_text().splitlines())}
    assert {r["status"] for r in recs.values()} == {"ok"}, {s: r.get("error") for s, r in recs.items()}
    eps = [r["episodes"] for r in recs.values()]
    assert len({e["episodes_sha256"] for e in eps}) == 1 and len({tuple(e["novel_classes"]) for e in eps}) == 1
    assert all(len(e["novel_classes"]) == 5 and not set(e["base_classes"]) & set(e["novel_classes"]) for e in eps)
    assert "meta_train" not in recs["prototype"]["episodes"]
    for s in ("protonet", "fomaml", "reptile", "good-embedding"):
        cost = recs[s]["episodes"]["meta_train"]
        assert cost["steps"] == 3 and cost["wall_s"] > 0, (s, cost)
    assert "Meta-learning: novel-class query accuracy" in table and "3 / " in table


def test_meta_table_pivots_shots_and_leaves_out_episodes_on_all_classes():
    """Guards the table: one row per strategy with a column per K-shot, meta-training's cost, and
    records from before the base/novel rule (no novel_classes) left out."""
    from bench.episodes.spec import summarise
    from bench.report import meta as board_meta
    from bench.report.episodes import episode_rows

    def rec(strategy, k, accs, cost=None, novel=True):
        e = {"n_way": 5, "k_shot": k, "q_query": 15, **summarise(accs)}
        if novel:
            e["novel_classes"] = ["0", "1"]
        if cost:
            e["meta_train"] = {"steps": cost, "wall_s": 2.0}
        return {"task": "m", "encoder": "e", "strategy": strategy, "config_id": "default", "seed": 0, "status": "ok",
                "wall_s": 1.0, "episodes": e}

    rows = board_meta.meta_rows(episode_rows([rec("protonet", 1, [0.5, 1.0], 100), rec("protonet", 5, [1.0], 100),
                                              rec("prototype", 1, [0.25, 0.75]), rec("knn", 1, [1.0], novel=False)]))
    (title, headers, body), = board_meta.tables({"meta": rows})
    assert headers[:6] == ["encoder", "task", "strategy", "N-way", "1-shot", "5-shot"]
    ci = 100 * 1.96 * 0.25 / math.sqrt(2)
    assert body == [["e", "m", "protonet", "5-way", f"75.00 ± {ci:.2f}", "100.00 ± 0.00", "2", "100 / 2 s, 100 / 2 s"],
                    ["e", "m", "prototype", "5-way", f"50.00 ± {ci:.2f}", "-", "2", "-"]]
