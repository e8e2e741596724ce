"""Fashion-MNIST (Zalando, MIT licence): 70,000 grey 28x28 photos of clothing in 10 classes, read
from the official IDX files; the offline natural-image task.

Where the files are looked for, in order: ``--data-dir`` (``request.data_dir``), ``$BENCH_DATA_DIR``,
then ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package). In each
folder the four files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (gzipped or not) may sit in the folder
itself, in ``fashion-mnist/`` or in torchvision's ``FashionMNIST/raw/``.

The split is fixed and sized for CPUs (recorded in ``split_info``): a stratified sample of the
official train set, seed 0, 1,000 per class (10,000 pool), and a stratified sample of the official
test set, seed 1, 200 per class (2,000 test). Item ids are ``fashion-mnist/train/<index>`` and
``fashion-mnist/test/<index>``, indices into the official files.

Forgetting after adapting to Fashion-MNIST is measured on ``mnist5k`` (handwritten digits, far
from clothing, always available offline); for the other direction pass ``--forgetting fashion-mnist``.
Corruption shifts work as for any task (``fashion-mnist@blur:3``). ``mnist5k->fashion-mnist`` is
not a shift: the classes differ.
"""

from __future__ import annotations

import bench
from bench.specs import TaskSpec

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
#: Words for zero-shot prompts (TaskData.extra["prompt_names"]).
PROMPT_NAMES = ["t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                "ankle boot"]
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
POOL_PER_CLASS = 1000
TEST_PER_CLASS = 200
POOL_SEED, TEST_SEED = 0, 1


@bench.hookimpl
def bench_register_tasks():
    return [
        TaskSpec(
            name="fashion-mnist",
            description=f"Fashion-MNIST: grey 28x28 clothing photos, 10 classes ({10 * POOL_PER_CLASS:,} pool / "
            f"{10 * TEST_PER_CLASS:,} test, stratified samples of the official splits) "
            "[--data-dir, or apt-get install dataset-fashion-mnist]",
            loader="bench_plugins.tasks._fashion_mnist:load_fashion_mnist",
            dataset=("fashion-mnist",),
            native_size=28,
            reference_task="mnist5k",
            metadata={"classes": 10, "pool": 10 * POOL_PER_CLASS, "test": 10 * TEST_PER_CLASS,
                      "license": "mit"},
        )
    ]
