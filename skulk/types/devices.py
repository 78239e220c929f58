"""Accelerators one by one, a node's resource slots, and how much of a llama.cpp model a device holds.

Peers report these about themselves, so every field is bounded: far above real machines, far
below harm (a list of 64 devices, 256-character names, byte counts under 2^53).
"""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from skulk.types.base import WireModel

DeviceVendor = Literal["nvidia", "amd", "intel", "apple", "unknown"]
MAX_DEVICES = 64
MAX_BYTES = (1 << 53) - 1
MAX_LAYERS = 1 << 16
DeviceName = Annotated[str, Field(max_length=256)]
Bytes = Annotated[int, Field(ge=0, le=MAX_BYTES)]

# KV cells a llama.cpp runner allocates (all its sequences together). The runner's default and
# the master's offload arithmetic both read it here, so what the preview promises is what loads.
LLAMA_KV_CELLS = 32768

# The variable that hides every other device from a runner, per vendor (llama.cpp's backend for it).
# Apple has one unified-memory GPU and nothing to pin.
VISIBLE_DEVICES_ENV: dict[str, str] = {
    "nvidia": "CUDA_VISIBLE_DEVICES",
    "amd": "HIP_VISIBLE_DEVICES",
    "intel": "GGML_VK_VISIBLE_DEVICES",
    "unknown": "GGML_VK_VISIBLE_DEVICES",
}


class DeviceInfo(WireModel):
    """One accelerator as its node sees it; `mock` ones come from `devices.mock` and run nothing."""

    index: int = Field(ge=0, lt=MAX_DEVICES)  # the driver's index: what the pinning variable names
    vendor: DeviceVendor
    name: DeviceName
    memory_total_bytes: Bytes
    memory_used_bytes: Bytes = 0
    utilization_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    mock: bool = False

    @property
    def memory_free_bytes(self) -> int:
        return max(0, self.memory_total_bytes - self.memory_used_bytes)

    def label(self) -> str:
        """How messages name the device: 'GPU 1 "RTX 4090" (nvidia, mock)'."""
        return f'GPU {self.index} "{self.name}" ({self.vendor}{", mock" if self.mock else ""})'


class ResourceSlots(WireModel):
    """What a node offers a scheduler: cores, RAM, and its accelerators summed."""

    cpu_cores: int = Field(default=0, ge=0, le=1 << 20)
    ram_bytes: Bytes = 0
    accelerator_count: int = Field(default=0, ge=0, le=MAX_DEVICES)
    accelerator_memory_bytes: Bytes = 0
    mock_accelerators: bool = False  # true when the accelerators are devices.mock ones


class GpuOffload(WireModel):
    """How many of a llama.cpp model's layers go to which device of the driver node (the rest on CPU)."""

    device_index: int | None = Field(default=None, ge=0, lt=MAX_DEVICES)  # None: no device has room
    device_name: DeviceName = ""
    vendor: DeviceVendor = "unknown"
    mock: bool = False
    n_gpu_layers: int = Field(default=0, ge=0, le=MAX_LAYERS)
    total_layers: int = Field(default=0, ge=0, le=MAX_LAYERS)
    reason: str = Field(default="", max_length=1024)  # the arithmetic, naming the device

    @model_validator(mode="after")
    def _within_the_model(self) -> "GpuOffload":
        if self.n_gpu_layers > self.total_layers:
            raise ValueError(f"n_gpu_layers {self.n_gpu_layers} is more than the model's {self.total_layers}")
        if self.n_gpu_layers and self.device_index is None:
            raise ValueError("layers offloaded to no device")
        return self

    def pin_env(self) -> dict[str, str]:
        """The runner's visible-devices variable (CUDA_VISIBLE_DEVICES=1, ...); {} for none or Apple."""
        name = VISIBLE_DEVICES_ENV.get(self.vendor)
        if name is None or self.device_index is None or self.n_gpu_layers == 0:
            return {}
        env = {name: str(self.device_index)}
        if self.vendor == "nvidia":  # NVML counts in PCI order; make CUDA count the same way
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return env
