"""Label budgets: parsing, stratification, seeding, sharing, disjointness from test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.errors import UserError
from bench.run.budgets import MANIFEST_VERSION, Manifests, parse_budget, parse_budgets, pool_digest, sample
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


def test_total_budget_is_proportional():
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


def ten_class_labels(sizes=None) -> np.ndarray:
    sizes = sizes or [40] * 10
    return np.concatenate([np.full(n, c) for c, n in enumerate(sizes)])


TEN = [str(c) for c in range(10)]


def test_n5_on_ten_classes_labels_different_classes_at_different_seeds():
    """Guards against remainder ties broken by class index (n5 labelled classes 0-4 at every seed)."""
    labels = ten_class_labels()
    chosen = {tuple(np.unique(labels[sample(labels, TEN, "t", parse_budget("n5"), seed=s)])) for s in range(8)}
    assert len(chosen) >= 6
    assert all(len(c) == 5 for c in chosen)
    # near-equal classes too: the largest five classes are not labelled at every seed
    labels = ten_class_labels([40, 41, 39, 42, 40, 38, 43, 40, 41, 39])
    chosen = {tuple(np.unique(labels[sample(labels, TEN, "t", parse_budget("n5"), seed=s)])) for s in range(8)}
    assert len(chosen) >= 4


@pytest.mark.parametrize("sizes", [[40] * 10, [25, 41, 39, 60, 40, 38, 43, 30, 41, 39], [200, 50, 20, 20, 20, 10, 5,
                                                                                        5, 5, 5]])
def test_total_budgets_are_nested_for_every_n_and_stay_within_quota(sizes):
    """Guards against largest-remainder allocation, which is not nested (n9 -> n10 could drop a
    class's only item) and ignores the seed for ties."""
    labels = ten_class_labels(sizes)
    share = np.bincount(labels) / len(labels)
    for seed in (0, 1):
        prev: set[int] = set()
        for n in range(1, 201):
            pos = sample(labels, TEN, "t", parse_budget(f"n{n}"), seed=seed)
            cur = set(pos.tolist())
            assert len(cur) == n and prev <= cur, (seed, n)
            counts = np.bincount(labels[pos], minlength=10)
            assert np.all(counts >= np.floor(n * share - 1e-9)) and np.all(counts <= np.ceil(n * share + 1e-9))
            k = int(counts.max())
            if k <= min(sizes):
                per_class = set(sample(labels, TEN, "t", parse_budget(str(k)), seed=seed).tolist())
                assert cur <= per_class, (seed, n, k)
            prev = cur


def test_manifests_are_seeded_by_the_pool_not_the_task_name(tmp_path):
    """Guards against manifests seeded by task name: mnist5k, mnist5k@blur:3 and the source side
    of mnist5k->digits share one pool and must label the same items."""
    base = make_task()
    blur = TaskData(name="toy@blur:3", classes=CLASSES, train=base.train, test=base.test,
                    target_train=base.train, target_test=base.test)
    store = Manifests(tmp_path)
    for budget in ("2", "n7"):
        ids = []
        for task in (base, blur):
            store.positions(task, parse_budget(budget), 1)
            ids.append(json.loads(store.path(task.name, parse_budget(budget), 1).read_text())["ids"])
        assert ids[0] == ids[1]
    other = make_task((31, 20, 9))  # another pool: another draw
    assert sample(other.train.labels, CLASSES, "toy", parse_budget("3"), 1, pool=pool_digest(other.train.labels,
                                                                                        other.train.ids)).tolist() \
        != store.positions(base, parse_budget("3"), 1).tolist()


def test_budget_ids_are_shared_by_the_real_shifted_tasks(tmp_path):
    """mnist5k, mnist5k@blur:3 and mnist5k->digits: one pool, identical manifests."""
    from bench.loading import TaskLoader
    from bench.plugins import load_plugins

    load = TaskLoader(load_plugins(), None, False).load
    store = Manifests(tmp_path)
    got = []
    for name in ("mnist5k", "mnist5k@blur:3", "mnist5k->digits"):
        task = load(name)
        got.append([task.train.ids[i] for i in store.positions(task, parse_budget("n25"), 0)])
    assert got[0] == got[1] == got[2] and len(got[0]) == 25


def test_a_manifest_written_under_the_old_seeding_is_refused(tmp_path):
    """Guards against silently mixing manifests drawn by task name with new ones."""
    task = make_task()
    store = Manifests(tmp_path)
    store.positions(task, parse_budget("3"), 0)
    path = store.path("toy", parse_budget("3"), 0)
    data = json.loads(path.read_text())
    assert data["version"] == MANIFEST_VERSION and data["pool"] == pool_digest(task.train.labels, task.train.ids)
    del data["version"]
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"older bench .*use a new --out folder"):
        store.positions(task, parse_budget("3"), 0)


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
