"""What a node reports about itself: identity, memory, system, disk, network."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from skulk.types.base import TaggedModel, WireModel, tagged_union
from skulk.types.devices import MAX_DEVICES, DeviceInfo, ResourceSlots
from skulk.types.ids import Memory

InterfaceType = Literal["wifi", "ethernet", "maybe_ethernet", "thunderbolt", "unknown"]
# Bounds for what peers report about themselves: far above any real value, far below harm.
ShortText = Annotated[str, Field(max_length=256)]
MAX_INTERFACES = 256


class NetworkInterfaceInfo(WireModel):
    name: ShortText
    ip_address: str = Field(max_length=64)
    interface_type: InterfaceType = "unknown"


class NodeNetworkInfo(WireModel):
    interfaces: list[NetworkInterfaceInfo] = Field(max_length=MAX_INTERFACES)


class MemoryUsage(WireModel):
    ram_total: Memory
    ram_available: Memory
    swap_total: Memory
    swap_available: Memory


class AcceleratorInfo(WireModel):
    vendor: Literal["apple", "amd", "nvidia", "unknown"]
    name: ShortText
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
    cpu_count: int = Field(default=0, ge=0, le=1 << 20)
    accelerator: AcceleratorInfo | None = None
    # inference engines and compute backends installed here ("mlx", "mlx-cpu", "llama_cpp", ...)
    engines: list[Annotated[str, StringConstraints(max_length=32)]] = Field(default_factory=list, max_length=16)
    has_worker: bool = True  # False for a --no-worker node: placement never gives it shards
    devices: list[DeviceInfo] = Field(default_factory=list, max_length=MAX_DEVICES)  # one per accelerator
    resources: ResourceSlots | None = None


class DiskUsage(WireModel):
    total: Memory
    available: Memory


class NodeIdentity(WireModel):
    friendly_name: ShortText
    hostname: ShortText = ""
    model: ShortText = ""
    chip: ShortText = ""
    os_version: ShortText = ""
    skulk_version: ShortText = ""


class NodeNetworkInterfaces(TaggedModel):
    """Carried on the ordered event path: it feeds the topology."""

    ifaces: list[NetworkInterfaceInfo] = Field(max_length=MAX_INTERFACES)


class NodeHeartbeatInfo(TaggedModel):
    """A liveness ping with nothing else attached."""


GatheredInfo = tagged_union(NodeNetworkInterfaces, NodeHeartbeatInfo)
