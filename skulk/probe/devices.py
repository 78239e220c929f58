"""This node's accelerators one by one, and its resource slots.

NVIDIA GPUs come from NVML; Apple silicon has one unified-memory GPU (its memory is the RAM);
a plain CPU machine has none. `devices.mock` replaces whatever was found with configured fakes,
so placement and pinning can be tested without a GPU.
"""

import platform
import sys
from collections.abc import Sequence
from typing import Protocol

from skulk.types.devices import MAX_BYTES, MAX_DEVICES, DeviceInfo, ResourceSlots
from skulk.types.node import MemoryUsage

GIB = 1024**3


class MockSpec(Protocol):
    """What a `devices.mock` entry gives (skulk.config.devices.MockDevice)."""

    name: str
    memory_gb: float
    vendor: str


def mock_devices(specs: Sequence[MockSpec]) -> list[DeviceInfo]:
    """Configured fakes, numbered from 0 in the order given; idle and empty, marked mock."""
    return [DeviceInfo(index=i, vendor=spec.vendor, name=spec.name[:256], mock=True, utilization_ratio=0.0,
                       memory_total_bytes=min(int(spec.memory_gb * GIB), MAX_BYTES), memory_used_bytes=0)
            for i, spec in enumerate(specs[:MAX_DEVICES])]


def apple_device(memory: MemoryUsage, chip: str, *, platform_name: str = sys.platform,
                 machine: str = platform.machine()) -> list[DeviceInfo]:
    """Apple silicon's GPU shares the RAM: one device whose free memory is what RAM has free."""
    if platform_name != "darwin" or machine != "arm64":
        return []
    total = memory.ram_total.in_bytes
    used = max(0, total - memory.ram_available.in_bytes)
    return [DeviceInfo(index=0, vendor="apple", name=(chip or "Apple GPU")[:256],
                       memory_total_bytes=min(total, MAX_BYTES), memory_used_bytes=min(used, MAX_BYTES))]


def pick_devices(mock: Sequence[MockSpec], nvidia: list[DeviceInfo], memory: MemoryUsage,
                 chip: str) -> list[DeviceInfo]:
    """Mock devices when configured (they replace the real ones), else NVIDIA's, else Apple's."""
    if mock:
        return mock_devices(mock)
    return nvidia[:MAX_DEVICES] or apple_device(memory, chip)


def resource_slots(cpu_cores: int, memory: MemoryUsage, devices: Sequence[DeviceInfo]) -> ResourceSlots:
    return ResourceSlots(
        cpu_cores=cpu_cores, ram_bytes=min(memory.ram_total.in_bytes, MAX_BYTES),
        accelerator_count=len(devices),
        accelerator_memory_bytes=min(sum(d.memory_total_bytes for d in devices), MAX_BYTES),
        mock_accelerators=any(d.mock for d in devices))
