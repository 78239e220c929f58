"""CPU sets for ranks that share one machine (tests, single-box rings).

The ring backend's socket threads busy-poll, so each local rank gets its own cores when there
are enough; with fewer cores than ranks they share instead of failing.
"""

import os
from collections.abc import Sequence

from skulk.engine.distributed import plan_affinity


def available_cpus() -> list[int]:
    """CPUs this process may run on (all of os.cpu_count() where affinity is unsupported)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def split_cpus(n_ranks: int, available: Sequence[int] | None = None) -> list[list[int]]:
    """One CPU list per local rank: disjoint contiguous blocks, or shared round-robin when short."""
    if n_ranks < 1:
        return []
    cpus = sorted(available) if available is not None else available_cpus()
    if not cpus:
        return [[] for _ in range(n_ranks)]  # nothing known: no pinning
    return [sorted(s) for s in plan_affinity(n_ranks, cpus)]


def cpus_for_rank(index: int, n_ranks: int, available: Sequence[int] | None = None) -> list[int]:
    """The CPUs of the index-th of n_ranks ranks on this machine."""
    return split_cpus(n_ranks, available)[index]
