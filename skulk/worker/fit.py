"""The worker's own memory check before it loads a shard (the master's view may be stale)."""

from collections.abc import Callable

from skulk.master.memory_estimate import estimate_shard_footprint, shard_fraction, usable_memory
from skulk.types.node import MemoryUsage

FIT_TOLERANCE = 1.10  # the master already checked; refuse only when clearly over
GB = 1024**3


def shard_fit_problem(shard, memory: MemoryUsage) -> str | None:
    """None if the shard fits this node's usable memory (with tolerance), else the reason."""
    fraction = shard_fraction(shard)
    if fraction is None:
        return None
    need = estimate_shard_footprint(shard.model_card, fraction)
    usable = usable_memory(memory)
    if need <= usable * FIT_TOLERANCE:
        return None
    return f"needs {need / GB:.2f} GB but only {usable / GB:.2f} GB is usable here"


def fit_checker(read_memory: Callable[[], MemoryUsage]) -> Callable[[object], str | None]:
    return lambda shard: shard_fit_problem(shard, read_memory())
