"""transfer-bench: a plugin-based benchmark suite for transfer learning."""

from bench import _compat
from bench.hookspecs import hookimpl
from bench.specs import EncoderRequest, EncoderSpec, ExecutorSpec, StrategySpec, TaskRequest, TaskSpec

__version__ = "0.1.0"

#: The plugin API generation documented in docs/plugins.md (its changelog says what changed).
#: Packages written against an older generation keep working through deprecated aliases.
PLUGIN_API_VERSION = 3

_compat.install()  # the old module paths of API 1 and 2, warning (bench._compat lists them)

__all__ = [
    "PLUGIN_API_VERSION",
    "EncoderRequest",
    "EncoderSpec",
    "ExecutorSpec",
    "StrategySpec",
    "TaskRequest",
    "TaskSpec",
    "__version__",
    "hookimpl",
]
