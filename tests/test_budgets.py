"""Label budgets: parsing, stratification, seeding, sharing, disjointness from test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.budgets import Manifests, parse_budget, parse_budgets, sample
from bench.errors import UserError
from bench.tasks import ArraySplit, TaskData

CLASSES = ["a", "b", "c"]


def make_task(sizes=(30, 20, 10)) -> TaskData:
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(sizes)])
    images = (np.arange(len(labels))[:, None, None] % 256).astype(np.uint8).repeat(4, 1).repeat(4, 2)
    train = ArraySplit([f"t/{i}" for i in range(len(labels))], images, labels)
    test = ArraySplit([f"t/test{i}" for i in range(6)], images[:6], labels[:6])
    return TaskData(name="toy", classes=CLASSES, train=train, test=test)


def test_parse_budgets_orders_per_class_then_totals_then_full():
    assert [b.label for b in parse_budgets("full,n100,10,1,5")] == ["1/class", "5/class", "10/class", "n100", "full"]
    assert parse_budget("5/class").n == 5


@pytest.mark.parametrize("bad", ["0", "x5", "n0", "-1", "5.5", "n", ""])
def test_malformed_budget_is_a_user_error(bad):
    with pytest.raises(UserError, match="malformed budget|no budgets"):
        parse_budgets(bad)


def test_per_class_budget_is_stratified_and_seeded():
    task = make_task()
    pos = sample(task.train.labels, CLASSES, "toy", parse_budget("4"), seed=0)
    assert np.bincount(task.train.labels[pos]).tolist() == [4, 4, 4]
    again = sample(task.train.labels, CLASSES, "toy", parse_budget("4"), seed=0)
    other = sample(task.train.labels, CLASSES, "toy", parse_budget("4"), seed=1)
    assert pos.tolist() == again.tolist()
    assert pos.tolist() != other.tolist()


def test_total_budget_is_proportional_with_largest_remainders():
    task = make_task((30, 20, 10))
    pos = sample(task.train.labels, CLASSES, "toy", parse_budget("n12"), seed=3)
    assert np.bincount(task.train.labels[pos]).tolist() == [6, 4, 2]
    pos = sample(task.train.labels, CLASSES, "toy", parse_budget("n10"), seed=3)
    assert len(pos) == 10 and np.bincount(task.train.labels[pos]).tolist() == [5, 3, 2]


def test_budgets_of_one_seed_are_nested():
    task = make_task()
    small = set(sample(task.train.labels, CLASSES, "toy", parse_budget("2"), seed=5).tolist())
    large = set(sample(task.train.labels, CLASSES, "toy", parse_budget("8"), seed=5).tolist())
    assert small < large


def test_budget_larger_than_a_class_names_the_class_and_its_size():
    task = make_task((30, 20, 10))
    with pytest.raises(UserError, match=r"budget 11/class is larger than class 'c' of task 'toy', which has 10 items"):
        sample(task.train.labels, CLASSES, "toy", parse_budget("11"), seed=0)
    with pytest.raises(UserError, match="larger than the train pool"):
        sample(task.train.labels, CLASSES, "toy", parse_budget("n61"), seed=0)


def test_manifest_is_written_and_reused(tmp_path):
    task = make_task()
    store = Manifests(tmp_path)
    first = store.positions(task, parse_budget("3"), 2)
    path = store.path("toy", parse_budget("3"), 2)
    data = json.loads(path.read_text())
    assert data["ids"] == [task.train.ids[i] for i in first] and data["n"] == 9
    # A manifest on disk wins over resampling (e.g. after the sampler changed): results stay paired.
    data["ids"] = data["ids"][:3]
    path.write_text(json.dumps(data))
    assert len(store.positions(task, parse_budget("3"), 2)) == 3


def test_manifest_naming_unknown_items_is_an_error(tmp_path):
    task = make_task()
    store = Manifests(tmp_path)
    store.positions(task, parse_budget("3"), 0)
    path = store.path("toy", parse_budget("3"), 0)
    data = json.loads(path.read_text())
    data["ids"][0] = "gone/1"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="names items not in task 'toy'"):
        store.positions(task, parse_budget("3"), 0)
