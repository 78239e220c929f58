"""The `devices` key: this machine's accelerators as configured (today only mock ones, for testing)."""

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skulk.config.section import ConfigSection

MAX_MOCK_DEVICES = 16


class MockDevice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="What the device is called in /state.")
    memory_gb: float = Field(gt=0, le=1 << 20, description="Its memory in GB (GiB).")
    vendor: Literal["nvidia", "amd", "intel", "apple"] = Field(
        "nvidia", description="Decides the pinning variable (CUDA_VISIBLE_DEVICES, HIP_..., GGML_VK_...).")


class DevicesSettings(ConfigSection):
    mock: tuple[MockDevice, ...] = Field(
        (), max_length=MAX_MOCK_DEVICES,
        description="Fake accelerators this node reports instead of its real ones, e.g. "
        "[{name: Mock A100, memory_gb: 40, vendor: nvidia}]. Placement, previews, device pinning and "
        "the dashboard treat them as GPUs (marked mock everywhere); llama.cpp still runs on the CPU "
        "underneath. For testing on machines without GPUs. Per machine, not synced; needs a restart.",
    )

    @field_validator("mock", mode="before")
    @classmethod
    def _mock_from_json(cls, value: Any) -> Any:
        # SKULK_DEVICES__MOCK carries the list as JSON text.
        return json.loads(value) if isinstance(value, str) and value.strip() else value
