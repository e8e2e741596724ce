"""The built-in continual strategies (``bench run --stream``), written as a third-party package would
write them: :mod:`.strategies` registers ``ContinualSpec`` objects with string loaders (no torch at
registration), :mod:`._strategies` implements them on the public API (:mod:`bench.continual.spec`,
:mod:`bench.training`, :mod:`bench.continual.penalties`)."""
