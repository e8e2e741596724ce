"""Cell identity (issue 10): every record carries a digest of its whole effective configuration, and
resume skips only cells whose identity already has a finished record."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import test_harness as harness

from bench.plugins import load_plugins
from bench.run import records as results
from bench.run.budgets import Manifests
from bench.run.identities import cell_identities
from bench.run.plan import Planner, RunConfig
from bench.run.records import CellIdentity, identity
from bench.run.runner import Runner
from bench.run.worker import load_encoder
from bench.specs import TaskRequest
from bench.tasks import ArraySplit

plugins = harness.plugins  # the fixture
read = harness.read


def toy_config(tmp_path, **kw) -> RunConfig:
    return harness.toy_config(tmp_path, **{"budgets": "2", "contamination": False, **kw})


# -- resume -----------------------------------------------------------------------------------------


def test_identical_rerun_skips_every_cell_and_records_carry_the_identity(tmp_path, plugins):
    """Guards against the identity changing between two identical runs (resume would redo everything)."""
    first = Runner(toy_config(tmp_path), plugins).run()
    assert len(first) == 4 and Runner(toy_config(tmp_path), plugins).run() == []
    recs = read(tmp_path / "run")
    assert len({r["cell_id"] for r in recs}) == 4
    by_strategy = {r["strategy"]: r["config_digest"] for r in recs}
    assert len(by_strategy) == 2  # one configuration per strategy, shared by its seeds
    assert all(r["config_digest"] == by_strategy[r["strategy"]] for r in recs)
    probe = next(r for r in recs if r["strategy"] == "linear-probe")
    summary = probe["config_summary"]
    # every option value, not only the changed ones (config_id stays the human label)
    assert summary["option.C"] == "auto" and summary["option.engine"] == "direct"
    assert summary["option.max_iter"] == 2000 and probe["config_id"] == "default"
    assert summary["protocol"] == results.PROTOCOL_VERSION == 3
    assert summary["encoder.input_size"] == 16 and summary["encoder.weights"] == "seed-1234"
    assert len(summary["encoder.fingerprint"]) == results.SUMMARY_DIGITS
    assert len(summary["task.fingerprint"]) == results.SUMMARY_DIGITS


def test_rerun_with_another_resolution_runs_the_cells_again(tmp_path, plugins):
    """Old code keyed cells on (encoder, strategy, task, budget, seed, config_id) and skipped
    every cell here, leaving the 16 px numbers on the board for a 24 px run."""
    Runner(toy_config(tmp_path), plugins).run()
    again = Runner(toy_config(tmp_path, resolution=24), plugins).run()
    assert len(again) == 4 and all(r["status"] == "ok" for r in again)
    assert {r["config_summary"]["encoder.input_size"] for r in again} == {24}
    recs = read(tmp_path / "run")
    assert len(recs) == 8 and len({r["cell_id"] for r in recs}) == 8  # old records stay, apart
    assert Runner(toy_config(tmp_path, resolution=24), plugins).run() == []


def test_rerun_after_a_strategy_default_changed_runs_the_cells_again(tmp_path, plugins, monkeypatch):
    """A default that changes (finetune lr 1e-3 -> 3e-4 did) leaves config_id at "default": old
    code skipped the cells and kept numbers made with the old default."""
    cfg = toy_config(tmp_path, strategies=["linear-probe"])
    Runner(cfg, plugins).run()
    spec = plugins.strategies.get("linear-probe")
    monkeypatch.setitem(plugins.strategies._specs, "linear-probe",
                        dataclasses.replace(spec, defaults={**spec.defaults, "C": 1.0}))
    again = Runner(cfg, plugins).run()
    assert len(again) == 2 and {r["config"]["C"] for r in again} == {1.0}
    assert {r["config_id"] for r in again} == {"default"}
    old = [r for r in read(tmp_path / "run") if r["config"]["C"] == spec.defaults["C"]]
    assert old and old[0]["config_digest"] != again[0]["config_digest"]


def test_rerun_after_the_protocol_version_changed_runs_the_cells_again(tmp_path, plugins, monkeypatch):
    """Guards against PROTOCOL_VERSION being left out of the identity."""
    cfg = toy_config(tmp_path, strategies=["toy-centroid"], seeds=1)
    Runner(cfg, plugins).run()
    monkeypatch.setattr(results, "PROTOCOL_VERSION", results.PROTOCOL_VERSION + 1)
    [rec] = Runner(cfg, plugins).run()
    assert rec["protocol"] == rec["config_summary"]["protocol"] == results.PROTOCOL_VERSION


def test_schema_1_records_never_count_as_done(tmp_path, plugins):
    """Records written before cell identities (no cell_id) were made under other rules; old code
    matched them on the readable key and skipped the cells."""
    cfg = toy_config(tmp_path, strategies=["toy-centroid"])
    Runner(cfg, plugins).run()
    path = tmp_path / "run/results.jsonl"
    old = [{**{k: v for k, v in r.items() if k not in results.IDENTITY_FIELDS}, "schema": 1} for r in read(path.parent)]
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    again = Runner(cfg, plugins).run()
    assert len(again) == 2 and all(r["cell_id"] for r in again)


def test_skipped_cells_carry_an_identity_and_are_not_skipped_twice(tmp_path, plugins):
    """Guards against incompatible cells being re-recorded on every rerun (they load no encoder)."""
    cfg = toy_config(tmp_path, encoders=["pixels"], strategies=["finetune"], seeds=1)
    [rec] = Runner(cfg, plugins).run()
    assert rec["status"] == "skipped" and rec["cell_id"] and rec["config_summary"]["encoder.fingerprint"] is None
    assert Runner(cfg, plugins).run() == []


# -- the identity and its ingredients ----------------------------------------------------------------


def test_identity_changes_with_every_ingredient():
    """The digest function: each ingredient, the budget, the manifest and the seed change the
    cell id; only the configuration's ingredients change config_digest."""
    base = {"strategy": "s", "option.lr": 3e-4, "encoder.fingerprint": "a" * 64, "encoder.input_size": 64,
            "task.fingerprint": "b" * 64}
    ref = identity(base, "5/class", "m1", 0)
    assert isinstance(ref, CellIdentity) and len(ref.cell_id) == 16
    assert identity(dict(reversed(base.items())), "5/class", "m1", 0) == ref  # order does not matter
    for key, value in [("option.lr", 1e-3), ("encoder.fingerprint", "c" * 64), ("encoder.input_size", 32),
                       ("task.fingerprint", "d" * 64), ("strategy", "t"), ("option.new", 1)]:
        other = identity({**base, key: value}, "5/class", "m1", 0)
        assert other.cell_id != ref.cell_id and other.config_digest != ref.config_digest, key
    for budget, manifest, seed in [("10/class", "m1", 0), ("5/class", "m2", 0), ("5/class", "m1", 1)]:
        other = identity(base, budget, manifest, seed)
        assert other.cell_id != ref.cell_id and other.config_digest == ref.config_digest
    assert ref.config_summary["encoder.fingerprint"] == "a" * results.SUMMARY_DIGITS
    assert ref.config_summary["option.lr"] == 3e-4


def test_cell_identities_see_weights_preprocessing_task_content_indexes_and_checks(tmp_path, plugins):
    """The worker's ingredients: new weights, another input size, changed task pixels, another
    pretraining index, contamination on/off and the forgetting reference each give new identities
    (each one was missing from the old key)."""
    cfg = toy_config(tmp_path, contamination=True)
    planner = Planner(cfg, plugins)
    task = plugins.tasks.get("toy-blobs").load(TaskRequest(name="toy-blobs"))
    cells = planner.cells_for("toy-blobs", "toy-cnn")
    manifests = Manifests(tmp_path / "run")

    def ids(planner=planner, task=task, encoder=None, reference=None):
        enc = encoder or load_encoder(planner, "toy-cnn", task, "cpu", pretrained=True)
        return {k: v.cell_id for k, v in cell_identities(planner, task, "toy-cnn", cells, manifests, enc,
                                                         reference).items()}

    ref = ids()
    assert len(set(ref.values())) == len(cells) == 4 and ids() == ref
    enc = load_encoder(planner, "toy-cnn", task, "cpu", pretrained=True)
    enc.module[0].bias.data.add_(0.01)
    assert set(ids(encoder=enc).values()).isdisjoint(ref.values())
    enc = load_encoder(planner, "toy-cnn", task, "cpu", pretrained=True)
    enc.mean = (0.4, 0.4, 0.4)
    assert set(ids(encoder=enc).values()).isdisjoint(ref.values())
    changed = dataclasses.replace(task)
    pixels = np.stack(task.test.images(range(len(task.test))))
    pixels[0, 0, 0] ^= 1
    changed.test = ArraySplit(task.test.ids, pixels, task.test.labels)
    assert set(ids(task=changed).values()).isdisjoint(ref.values())
    assert set(ids(reference=task).values()).isdisjoint(ref.values())
    index_a, index_b = tmp_path / "a.idx", tmp_path / "b.idx"
    index_a.write_bytes(b"index a")
    index_b.write_bytes(b"index b")
    with_a = ids(planner=Planner(toy_config(tmp_path, contamination=True, pretraining_indexes=[str(index_a)]),
                                 plugins))
    with_b = ids(planner=Planner(toy_config(tmp_path, contamination=True, pretraining_indexes=[str(index_b)]),
                                 plugins))
    assert len({*ref.values(), *with_a.values(), *with_b.values()}) == 12
    off = ids(planner=Planner(toy_config(tmp_path, contamination=False), plugins))
    assert set(off.values()).isdisjoint(ref.values())


# -- the embedding detector does not depend on which strategies share the run -----------------------


def test_contamination_block_does_not_depend_on_the_strategies_sharing_the_run(tmp_path, with_plugins, monkeypatch):
    """Old code computed features (and so ran the embedding detector) only when a features
    strategy shared the run: finetune alone reported 0 embedding matches, with toy-centroid 30."""
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken")
    p = load_plugins(extra=[("dup", harness.DuplicatePlugin)])
    blocks = []
    for i, strategies in enumerate([["finetune"], ["finetune", "toy-centroid"]]):
        cfg = toy_config(tmp_path, tasks=["toy-dup"], strategies=strategies, seeds=1, contamination=True,
                         out=tmp_path / f"run{i}", options=[("finetune", "min_steps", 2), ("finetune", "epochs", 1)])
        Runner(cfg, p).run()
        [rec] = [r for r in read(tmp_path / f"run{i}") if r["strategy"] == "finetune"]
        blocks.append({k: v for k, v in rec["contamination"].items() if "accuracy" not in k and "p_value" not in k})
    assert blocks[0] == blocks[1]
    assert blocks[0]["overlap_count_embedding"] >= 3  # the 3 copies (toy images all look alike)


def test_tuned_cells_are_keyed_on_the_candidates(tmp_path, plugins, monkeypatch):
    """With --tune the candidate grid decides the numbers: a new grid must not count as done."""
    cfg = toy_config(tmp_path, options=[("linear-probe", "tune", True)])
    planner = Planner(cfg, plugins)
    task = plugins.tasks.get("toy-blobs").load(TaskRequest(name="toy-blobs"))
    cells = [c for c in planner.cells_for("toy-blobs", "toy-cnn") if c.strategy == "linear-probe"]

    def ids():
        return {v.cell_id for v in cell_identities(Planner(cfg, plugins), task, "toy-cnn", cells, None).values()}

    before = ids()
    spec = plugins.strategies.get("linear-probe")
    monkeypatch.setitem(plugins.strategies._specs, "linear-probe", dataclasses.replace(spec, tunable={"C": (1.0,)}))
    assert ids().isdisjoint(before) and len(before) == 2
