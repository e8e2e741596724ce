"""`bench run -c run.toml`: keys from the config file reach the run's configuration."""

from __future__ import annotations

from bench.cli import build_parser
from bench.cli.run import run_config_from_args


def _config(tmp_path, toml: str, *argv: str):
    path = tmp_path / "run.toml"
    path.write_text(toml)
    return run_config_from_args(build_parser().parse_args(["run", "-c", str(path), *argv]))


def test_pretraining_index_from_the_config_file_is_used(tmp_path):
    """The flag appends (its default is []), which used to hide the file's value."""
    cfg = _config(tmp_path, 'pretraining_index = ["a.idx", "b.idx"]\n')
    assert cfg.pretraining_indexes == ["a.idx", "b.idx"]


def test_pretraining_index_flag_wins_over_the_config_file(tmp_path):
    cfg = _config(tmp_path, 'pretraining_index = ["a.idx"]\n', "--pretraining-index", "c.idx")
    assert cfg.pretraining_indexes == ["c.idx"]
