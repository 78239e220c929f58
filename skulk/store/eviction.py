"""Which staged models to delete. PURE: the inventory, the in-use set and a budget go in,
the victims come out; scanning and deleting live in skulk.store.inventory.

One rule serves all three triggers (instance deactivation, node start-up, purge): a model in
use is never a victim; idle models are kept newest-first while they fit the budget, and once
one does not fit, it and every older one go (so an older model never outlives a newer one).
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass

GB = 1024**3


@dataclass(frozen=True)
class StagedModel:
    model_id: str
    directory: str
    size_bytes: int
    last_used: float  # epoch seconds


def choose_evictions(staged: Sequence[StagedModel], in_use: Collection[str], keep_bytes: int) -> list[StagedModel]:
    """The idle models beyond the `keep_bytes` budget, oldest last-use first."""
    idle = sorted((m for m in staged if m.model_id not in in_use), key=lambda m: (-m.last_used, m.model_id))
    kept, victims = 0, []
    for model in idle:
        if not victims and kept + model.size_bytes <= keep_bytes:
            kept += model.size_bytes
        else:
            victims.append(model)
    return sorted(victims, key=lambda m: (m.last_used, m.model_id))


def choose_purge(staged: Sequence[StagedModel], in_use: Collection[str], model_id: str | None = None) -> list[StagedModel]:
    """A purge: every idle copy (or every idle copy of `model_id`), whatever the budget."""
    return [m for m in staged if m.model_id not in in_use and (model_id is None or m.model_id == model_id)]


def keep_bytes(keep_recent_gb: float) -> int:
    return int(keep_recent_gb * GB)
