"""Declared overlap: does an encoder's declared pretraining data include a task's declared datasets?

Dataset names are normalised through alias tables, datasets drawn from one image pool form a
family, and some pretraining corpora declare other datasets inside them.
"""

from __future__ import annotations

from collections.abc import Iterable

_ALIASES = {
    "imagenet": "imagenet-1k", "in1k": "imagenet-1k", "imagenet1k": "imagenet-1k", "ilsvrc2012": "imagenet-1k",
    "ilsvrc-2012": "imagenet-1k", "in21k": "imagenet-21k", "imagenet21k": "imagenet-21k",
    "imagenet-22k": "imagenet-21k", "in22k": "imagenet-21k", "imagenet22k": "imagenet-21k",
    "in12k": "imagenet-12k", "imagenet12k": "imagenet-12k", "cifar10": "cifar-10", "cifar100": "cifar-100",
    "flowers-102": "flowers102", "oxford-flowers102": "flowers102", "pets": "oxford-pets",
    "oxford-iiit-pet": "oxford-pets", "lvd142m": "lvd-142m",
}
#: Datasets drawn from the same image pool: a task from one overlaps pretraining on another.
_FAMILIES = {
    "imagenet": {"imagenet-1k", "imagenet-21k", "imagenet-12k", "imagenet-v2", "imagenet-r", "imagenet-a",
                 "imagenet-sketch"},
    "nist": {"mnist", "emnist", "qmnist", "kmnist-free-nist"},
    "cifar": {"cifar-10", "cifar-100", "cifar-10.1", "tiny-images"},
}
#: Pretraining corpora that declare other datasets inside them (DINOv2 paper, Table 15: LVD-142M
#: was curated around these datasets' train splits).
_CONTAINS = {
    "lvd-142m": {"imagenet-1k", "imagenet-21k", "caltech101", "cub-200", "dtd", "fgvc-aircraft", "flowers102",
                 "food-101", "oxford-pets", "stanford-cars", "sun397", "pascal-voc"},
}


def _norm(name: str) -> str:
    n = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    return _ALIASES.get(n, n)


def declared_overlap(encoder_pretraining_data: Iterable[str], task_dataset: Iterable[str]) -> list[str]:
    """Declared datasets of the task that the encoder's declared pretraining data includes.

    MTEB-style: a task drawn from ImageNet with an ImageNet-pretrained encoder is not a transfer
    to unseen images. Returns ``"TASK_DATASET (in ENCODER_DATA)"`` strings, empty when none.
    """
    out = []
    enc = [_norm(e) for e in encoder_pretraining_data]
    for t in task_dataset:
        tn = _norm(t)
        for e in enc:
            same_family = any(tn in fam and e in fam for fam in _FAMILIES.values())
            if tn == e or same_family or tn in _CONTAINS.get(e, ()):
                out.append(f"{t} (in {e})")
                break
    return out
