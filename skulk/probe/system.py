"""CPU load and temperature plus the GPU, as one SystemPerformanceProfile."""

import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from skulk.probe.devices import MockSpec, pick_devices, resource_slots
from skulk.probe.engines import read_engines
from skulk.probe.identity import _cpu_model
from skulk.probe.memory import read_memory
from skulk.probe.nvidia import NvidiaProbe
from skulk.types.node import SystemPerformanceProfile

# hwmon chips that report the CPU package, best first (Intel, AMD, ARM SoCs, ACPI).
_CPU_CHIPS = (
    "coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "soc_thermal", "acpitz",
)
_HWMON = Path("/sys/class/hwmon")
_PSUTIL_REFRESH_S = 30.0  # psutil reads every sensor file each call: too slow for every second


class CpuTemperature:
    """Finds the CPU sensor once, then reads one sysfs file (or a cached psutil value)."""

    def __init__(self, hwmon: Path = _HWMON) -> None:
        self._hwmon = hwmon
        self._file: Path | None = None
        self._searched = False
        self._cached: float | None = None
        self._cached_at = float("-inf")

    def read(self) -> float | None:
        if not self._searched:
            self._searched = True
            self._file = self._find_sensor_file()
        if self._file is not None:
            try:
                return int(self._file.read_text()) / 1000.0
            except (OSError, ValueError):
                self._file = None  # the sensor went away; fall back to psutil
        now = time.monotonic()
        if now - self._cached_at >= _PSUTIL_REFRESH_S:
            self._cached, self._cached_at = _psutil_cpu_temperature(), now
        return self._cached

    def _find_sensor_file(self) -> Path | None:
        if not sys.platform.startswith("linux"):
            return None
        try:
            chips = {_read_name(d): d for d in sorted(self._hwmon.iterdir())}
        except OSError:
            return None
        for chip in _CPU_CHIPS:
            if chip in chips:
                inputs = sorted(chips[chip].glob("temp*_input"))
                if inputs:
                    return inputs[0]  # temp1 is the package / Tctl reading on these chips
        return None


def _read_name(hwmon_dir: Path) -> str:
    try:
        return (hwmon_dir / "name").read_text().strip()
    except OSError:
        return ""


def _psutil_cpu_temperature() -> float | None:
    reader = getattr(psutil, "sensors_temperatures", None)  # absent on macOS and Windows
    if reader is None:
        return None
    try:
        sensors = reader()
    except Exception:
        return None
    for chip in (*_CPU_CHIPS, *sensors):
        readings = [t.current for t in sensors.get(chip, []) if t.current]
        if readings:
            return float(readings[0])
    return None


@functools.cache
def _cpu_count() -> int:
    return psutil.cpu_count(logical=True) or 0


_NVIDIA = NvidiaProbe()
_CPU_TEMPERATURE = CpuTemperature()


def read_system(mock_devices: Sequence[MockSpec] = ()) -> SystemPerformanceProfile:
    """Usage figures are ratios in 0..1; `temp` is the GPU's if there is one, else the CPU's.

    `sysPower` is the GPUs' draw, the only power figure Linux gives cheaply. CPU load is
    psutil's non-blocking figure since the previous call (0.0 on the first). `devices` lists
    each accelerator (`mock_devices`, from devices.mock, replace the real ones).
    """
    nvidia_devices, accelerator = _NVIDIA.read_all()
    cpu_temp = _CPU_TEMPERATURE.read()
    gpu_temp = accelerator.temperature_celsius if accelerator else None
    temp = gpu_temp if gpu_temp is not None else cpu_temp
    memory = read_memory()
    devices = pick_devices(mock_devices, nvidia_devices, memory, _cpu_model())
    return SystemPerformanceProfile(
        gpu_usage=(accelerator.utilization_ratio or 0.0) if accelerator else 0.0,
        temp=temp or 0.0,
        sys_power=(accelerator.power_watts or 0.0) if accelerator else 0.0,
        pcpu_usage=min(max(psutil.cpu_percent(interval=None) / 100.0, 0.0), 1.0),
        ecpu_usage=0.0,
        cpu_count=_cpu_count(),
        accelerator=accelerator,
        engines=list(read_engines()),
        devices=devices,
        resources=resource_slots(_cpu_count(), memory, devices),
    )
