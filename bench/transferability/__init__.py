"""Transferability (``bench rank``): which encoder to pick for a task, before any training.

- :mod:`~bench.transferability.estimators`: LogME, LEEP, NCE, H-score and kNN scores from frozen
  features, and their rank correlation with measured accuracy.
"""
