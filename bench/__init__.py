"""transfer-bench: a plugin-based benchmark suite for transfer learning."""

from bench.hookspecs import hookimpl
from bench.specs import EncoderRequest, EncoderSpec, ExecutorSpec, StrategySpec, TaskRequest, TaskSpec

__version__ = "0.1.0"

__all__ = [
    "EncoderRequest",
    "EncoderSpec",
    "ExecutorSpec",
    "StrategySpec",
    "TaskRequest",
    "TaskSpec",
    "__version__",
    "hookimpl",
]
