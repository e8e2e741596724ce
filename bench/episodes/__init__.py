"""Few-shot episodes (``bench run --episodes N:K:Q:E``).

- :mod:`~bench.episodes.spec`: the spec, seeded paired episode sampling from the test split, one
  episode (support -> sealed FitContext, query -> label-free view), the 95% CI.
- :mod:`~bench.episodes.driver`: the driver writing ``DIR/episodes.jsonl`` (resumable).
"""
