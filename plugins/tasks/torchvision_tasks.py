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

import importlib

import bench
from bench.specs import TaskSpec

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
#: Digit tasks: forgetting is measured on the offline MNIST/UCI tasks (always available).
_REFERENCE = {"mnist": "digits", "usps": "mnist5k", "svhn": "mnist5k"}
PAIRS = {"mnist->usps": ("mnist", "usps"), "usps->mnist": ("usps", "mnist"), "svhn->mnist": ("svhn", "mnist")}


@bench.hookimpl
def bench_register_tasks():
    specs = []
    for name, d in DATASETS.items():
        specs.append(TaskSpec(name=name, description=f"{d['about']} [torchvision; --data-dir/--download]",
                              loader="bench_plugins.tasks._torchvision_tasks:load_torchvision_task",
                              dataset=d["dataset"], native_size=d["native"], reference_task=_REFERENCE.get(name),
                              metadata={"torchvision": d["cls"], "needs_data_dir": True}))
    for name, (src, tgt) in PAIRS.items():
        specs.append(TaskSpec(
            name=name,
            description=f"shift: labelled {src} (source) -> unlabelled {tgt} (target), 10 digit classes "
            "[torchvision; --data-dir/--download]",
            loader="bench_plugins.tasks._torchvision_tasks:load_torchvision_pair",
            dataset=DATASETS[src]["dataset"] + DATASETS[tgt]["dataset"], shifted=True, reference_task=_REFERENCE[src],
            metadata={"classes": 10, "source": src, "target": tgt, "needs_data_dir": True},
        ))
    return specs


def __getattr__(name: str):
    # The loaders moved to torchvision_data (which imports torchvision at the top); importing it
    # only when asked keeps this registration module cheap for ``bench list``.
    if name in ("load_torchvision_task", "load_torchvision_pair"):
        return getattr(importlib.import_module("bench_plugins.tasks._torchvision_tasks"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
