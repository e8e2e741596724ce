"""Strategies cannot read test or target labels through the context the harness hands them.

A plugin strategy (``snoop``) tries, during ``fit``, every route we could think of to test labels
and to the unlabelled target's labels, and records what each gave; the test checks that each
route fails (or gives nothing with labels in it) while the honest routes keep working.

What a determined plugin can still do, since Python has no sandbox: dig into closures
(``ctx.load_encoder.__closure__``, the views' image readers, ``ctx.features.__closure__`` all
reach real splits), walk ``gc.get_objects()`` for the loaded ``TaskData``, or load the task
itself through ``bench.loading.TaskLoader``. The context stops honest mistakes and makes a
deliberate read look like what it is in code review; it is not a security boundary.
"""

from __future__ import annotations

import numpy as np
import pytest

import bench
from bench.plugins import load_plugins
from bench.run.plan import RunConfig
from bench.run.runner import Runner
from bench.specs import StrategySpec, TaskSpec
from bench.strategies import Fitted
from bench.tasks import ArraySplit, Split, TaskData
from bench.views import LabelFreeSplit, LabelledSplit, ProtocolError, gated_features

SEEN: dict[str, object] = {}


def _attempt(name, get):
    try:
        SEEN[name] = ("got", get())
    except (ProtocolError, AttributeError) as exc:
        SEEN[name] = ("refused", type(exc).__name__)


def _splits_in(obj) -> list:
    """Splits with readable labels reachable through one level of attributes (no closures)."""
    found = []
    for value in getattr(obj, "__dict__", {}).values():
        if isinstance(value, TaskData):
            found.append(value)
        if isinstance(value, Split) and not isinstance(value, (LabelFreeSplit, LabelledSplit)):
            found.append(value)
    return found


class Snoop:
    def fit(self, ctx):
        _attempt("task.test", lambda: ctx.task.test)
        _attempt("task.train", lambda: ctx.task.train)
        _attempt("task.target_train.labels", lambda: ctx.task.target_train.labels)
        _attempt("unlabelled_target.labels", lambda: ctx.unlabelled_target.labels)
        _attempt("unlabelled_target.subset.labels", lambda: ctx.unlabelled_target.subset([0, 1]).labels)
        _attempt("labelled.parent", lambda: ctx.labelled.parent)
        _attempt("features(own split)", lambda: ctx.features(ArraySplit(["x"], np.zeros((1, 16, 16), np.uint8), [0])))
        _attempt("labelled.fingerprint", lambda: ctx.labelled.fingerprint())
        SEEN["vars"] = [*_splits_in(ctx), *_splits_in(ctx.labelled), *_splits_in(ctx.unlabelled_target),
                        *_splits_in(ctx.features), *_splits_in(ctx.task)]
        SEEN["labelled.root"] = ctx.labelled.root()[0] is ctx.labelled
        # what a strategy may use
        SEEN["ok"] = (ctx.task_name, ctx.num_classes, ctx.task.num_classes, len(ctx.labelled.labels),
                      ctx.features(ctx.labelled).shape, ctx.features(ctx.unlabelled_target.subset([0, 2])).shape,
                      ctx.features(ctx.labelled.subset([0])).shape)
        x, y = ctx.features(ctx.labelled), np.asarray(ctx.labelled.labels)
        centroids = np.stack([x[y == c].mean(axis=0) for c in range(ctx.num_classes)])

        def predict(split):
            _attempt("predict split.labels", lambda: split.labels)
            f = ctx.features(split)
            return ((f[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(axis=1)

        return Fitted(predict=predict, trainable_params=0, total_params=int(centroids.size))


class SnoopPlugin:
    @staticmethod
    @bench.hookimpl
    def bench_register_strategies():
        return [StrategySpec(name="snoop", description="tries to read labels", loader=lambda: Snoop(), kind="features")]

    @staticmethod
    @bench.hookimpl
    def bench_register_tasks():
        def load(request):
            base = request.resolve("toy-blobs")
            return TaskData(name=request.name, classes=base.classes, train=base.train, test=base.test,
                            target_train=base.test, target_test=base.test, source_domain="a", target_domain="b",
                            native_size=16)

        return [TaskSpec(name="toy-shift", description="toy-blobs with a (fake) target domain", loader=load)]


# the strategy below probes ctx.task on purpose
@pytest.mark.filterwarnings("ignore:ctx.task is deprecated:DeprecationWarning")
def test_every_route_to_test_or_target_labels_is_refused(tmp_path, with_plugins, monkeypatch):
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    SEEN.clear()
    cfg = RunConfig(encoders=["toy-cnn"], strategies=["snoop"], tasks=["toy-shift"], budgets="2", seeds=1,
                    out=tmp_path / "run", device="cpu", progress=False, forgetting="off", contamination=False)
    [rec] = Runner(cfg, load_plugins(extra=[("snoop", SnoopPlugin)])).run()
    assert rec["status"] == "ok", rec["error"]
    assert "target_accuracy" in rec["metrics"]
    for route in ("task.test", "task.train", "task.target_train.labels", "unlabelled_target.labels",
                  "unlabelled_target.subset.labels", "labelled.parent", "features(own split)",
                  "labelled.fingerprint", "predict split.labels"):
        assert SEEN[route][0] == "refused", (route, SEEN[route])
    assert SEEN["vars"] == [] and SEEN["labelled.root"] is True
    assert SEEN["ok"] == ("toy-shift", 3, 3, 6, (6, 8), (2, 8), (1, 8))


def test_evaluation_splits_answer_features_only_after_fit():
    real = ArraySplit(["a", "b"], np.zeros((2, 4, 4), np.uint8), [0, 1])
    features, allow, open_after_fit = gated_features(lambda split: np.arange(len(split) * 2.0).reshape(-1, 2))
    test = allow(LabelFreeSplit.of(real), real, after_fit_only=True)
    with pytest.raises(ProtocolError, match="strategies may not read target labels"):
        features(test)
    open_after_fit()
    assert features(test).shape == (2, 2) and features(test.subset([1])).tolist() == [[2.0, 3.0]]
    with pytest.raises(ProtocolError):
        features(real)  # the real split itself is never answered


def test_old_style_context_and_task_view_still_work():
    real = ArraySplit(["a", "b"], np.zeros((2, 4, 4), np.uint8), [0, 1])
    task = TaskData(name="t", classes=["x", "y"], train=real, test=real, target_train=real, extra={"k": 1})
    from bench.strategies import FitContext

    with pytest.warns(DeprecationWarning):
        ctx = FitContext(task=task, labelled=real, unlabelled_target=task.target_train, config={}, seed=0,
                         device="cpu", load_encoder=None, features=lambda s: np.zeros((len(s), 1)))
    with pytest.warns(DeprecationWarning):
        view = ctx.task
    assert (view.name, view.classes, view.num_classes, view.extra) == ("t", ["x", "y"], 2, {"k": 1})
    assert (ctx.task_name, ctx.num_classes, ctx.extra) == ("t", 2, {"k": 1})
    with pytest.raises(ProtocolError):
        _ = ctx.unlabelled_target.labels
    with pytest.warns(DeprecationWarning):
        assert not hasattr(ctx.unlabelled_target, "labels") and getattr(ctx.task, "test", None) is None
    assert ctx.unlabelled_target.ids == ["a", "b"] and len(ctx.unlabelled_target.images([1])) == 1
