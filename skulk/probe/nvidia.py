"""NVIDIA GPUs through NVML, one by one and summed. Optional: no pynvml, no driver or no GPU means no accelerator."""

import logging
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from skulk.types.devices import MAX_BYTES, MAX_DEVICES, DeviceInfo
from skulk.types.node import AcceleratorInfo

log = logging.getLogger(__name__)
T = TypeVar("T")


def _load_nvml() -> Any:
    """Import pynvml and initialise NVML; None when either is unavailable."""
    try:
        with warnings.catch_warnings():  # the pynvml shim warns that it is deprecated
            warnings.simplefilter("ignore")
            import pynvml
        pynvml.nvmlInit()
    except Exception as exc:  # ImportError, NVMLError (no driver / library), OSError
        log.debug("NVML unavailable: %s", exc)
        return None
    return pynvml


def _try(call: Callable[[], T]) -> T | None:
    """One NVML query; a field the device or driver does not support reads as None."""
    try:
        return call()
    except Exception:
        return None


def _device_name(nvml: Any, handle: Any) -> str:
    name = _try(lambda: nvml.nvmlDeviceGetName(handle)) or "NVIDIA GPU"
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name)


class NvidiaProbe:
    """Initialises NVML once, caches device handles and names, then reads live metrics."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] | None = None  # None until the first read tries NVML
        self._name = ""
        self._names: list[str] = []
        self._indexes: list[int] = []

    def _setup(self) -> list[Any]:
        self._handles = []
        nvml = self._nvml = _load_nvml()
        if nvml is None:
            return self._handles
        count = _try(nvml.nvmlDeviceGetCount) or 0
        handles = [_try(lambda i=i: nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        self._indexes = [i for i, h in enumerate(handles) if h is not None]  # NVML's own numbering
        self._handles = [h for h in handles if h is not None]
        self._names = [_device_name(nvml, h) for h in self._handles]
        if self._handles:
            name = self._names[0]
            self._name = name if len(self._handles) == 1 else f"{len(self._handles)}x {name}"
        return self._handles

    def read_all(self) -> tuple[list[DeviceInfo], AcceleratorInfo | None]:
        """Each GPU as a device, and all of them as one accelerator (summed memory and power,
        mean load, hottest die); ([], None) without NVML or a GPU."""
        handles = self._setup() if self._handles is None else self._handles
        if not handles:
            return [], None
        nvml = self._nvml
        devices, loads, temps, powers, totals, used = [], [], [], [], [], []
        for pos, (index, h) in enumerate(zip(self._indexes, handles)):
            rates = _try(lambda: nvml.nvmlDeviceGetUtilizationRates(h))
            memory = _try(lambda: nvml.nvmlDeviceGetMemoryInfo(h))
            temps.append(_try(lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)))
            milliwatts = _try(lambda: nvml.nvmlDeviceGetPowerUsage(h))
            loads.append(min(1.0, max(0.0, rates.gpu / 100.0)) if rates is not None else None)
            powers.append(milliwatts / 1000.0 if milliwatts is not None else None)
            totals.append(memory.total if memory is not None else None)
            used.append(memory.used if memory is not None else None)
            if index >= MAX_DEVICES:
                continue
            devices.append(DeviceInfo(index=index, vendor="nvidia", name=self._names[pos][:256],
                                      memory_total_bytes=min(totals[-1] or 0, MAX_BYTES),
                                      memory_used_bytes=min(used[-1] or 0, MAX_BYTES),
                                      utilization_ratio=loads[-1]))
        return devices, AcceleratorInfo(
            vendor="nvidia",
            name=self._name,
            utilization_ratio=_mean(loads),
            vram_total_bytes=_sum(totals),
            vram_used_bytes=_sum(used),
            temperature_celsius=_max(temps),
            power_watts=_sum(powers),
        )

    def read(self) -> AcceleratorInfo | None:
        return self.read_all()[1]


def _known(values: list[Any]) -> list[Any]:
    return [v for v in values if v is not None]


def _sum(values: list[Any]) -> Any:
    known = _known(values)
    return sum(known) if known else None


def _mean(values: list[Any]) -> float | None:
    known = _known(values)
    return sum(known) / len(known) if known else None


def _max(values: list[Any]) -> float | None:
    known = _known(values)
    return float(max(known)) if known else None
