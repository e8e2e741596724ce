"""Nothing a plugin or a results file supplies reaches the terminal as a control sequence."""

from __future__ import annotations

import json

from bench.cli import main
from bench.cli.safe_output import escape_controls


def test_escape_controls_keeps_layout_and_escapes_the_rest():
    assert escape_controls("a\tb\nc") == "a\tb\nc"
    assert escape_controls("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert escape_controls("bell\x07 del\x7f c1\x9b") == "bell\\x07 del\\x7f c1\\x9b"


def _record(encoder: str, seed: int) -> dict:
    return {"schema": 2, "encoder": encoder, "strategy": "linear-probe", "task": "toy", "budget": "1/class",
            "seed": seed, "config_id": "default", "status": "ok", "error": None,
            "metrics": {"accuracy": 0.5 + seed / 10, "balanced_accuracy": 0.5}, "trainable_params": 1,
            "total_params": 1, "wall_s": 0.1, "peak_mem_mb": 1.0, "device": "cpu", "versions": {}}


def test_leaderboard_escapes_an_ansi_sequence_from_a_results_file(tmp_path, capsys):
    """A foreign results.jsonl with an escape sequence in a name used to repaint the terminal."""
    run = tmp_path / "run"
    run.mkdir()
    evil = "\x1b[2J\x1b[31mevil"
    (run / "results.jsonl").write_text("".join(json.dumps(_record(evil, s)) + "\n" for s in range(2)))
    assert main(["leaderboard", str(run)]) == 0
    out = capsys.readouterr().out
    assert "evil" in out and "\x1b" not in out and "\\x1b[31mevil" in out
