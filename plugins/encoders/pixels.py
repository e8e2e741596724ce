"""The raw-input baseline: the image itself, resized and flattened, is the feature vector.

No learned encoder, so strategies that train or need pre-trained weights are skipped for it;
feature strategies (linear probe, kNN, ...) on pixels are the floor every encoder must beat.
"""

from __future__ import annotations

import bench
from bench.specs import EncoderSpec

DEFAULT_SIZE = 16  # for tasks of mixed image sizes


@bench.hookimpl
def bench_register_encoders():
    return [
        EncoderSpec(
            name="pixels",
            description="raw-pixel baseline: the grey image at its native size (or --resolution), flattened "
            "(no learned encoder)",
            loader="bench_plugins.encoders._pixels:load",
            pretraining_data=(),
            metadata={"params": 0, "feature_dim": DEFAULT_SIZE * DEFAULT_SIZE, "input_size": DEFAULT_SIZE,
                      "trainable": False, "license": "n/a"},
        )
    ]

