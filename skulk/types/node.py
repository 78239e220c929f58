"""What a node reports about itself: identity, memory, system, disk, network."""

from typing import Literal

from skulk.types.base import TaggedModel, WireModel, tagged_union
from skulk.types.ids import Memory

InterfaceType = Literal["wifi", "ethernet", "maybe_ethernet", "thunderbolt", "unknown"]


class NetworkInterfaceInfo(WireModel):
    name: str
    ip_address: str
    interface_type: InterfaceType = "unknown"


class NodeNetworkInfo(WireModel):
    interfaces: list[NetworkInterfaceInfo]


class MemoryUsage(WireModel):
    ram_total: Memory
    ram_available: Memory
    swap_total: Memory
    swap_available: Memory


class AcceleratorInfo(WireModel):
    vendor: Literal["apple", "amd", "nvidia", "unknown"]
    name: str
    utilization_ratio: float | None = None
    vram_total_bytes: int | None = None
    vram_used_bytes: int | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None


class SystemPerformanceProfile(WireModel):
    gpu_usage: float = 0.0
    temp: float = 0.0
    sys_power: float = 0.0
    pcpu_usage: float = 0.0
    ecpu_usage: float = 0.0
    cpu_count: int = 0
    accelerator: AcceleratorInfo | None = None


class DiskUsage(WireModel):
    total: Memory
    available: Memory


class NodeIdentity(WireModel):
    friendly_name: str
    hostname: str = ""
    model: str = ""
    chip: str = ""
    os_version: str = ""
    skulk_version: str = ""


class NodeNetworkInterfaces(TaggedModel):
    """Carried on the ordered event path: it feeds the topology."""

    ifaces: list[NetworkInterfaceInfo]


class NodeHeartbeatInfo(TaggedModel):
    """A liveness ping with nothing else attached."""


GatheredInfo = tagged_union(NodeNetworkInterfaces, NodeHeartbeatInfo)
