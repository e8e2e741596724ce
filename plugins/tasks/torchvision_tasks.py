"""torchvision-backed tasks for users' machines (data under ``--data-dir``, fetched only with ``--download``).

| task | torchvision class | pool | test |
|---|---|---|---|
| ``cifar10`` / ``cifar100`` | ``CIFAR10`` / ``CIFAR100`` | train (50,000) | test (10,000) |
| ``flowers102`` | ``Flowers102`` | train + val (1,020 + 1,020) | test (6,149) |
| ``oxford-pets`` | ``OxfordIIITPet`` (37 breeds) | trainval (3,680) | test (3,669) |
| ``dtd`` | ``DTD``, partition 1 | train + val (1,880 + 1,880) | test (1,880) |
| ``eurosat`` | ``EuroSAT`` (RGB) | no official split: stratified 80% (seed 0) | 20% |
| ``svhn`` | ``SVHN`` | train (73,257; ``extra`` unused) | test (26,032) |
| ``mnist`` | ``MNIST`` | train (60,000) | test (10,000) |
| ``usps`` | ``USPS`` (16x16 grey) | train (7,291) | test (2,007) |
| ``stl10`` | ``STL10`` | train (5,000; ``unlabeled`` unused) | test (8,000) |

Shifted pairs with the same ten digit classes (``"0"`` .. ``"9"``; SVHN's label 10 is torchvision's
0): ``mnist->usps``, ``usps->mnist``, ``svhn->mnist``. The source's pool and test are the source
task's; ``target_train`` is the target's pool (unlabelled for strategies), ``target_test`` its test.

Item ids are ``"<task>/<torchvision split>/<index>"`` (``"cifar10/test/123"``), or for EuroSAT
``"eurosat/<class folder>/<file>"``. Images are read on demand as ``uint8`` ``(H, W, C)``.

Data lives under ``request.data_dir`` (``--data-dir``), else ``$BENCH_DATA_DIR``, else
``~/.cache/transfer-bench/data``, in torchvision's own layout (``DIR/MNIST/raw/...``,
``DIR/cifar-10-batches-py/...``, ``DIR/usps.bz2``, ...). torchvision is only allowed to download
when ``request.download`` is true (``--download``); otherwise missing data is a one-line error.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import bench
from bench.specs import TaskRequest, TaskSpec
from bench.tasks import Split

DIGITS = [str(i) for i in range(10)]
EUROSAT_TEST_FRACTION = 0.2
SPLIT_SEED = 0

#: name -> (torchvision class, (pool splits), test split, dataset tag, native side, description)
#: A "split" is the value for the class's ``split=`` argument, or "train"/"test" for ``train=``.
DATASETS: dict[str, dict] = {
    "cifar10": dict(cls="CIFAR10", pool=("train",), test="test", dataset=("cifar-10",), native=32,
                    about="CIFAR-10: 32x32 RGB, 10 classes (50,000 pool / 10,000 test)"),
    "cifar100": dict(cls="CIFAR100", pool=("train",), test="test", dataset=("cifar-100",), native=32,
                     about="CIFAR-100: 32x32 RGB, 100 classes (50,000 pool / 10,000 test)"),
    "flowers102": dict(cls="Flowers102", pool=("train", "val"), test="test", dataset=("flowers102",), native=None,
                       about="Oxford Flowers-102: 102 classes; pool = official train + val (2,040), test 6,149",
                       template="a photo of a {}, a type of flower."),
    "oxford-pets": dict(cls="OxfordIIITPet", pool=("trainval",), test="test", dataset=("oxford-iiit-pet",),
                        native=None, about="Oxford-IIIT Pets: 37 breeds; pool = trainval (3,680), test 3,669",
                        template="a photo of a {}, a type of pet."),
    "dtd": dict(cls="DTD", pool=("train", "val"), test="test", dataset=("dtd",), native=None,
                about="Describable Textures, partition 1: 47 classes; pool = train + val (3,760), test 1,880",
                template="a photo of a {} texture."),
    "eurosat": dict(cls="EuroSAT", pool=None, test=None, dataset=("eurosat",), native=64,
                    about="EuroSAT RGB: 64x64, 10 land-use classes; stratified 80/20 split, seed 0 (no official split)",
                    template="a centered satellite photo of {}."),
    "svhn": dict(cls="SVHN", pool=("train",), test="test", dataset=("svhn",), native=32, digits=True,
                 about="SVHN: 32x32 RGB house-number digits, 10 classes (73,257 pool / 26,032 test)"),
    "mnist": dict(cls="MNIST", pool=("train",), test="test", dataset=("mnist",), native=28, digits=True,
                  about="MNIST: 28x28 grey digits (60,000 pool / 10,000 test)"),
    "usps": dict(cls="USPS", pool=("train",), test="test", dataset=("usps",), native=16, digits=True,
                 about="USPS: 16x16 grey digits (7,291 pool / 2,007 test)"),
    "stl10": dict(cls="STL10", pool=("train",), test="test", dataset=("stl-10",), native=96,
                  about="STL-10: 96x96 RGB, 10 classes (5,000 labelled pool / 8,000 test; unlabeled unused)"),
}
#: Classes that take ``train=True/False`` instead of ``split=...``.
_TRAIN_FLAG = {"CIFAR10", "CIFAR100", "MNIST", "USPS"}
#: Digit tasks: forgetting is measured on the offline MNIST/UCI tasks (always available).
_REFERENCE = {"mnist": "digits", "usps": "mnist5k", "svhn": "mnist5k"}
PAIRS = {"mnist->usps": ("mnist", "usps"), "usps->mnist": ("usps", "mnist"), "svhn->mnist": ("svhn", "mnist")}


@bench.hookimpl
def bench_register_tasks():
    specs = []
    for name, d in DATASETS.items():
        meta = {"torchvision": d["cls"], "needs_data_dir": True}
        if d["native"]:
            meta["native_size"] = d["native"]
        if name in _REFERENCE:
            meta["reference_task"] = _REFERENCE[name]
        specs.append(TaskSpec(name=name, description=f"{d['about']} [torchvision; --data-dir/--download]",
                              loader=load_torchvision_task, dataset=d["dataset"], metadata=meta))
    for name, (src, tgt) in PAIRS.items():
        specs.append(TaskSpec(
            name=name,
            description=f"shift: labelled {src} (source) -> unlabelled {tgt} (target), 10 digit classes "
            "[torchvision; --data-dir/--download]",
            loader=load_torchvision_pair, dataset=DATASETS[src]["dataset"] + DATASETS[tgt]["dataset"], shifted=True,
            metadata={"classes": 10, "source": src, "target": tgt, "needs_data_dir": True,
                      "reference_task": _REFERENCE[src]},
        ))
    return specs


def to_hwc_uint8(img) -> np.ndarray:  # noqa: F821 (numpy imported lazily)
    """A PIL image or an array (HW, HWC or CHW) -> ``uint8`` ``(H, W, C)`` with C 1 or 3."""
    import numpy as np

    if hasattr(img, "convert"):  # PIL
        img = img.convert("L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB")
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = np.transpose(a, (1, 2, 0))
    return np.ascontiguousarray(a.astype(np.uint8, copy=False))


class ArrayBackedSplit(Split):
    """Items of torchvision datasets that hold their images in memory (``.data``): converted to
    HWC ``uint8`` per item, on demand."""

    def __init__(self, ids: Sequence[str], labels, parts: Sequence[tuple[object, np.ndarray]]) -> None:  # noqa: F821
        """``parts``: ``(array, positions)`` pairs, concatenated in order (the ids follow them)."""
        import numpy as np

        self.ids = list(ids)
        self.labels = np.asarray(labels, dtype=np.int64)
        self._where = [(arr, int(i)) for arr, pos in parts for i in pos]
        self._fingerprint: str | None = None

    def images(self, positions):
        return [to_hwc_uint8(self._where[int(p)][0][self._where[int(p)][1]]) for p in positions]

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            import numpy as np

            h = hashlib.sha256()
            h.update("\n".join(self.ids).encode())
            h.update(self.labels.tobytes())
            for arr, i in self._where:
                h.update(np.ascontiguousarray(arr[i]).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


class FileBackedSplit(Split):
    """Items of torchvision datasets that list image files: decoded on demand."""

    def __init__(self, ids: Sequence[str], labels, paths: Sequence[str | Path]) -> None:
        import numpy as np

        self.ids = list(ids)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.paths = [Path(p) for p in paths]
        self._fingerprint: str | None = None

    def images(self, positions):
        from PIL import Image

        from bench.errors import UserError

        out = []
        for p in positions:
            path = self.paths[int(p)]
            try:
                with Image.open(path) as im:
                    out.append(to_hwc_uint8(im))
            except (OSError, ValueError) as exc:
                raise UserError(f"cannot read image {path}: {exc}; re-download the dataset (--download)") from None
        return out

    def fingerprint(self) -> str:
        # ids, labels, file sizes and modification times: nothing has to be decoded.
        if self._fingerprint is None:
            h = hashlib.sha256()
            for i, label, path in zip(self.ids, self.labels, self.paths):
                st = os.stat(path)
                h.update(f"{i}\x00{int(label)}\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


def data_root(request: TaskRequest) -> Path:
    root = request.data_dir or os.environ.get("BENCH_DATA_DIR") or "~/.cache/transfer-bench/data"
    return Path(root).expanduser()


def open_dataset(name: str, split: str | None, root: Path, download: bool):
    """The torchvision dataset object; missing data becomes a :class:`UserError` naming the flags.

    torchvision never touches the network unless ``download`` is true."""
    import torchvision.datasets as tvd

    from bench.errors import UserError

    cls_name = DATASETS[name]["cls"]
    cls: Callable = getattr(tvd, cls_name)
    kwargs: dict = {"root": str(root), "download": bool(download)}
    if split is not None:
        if cls_name in _TRAIN_FLAG:
            kwargs["train"] = split == "train"
        else:
            kwargs["split"] = split
    if cls_name == "DTD":
        kwargs["partition"] = 1
    if cls_name == "OxfordIIITPet":
        kwargs["target_types"] = "category"
    if download:
        root.mkdir(parents=True, exist_ok=True)
    try:
        return cls(**kwargs)
    except (RuntimeError, OSError, ValueError, EOFError) as exc:
        what = f"{cls_name}{'' if split is None else ' ' + split + ' split'}"
        if download:
            raise UserError(f"task {name!r}: could not download or read {what} into {root}: {exc}") from None
        detail = re.sub(r"\s*You can use download=True to download it\.?", "", str(exc).splitlines()[0] if str(exc) else "")
        raise UserError(
            f"task {name!r}: {what} not found under {root} ({detail or type(exc).__name__}); "
            f"point --data-dir at a folder holding it in torchvision's layout, or add --download to fetch it"
        ) from None


def _labels_and_source(ds) -> tuple[list[int], object | None, list | None]:
    """(labels, in-memory image array or None, image paths or None) without decoding images."""
    import numpy as np

    if hasattr(ds, "_image_files") or hasattr(ds, "_images"):  # Flowers102, DTD, OxfordIIITPet
        paths = list(ds._image_files if hasattr(ds, "_image_files") else ds._images)
        return list(ds._labels), None, paths
    if hasattr(ds, "samples"):  # ImageFolder (EuroSAT)
        return [int(t) for _, t in ds.samples], None, [p for p, _ in ds.samples]
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    data = ds.data
    if hasattr(data, "numpy"):  # MNIST keeps a torch tensor
        data = data.numpy()
    return np.asarray(labels, dtype=np.int64).tolist(), data, None


def _classes(name: str, ds) -> list[str]:
    if DATASETS[name].get("digits"):
        return list(DIGITS)
    return [str(c) for c in ds.classes]


def _prompt_extra(name: str, classes: list[str]) -> dict:
    d = DATASETS[name]
    if d.get("digits"):
        from bench_plugins.tasks.digits import PROMPT_NAMES

        return {"prompt_names": list(PROMPT_NAMES),
                "prompt_templates": ['a photo of the number: "{}".', "a photo of the digit {}.", "the number {}."]}
    extra: dict = {}
    if name == "eurosat":  # "AnnualCrop" -> "annual crop"
        extra["prompt_names"] = [re.sub(r"(?<!^)(?=[A-Z])", " ", c).lower() for c in classes]
    if d.get("template"):
        extra["prompt_templates"] = [d["template"]]
    return extra


def _make_split(name: str, pieces: list[tuple[str, object, Sequence[int]]]) -> Split:
    """``pieces``: ``(torchvision split name, dataset, positions)``, concatenated."""
    ids, labels, arrays, paths = [], [], [], []
    for split_name, ds, positions in pieces:
        lab, data, files = _labels_and_source(ds)
        for i in positions:
            labels.append(lab[i])
            if files is not None:
                paths.append(files[i])
                ids.append(f"{name}/{split_name}/{i}" if split_name != "all"
                           else f"{name}/{Path(files[i]).relative_to(getattr(ds, '_data_folder', ds.root)).as_posix()}")
            else:
                ids.append(f"{name}/{split_name}/{i}")
        if files is None:
            arrays.append((data, list(positions)))
    if paths:
        return FileBackedSplit(ids, labels, paths)
    return ArrayBackedSplit(ids, labels, arrays)


def load_torchvision_task(request: TaskRequest):
    """Loader of the unshifted torchvision tasks (``request.name`` is one of :data:`DATASETS`)."""
    import numpy as np

    from bench.tasks import TaskData, stratified_split

    name = request.name
    d = DATASETS[name]
    root = data_root(request)
    if d["pool"] is None:  # EuroSAT: one folder, our own fixed stratified split
        ds = open_dataset(name, None, root, request.download)
        labels = np.asarray(_labels_and_source(ds)[0])
        pool, test = stratified_split(labels, EUROSAT_TEST_FRACTION, SPLIT_SEED)
        train_split = _make_split(name, [("all", ds, pool.tolist())])
        test_split = _make_split(name, [("all", ds, test.tolist())])
        classes = _classes(name, ds)
        info = (f"no official split: fixed stratified split, seed {SPLIT_SEED}: "
                f"{len(pool)} pool / {len(test)} test")
    else:
        pool_sets = [(s, open_dataset(name, s, root, request.download)) for s in d["pool"]]
        test_ds = open_dataset(name, d["test"], root, request.download)
        train_split = _make_split(name, [(s, ds, range(len(ds))) for s, ds in pool_sets])
        test_split = _make_split(name, [(d["test"], test_ds, range(len(test_ds)))])
        classes = _classes(name, test_ds)
        info = (f"official torchvision splits: pool = {' + '.join(d['pool'])} ({len(train_split)}), "
                f"test = {d['test']} ({len(test_split)})")
    return TaskData(name=name, classes=classes, train=train_split, test=test_split, dataset=tuple(d["dataset"]),
                    split_info=info, native_size=d["native"], extra=_prompt_extra(name, classes))


def load_torchvision_pair(request: TaskRequest):
    """Loader of the shifted digit pairs in :data:`PAIRS`."""
    from bench_plugins.tasks.shifts import combine

    src, tgt = PAIRS[request.name]

    def base(n):
        sub = TaskRequest(name=n, data_dir=request.data_dir, download=request.download, options=request.options)
        return load_torchvision_task(sub)

    source = base(src)
    task = combine(request.name, source, base(tgt), src, tgt)
    task.extra = dict(source.extra)
    return task
