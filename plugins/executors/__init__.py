"""Built-in executors: ``local`` (this process or ``--jobs N`` processes), ``ray`` and ``submitit`` (extras)."""
