"""The report: from run folders to tables, plots and the static site.

- :mod:`~bench.report.aggregate`: records -> rows by configuration, seed counts, failures,
  paired head-start.
- :mod:`~bench.report.ranking`: ranks, statistical ties and label efficiency.
- :mod:`~bench.report.tables`: the leaderboard's tables and their rendering.
- :mod:`~bench.report.domain`: the domain-adaptation tables (paired gain, critic, oracle bound).
- :mod:`~bench.report.stream`: the continual-learning table and the heat map of R.
- :mod:`~bench.report.episodes`: the few-shot episode and estimator-correlation tables.
- :mod:`~bench.report.plots`: matplotlib figures.
- :mod:`~bench.report.validate`: ``bench validate``: is a results folder fit to publish?
- :mod:`~bench.report.site`: the static site (Jinja2 templates, autoescaped).
"""
