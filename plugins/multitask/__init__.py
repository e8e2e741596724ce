"""Built-in multi-task loss weightings (``bench run --multitask``): registration in :mod:`.weightings`."""
