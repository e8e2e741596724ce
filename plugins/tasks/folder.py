"""Image folders on the user's disk: ``folder:PATH`` and ``folder:PATH:SOURCE->TARGET``.

- ``folder:PATH``: ImageFolder layout ``PATH/<class>/<image>``.
- ``folder:PATH:SOURCE->TARGET``: domain layout ``PATH/<domain>/<class>/<image>`` (how
  Office-31, Office-Home, PACS and DomainNet ship); ``SOURCE`` is labelled, ``TARGET``'s pool
  is unlabelled for strategies. Both domains must have the same class folders.

Splits: when ``PATH/train`` and ``PATH/test`` (or ``PATH/<domain>/train`` and ``.../test``) both
exist they are the pool and the test split (the torchvision / ImageNet convention); otherwise a
fixed stratified split, seed 0, puts ``round(0.2 * n)`` images of each class in test. The choice
is recorded in ``TaskData.split_info``. Item ids are paths relative to ``PATH`` (``/``-separated).

Every file with an image extension is checked when the task loads (``PIL.Image.verify``: reads
headers and checksums, not the pixels); unreadable or corrupt files are skipped and counted in
``TaskData.skipped_items``. Images are decoded lazily and converted to RGB ``uint8``.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

import bench
from bench.errors import UserError
from bench.specs import TaskRequest, TaskSpec
from bench.tasks import IMAGE_EXTENSIONS, FileSplit, TaskData, printable, stratified_split

TEST_FRACTION = 0.2
SPLIT_SEED = 0
# A trailing "@corruption:severity" belongs to the corruption task, which wraps this one.
PATTERN = r"folder:(?!.*@[^@:/\\]+:[^@:/\\]+$).+"
_DOMAINS = re.compile(r"(?P<path>.+):(?P<source>[^:/\\]+)->(?P<target>[^:/\\]+)")


@bench.hookimpl
def bench_register_tasks():
    return [
        TaskSpec(
            name="folder:PATH",
            description="images on disk: folder:PATH (PATH/class/*) or folder:PATH:SOURCE->TARGET "
            "(PATH/domain/class/*); PATH/train + PATH/test if present, else stratified 80/20 (seed 0)",
            loader="bench_plugins.tasks.folder:load_folder_task",
            pattern=PATTERN,
            metadata={"layouts": ["PATH/class/*", "PATH/domain/class/*"], "test_fraction": TEST_FRACTION},
        )
    ]


def _files(base: Path, relpaths: list[str], labels) -> FileSplit:
    """Files under ``base`` with their relative paths as ids, decoded as RGB on demand. An id is the
    path made printable (:func:`bench.tasks.printable`: non-UTF-8 bytes and control characters
    escaped), so ids hash, print and go into JSON whatever the file is called."""
    return FileSplit([printable(rel) for rel in relpaths], labels, [base / rel for rel in relpaths])


def parse_name(name: str) -> tuple[Path, str | None, str | None]:
    """``folder:PATH`` -> (PATH, None, None); ``folder:PATH:S->T`` -> (PATH, S, T)."""
    rest = name.strip()[len("folder:"):]
    if not rest:
        raise UserError("task 'folder:' needs a path: folder:PATH or folder:PATH:SOURCE->TARGET")
    m = _DOMAINS.fullmatch(rest)
    if m:
        return Path(m["path"]).expanduser(), m["source"], m["target"]
    return Path(rest).expanduser(), None, None


def _readable(path: Path) -> bool:
    """False for a file PIL cannot open or verify: empty, truncated (PNG checksums; a JPEG without
    its end marker in its last kB), not an image, or a decompression bomb (more than
    ``Image.MAX_IMAGE_PIXELS`` pixels in its header)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.verify()
                if im.format == "JPEG":  # verify() reads only JPEG headers: a cut-off file lacks its end marker
                    with open(path, "rb") as f:
                        f.seek(max(0, os.fstat(f.fileno()).st_size - 1024))
                        return b"\xff\xd9" in f.read()
        return True
    except Exception:  # PIL raises many types for broken files; any of them means "skip it"
        return False


def scan_classes(root: Path, base: Path) -> tuple[list[str], list[str], list[int], int]:
    """Class folders of ``root`` -> (classes, ids relative to ``base``, labels, skipped)."""
    if not root.is_dir():
        raise UserError(f"folder {root} does not exist or is not a directory; expected {root}/<class>/<image>")
    folders = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    classes = [printable(name) for name in folders]  # shown in tables and terminals: escaped
    if not classes:
        raise UserError(f"folder {root} has no class folders; expected {root}/<class>/<image>")
    ids, labels, skipped = [], [], 0
    for label, cls in enumerate(folders):
        for dirpath, dirnames, filenames in os.walk(root / cls):  # symlinks are not followed: no loops
            dirnames.sort()
            for fname in sorted(filenames):
                if not fname.lower().endswith(IMAGE_EXTENSIONS) or fname.startswith("."):
                    continue
                path = Path(dirpath) / fname
                if not _readable(path):
                    skipped += 1
                    continue
                ids.append(path.relative_to(base).as_posix())
                labels.append(label)
    if not ids:
        raise UserError(f"folder {root} has no readable images in its class folders ({', '.join(classes[:5])}...)")
    return classes, ids, labels, skipped


def load_domain(root: Path, base: Path) -> dict:
    """One domain (or a plain dataset): classes, pool and test splits, how they were made."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes, tr_ids, tr_labels, sk1 = scan_classes(root / "train", base)
        te_classes, te_ids, te_labels, sk2 = scan_classes(root / "test", base)
        if te_classes != classes:
            raise UserError(f"{root}/train and {root}/test have different class folders: "
                            f"{sorted(set(classes) ^ set(te_classes))}")
        return {
            "classes": classes,
            "train": _files(base, tr_ids, tr_labels),
            "test": _files(base, te_ids, te_labels),
            "skipped": sk1 + sk2,
            "split_info": f"{root.name}/train ({len(tr_ids)}) and {root.name}/test ({len(te_ids)}) folders",
        }
    classes, ids, labels, skipped = scan_classes(root, base)
    labels = np.asarray(labels, dtype=np.int64)
    pool, test = stratified_split(labels, TEST_FRACTION, seed=SPLIT_SEED)
    return {
        "classes": classes,
        "train": _files(base, [ids[i] for i in pool], labels[pool]),
        "test": _files(base, [ids[i] for i in test], labels[test]),
        "skipped": skipped,
        "split_info": f"stratified split of {root.name}, seed {SPLIT_SEED}, {TEST_FRACTION:.0%} of each class to test: "
        f"{len(pool)} pool / {len(test)} test",
    }


def load_folder_task(request: TaskRequest) -> TaskData:
    path, source, target = parse_name(request.name)
    if not path.is_dir():
        raise UserError(f"task {request.name!r}: folder {path} does not exist; give an existing directory")
    if source is None:
        d = load_domain(path, path)
        return TaskData(name=request.name, classes=d["classes"], train=d["train"], test=d["test"],
                        dataset=(f"folder:{path.name}",), split_info=d["split_info"], skipped_items=d["skipped"])
    for dom in (source, target):
        if not (path / dom).is_dir():
            have = sorted(p.name for p in path.iterdir() if p.is_dir())
            raise UserError(f"task {request.name!r}: domain folder {path / dom} does not exist; domains here: {have}")
    s, t = load_domain(path / source, path), load_domain(path / target, path)
    if s["classes"] != t["classes"]:
        diff = sorted(set(s["classes"]) ^ set(t["classes"]))
        raise UserError(f"task {request.name!r}: domains {source!r} and {target!r} have different classes "
                        f"(only in one: {', '.join(diff[:10])}); both need the same class folders")
    return TaskData(
        name=request.name,
        classes=s["classes"],
        train=s["train"],
        test=s["test"],
        target_train=t["train"],
        target_test=t["test"],
        source_domain=source,
        target_domain=target,
        dataset=(f"folder:{path.name}",),
        split_info=f"source {source}: {s['split_info']}; target {target}: {t['split_info']}",
        skipped_items=s["skipped"] + t["skipped"],
    )
