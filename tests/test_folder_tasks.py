"""folder:PATH tasks: both layouts load, splits are documented, corrupt files are counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.errors import UserError
from bench.specs import TaskRequest
from bench_plugins.tasks.folder import PATTERN, load_folder_task


def _write(path: Path, value: int, mode: str = "RGB", size=(6, 5)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=value if mode == "L" else (value, 0, 255 - value)).save(path)


def _class_tree(root: Path, classes=("cat", "dog"), per_class=5) -> None:
    for c, cls in enumerate(classes):
        for i in range(per_class):
            _write(root / cls / f"{i}.png", 40 * c + i, mode="L" if i % 2 else "RGB")


def test_class_layout_loads_with_stratified_split_and_relative_ids(tmp_path):
    _class_tree(tmp_path)
    task = load_folder_task(TaskRequest(f"folder:{tmp_path}"))
    assert task.classes == ["cat", "dog"] and not task.shifted
    assert len(task.train) == 8 and len(task.test) == 2  # 20% of each class
    assert sorted(np.bincount(task.test.labels).tolist()) == [1, 1]
    assert "stratified" in task.split_info and "seed 0" in task.split_info
    assert set(task.train.ids) | set(task.test.ids) == {f"{c}/{i}.png" for c in ("cat", "dog") for i in range(5)}
    img = task.train.images([0])[0]
    assert img.dtype == np.uint8 and img.shape == (5, 6, 3)  # grey files come back as RGB
    again = load_folder_task(TaskRequest(f"folder:{tmp_path}"))
    assert again.test.ids == task.test.ids and again.train.fingerprint() == task.train.fingerprint()


def test_train_and_test_folders_are_used_when_both_exist(tmp_path):
    _class_tree(tmp_path / "train", per_class=3)
    _class_tree(tmp_path / "test", per_class=2)
    task = load_folder_task(TaskRequest(f"folder:{tmp_path}"))
    assert len(task.train) == 6 and len(task.test) == 4
    assert all(i.startswith("train/") for i in task.train.ids) and all(i.startswith("test/") for i in task.test.ids)
    assert "train" in task.split_info and "test" in task.split_info


def test_domain_layout_gives_shifted_task(tmp_path):
    _class_tree(tmp_path / "amazon")
    _class_tree(tmp_path / "webcam", per_class=10)
    task = load_folder_task(TaskRequest(f"folder:{tmp_path}:amazon->webcam"))
    assert task.shifted and task.source_domain == "amazon" and task.target_domain == "webcam"
    assert len(task.train) + len(task.test) == 10 and len(task.target_train) + len(task.target_test) == 20
    assert all(i.startswith("webcam/") for i in task.target_train.ids)


def test_corrupt_file_is_skipped_and_counted(tmp_path):
    _class_tree(tmp_path)
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    good = tmp_path / "dog" / "0.png"
    (tmp_path / "dog" / "truncated.png").write_bytes(good.read_bytes()[:40])
    (tmp_path / "dog" / "notes.txt").write_text("not an image, not counted")
    task = load_folder_task(TaskRequest(f"folder:{tmp_path}"))
    assert task.skipped_items == 2 and len(task.train) + len(task.test) == 10


def test_fingerprint_changes_when_a_file_changes(tmp_path):
    _class_tree(tmp_path)
    before = load_folder_task(TaskRequest(f"folder:{tmp_path}")).train
    fp = before.fingerprint()
    target = tmp_path / before.ids[0]
    _write(target, 200, size=(9, 9))
    assert load_folder_task(TaskRequest(f"folder:{tmp_path}")).train.fingerprint() != fp


def test_missing_empty_and_mismatched_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_folder_task(TaskRequest(f"folder:{tmp_path / 'nope'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no class folders"):
        load_folder_task(TaskRequest(f"folder:{tmp_path / 'empty'}"))
    (tmp_path / "blank" / "cat").mkdir(parents=True)
    with pytest.raises(UserError, match="no readable images"):
        load_folder_task(TaskRequest(f"folder:{tmp_path / 'blank'}"))
    _class_tree(tmp_path / "d" / "a", classes=("cat", "dog"))
    _class_tree(tmp_path / "d" / "b", classes=("cat", "fox"))
    with pytest.raises(UserError, match="different classes"):
        load_folder_task(TaskRequest(f"folder:{tmp_path / 'd'}:a->b"))
    with pytest.raises(UserError, match="domain folder"):
        load_folder_task(TaskRequest(f"folder:{tmp_path / 'd'}:a->zzz"))


def test_folder_pattern_leaves_corruption_suffix_to_the_corruption_task():
    import re

    assert re.fullmatch(PATTERN, "folder:/data/office:amazon->webcam")
    assert not re.fullmatch(PATTERN, "folder:/data/pets@blur:3")
