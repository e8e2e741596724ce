"""Few-shot episodes (``bench run --episodes N:K:Q:E``).

- :mod:`~bench.episodes.spec`: the spec, seeded paired episode sampling from the test split's novel
  classes, one episode (support -> sealed FitContext, query -> label-free view), the meta-training
  hook on the train split's base classes, the 95% CI.
- :mod:`~bench.episodes.classes`: the base/novel class split (declared by the task, or derived, seeded).
- :mod:`~bench.episodes.meta`: what meta-learners share (base-class training episodes, the
  prototypical loss, a head's inner SGD steps, an adapted encoder's memoised embedding).
- :mod:`~bench.episodes.driver`: the driver writing ``DIR/episodes.jsonl`` (resumable).
"""
