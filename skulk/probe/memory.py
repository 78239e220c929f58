"""RAM and swap, from psutil."""

import psutil

from skulk.types.ids import Memory
from skulk.types.node import MemoryUsage


def read_memory() -> MemoryUsage:
    """`ramAvailable` is what new allocations can get without swapping (psutil's `available`)."""
    ram = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return MemoryUsage(
        ram_total=Memory(in_bytes=ram.total),
        ram_available=Memory(in_bytes=min(ram.available, ram.total)),
        swap_total=Memory(in_bytes=swap.total),
        swap_available=Memory(in_bytes=min(swap.free, swap.total)),
    )
