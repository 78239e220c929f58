"""skulk.probe: sane readings on this machine, cheap enough to take every second."""

import socket
import statistics
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

import skulk
from skulk.probe import nvidia, read_disk, read_identity, read_interfaces, read_memory, system
from skulk.probe.network import interface_type
from skulk.probe.nvidia import NvidiaProbe
from skulk.probe.system import CpuTemperature, read_system


def test_memory_is_sane():
    memory = read_memory()
    assert memory.ram_total.in_bytes > 0
    assert 0 < memory.ram_available.in_bytes <= memory.ram_total.in_bytes
    assert 0 <= memory.swap_available.in_bytes <= memory.swap_total.in_bytes


def test_system_profile_is_sane():
    read_system()
    sum(i * i for i in range(200_000))  # some CPU work between the two samples
    profile = read_system()
    assert profile.cpu_count >= 1
    assert 0.0 <= profile.pcpu_usage <= 1.0
    assert 0.0 <= profile.gpu_usage <= 1.0
    assert profile.accelerator is None or profile.accelerator.vendor == "nvidia"


def test_missing_nvml_driver_means_no_accelerator(monkeypatch):
    pynvml = pytest.importorskip("pynvml")

    def no_driver():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    probe = NvidiaProbe()
    assert probe.read() is None
    assert probe.read() is None  # the failure is remembered, not retried each second
    monkeypatch.setattr(system, "_NVIDIA", NvidiaProbe())
    profile = read_system()
    assert profile.accelerator is None and profile.gpu_usage == 0.0


def test_missing_pynvml_module_means_no_accelerator(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    assert NvidiaProbe().read() is None


class FakeNvml:
    """Two GPUs; the second cannot report power and its utilisation query fails."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self):
        self.calls = 0

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        self.calls += 1
        return b"NVIDIA Test GPU"

    def nvmlDeviceGetUtilizationRates(self, h):
        if h == 1:
            raise RuntimeError("not supported")
        return SimpleNamespace(gpu=40, memory=10)

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=80 * 2**30, used=(h + 1) * 2**30, free=0)

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 50 + h * 10

    def nvmlDeviceGetPowerUsage(self, h):
        if h == 1:
            raise RuntimeError("not supported")
        return 123_500


def test_nvidia_gpus_are_combined_into_one_accelerator(monkeypatch):
    fake = FakeNvml()
    monkeypatch.setattr(nvidia, "_load_nvml", lambda: fake)
    probe = NvidiaProbe()
    info = probe.read()
    assert info is not None
    assert (info.vendor, info.name) == ("nvidia", "2x NVIDIA Test GPU")
    assert info.utilization_ratio == pytest.approx(0.4)
    assert info.vram_total_bytes == 160 * 2**30 and info.vram_used_bytes == 3 * 2**30
    assert info.temperature_celsius == 60.0 and info.power_watts == pytest.approx(123.5)
    probe.read()
    assert fake.calls == 2  # names are static: read once per device


def test_cpu_temperature_reads_the_cpu_hwmon_chip(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    for name, chip, value in [("hwmon0", "nvme", "30000"), ("hwmon1", "k10temp", "45500")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "name").write_text(chip + "\n")
        (tmp_path / name / "temp1_input").write_text(value + "\n")
    sensor = CpuTemperature(hwmon=tmp_path)
    assert sensor.read() == 45.5
    (tmp_path / "hwmon1" / "temp1_input").write_text("47000\n")
    assert sensor.read() == 47.0


def test_cpu_temperature_falls_back_to_cached_psutil(tmp_path, monkeypatch):
    calls = []

    def sensors():
        calls.append(1)
        return {"nvme": [SimpleNamespace(current=31.0)], "coretemp": [SimpleNamespace(current=55.0)]}

    monkeypatch.setattr(psutil, "sensors_temperatures", sensors, raising=False)
    sensor = CpuTemperature(hwmon=tmp_path / "missing")
    assert sensor.read() == 55.0
    assert sensor.read() == 55.0
    assert len(calls) == 1  # psutil walks every sensor file, so it is only asked now and then


def test_disk_usage_is_sane(tmp_path):
    usage = read_disk(tmp_path)
    assert usage.total.in_bytes > 0
    assert 0 <= usage.available.in_bytes <= usage.total.in_bytes
    not_yet = read_disk(tmp_path / "models" / "not-created")
    assert not_yet.total == usage.total


def test_interfaces_include_loopback():
    interfaces = read_interfaces()
    loopback = [i for i in interfaces if i.ip_address == "127.0.0.1"]
    assert loopback and loopback[0].interface_type == "unknown"
    for info in interfaces:
        assert socket.inet_aton(info.ip_address) and ":" not in info.ip_address


@pytest.mark.parametrize(("name", "platform", "expected"), [
    ("wlan0", "linux", "wifi"),
    ("wlp3s0", "linux", "wifi"),
    ("eth0", "linux", "ethernet"),
    ("enp0s31f6", "linux", "ethernet"),
    ("en0", "darwin", "maybe_ethernet"),
    ("lo", "linux", "unknown"),
    ("lo0", "darwin", "unknown"),
    ("tailscale0", "linux", "unknown"),
    ("utun3", "darwin", "unknown"),
    ("docker0", "linux", "unknown"),
])
def test_interface_type_guess(name, platform, expected):
    assert interface_type(name, platform=platform) == expected


def test_identity():
    identity = read_identity("kitchen-mac")
    assert identity.friendly_name == "kitchen-mac"
    assert identity.hostname == socket.gethostname()
    assert identity.skulk_version == skulk.__version__
    assert identity.os_version and identity.chip


@pytest.mark.parametrize("reading", [
    read_memory, read_system, read_interfaces, lambda: read_identity("n"), lambda: read_disk("."),
], ids=["memory", "system", "interfaces", "identity", "disk"])
def test_each_reading_is_cheap(reading):
    reading()  # the first call caches static parts
    times = []
    for _ in range(20):
        start = time.perf_counter()
        reading()
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.005
