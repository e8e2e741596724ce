"""The report: from run folders to tables, plots and the static site.

- :mod:`~bench.report.runs`: loading run folders: one :class:`~bench.report.runs.Runs` with their
  records, few-shot episodes and estimator results.
- :mod:`~bench.report.aggregate`: records -> rows by configuration, seed counts, failures,
  paired head-start.
- :mod:`~bench.report.ranking`: ranks, statistical ties and label efficiency.
- :mod:`~bench.report.sections`: the ordered list of the leaderboard's sections.
- :mod:`~bench.report.tables`: the board and tables of every section, rendered in every format.
- :mod:`~bench.report.budget`: the budget tables of each task (accuracy, head-start, cost, ...).
- :mod:`~bench.report.domain`: the domain-adaptation tables (paired gain, critic, oracle bound).
- :mod:`~bench.report.stream`: the continual-learning table and the heat map of R.
- :mod:`~bench.report.episodes`: the few-shot episodes table.
- :mod:`~bench.report.meta`: the meta-learning table (novel-class episodes per K-shot, meta-training cost).
- :mod:`~bench.report.estimators`: the estimator-correlation table (``bench rank --against``).
- :mod:`~bench.report.intervals`: rank intervals (paired bootstrap) and the overall ranking's comparable set.
- :mod:`~bench.report.names`: row names from the changes against the strategy's registered default.
- :mod:`~bench.report.flags`: each flag's meaning, the provenance flags, every flagged row of a board.
- :mod:`~bench.report.plots`: matplotlib figures.
- :mod:`~bench.report.figures`: the site's per-task charts, with their key and point metadata.
- :mod:`~bench.report.validate`: ``bench validate``: is a results folder fit to publish?
- :mod:`~bench.report.recompute`: ``bench validate SITE``: do a site's numbers recompute from its files?
- :mod:`~bench.report.site`: the static site (Jinja2 templates, autoescaped).
"""
