"""The inference engine that runs inside a runner subprocess: load a (sharded) mlx-lm model
and generate tokens with continuous batching. Imports stdlib, numpy, mlx, mlx_lm,
transformers, skulk.types and skulk.errors only.

Names resolve lazily, so the node process can use skulk.engine.distributed (hostfiles,
environment, pinning) without importing MLX.
"""

import importlib
from typing import Any

_EXPORTS = {
    "Engine": "generate", "StepOutput": "generate", "Usage": "generate",
    "LoadedModel": "loading", "load_shard": "loading",
    "ContextLengthExceeded": "errors", "GroupConnectTimeout": "errors",
    "InvalidSamplingParams": "errors", "RingPeerLost": "errors", "ShardingUnsupported": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'skulk.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"skulk.engine.{_EXPORTS[name]}"), name)
