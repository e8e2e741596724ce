"""Shifted tasks keep the task's prompts (zero-shot reads them from ``extra``)."""

from __future__ import annotations


def test_shifted_task_keeps_the_task_prompts():
    """Guards against shifted_task() dropping ``extra``: zero-shot on mnist5k->digits lost the
    digit words and prompted with the bare class names."""
    from bench.loading import TaskLoader
    from bench.plugins import load_plugins

    task = TaskLoader(load_plugins(), None, False).load("mnist5k->digits")
    assert task.extra["prompt_names"][:2] == ["zero", "one"]
