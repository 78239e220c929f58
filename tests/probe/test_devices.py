"""Per-device reporting: NVIDIA one by one, Apple unified memory, mock devices from config."""

import pytest
from pydantic import ValidationError

from skulk.config.devices import DevicesSettings, MockDevice
from skulk.config.model import Settings
from skulk.config.sync import cluster_part
from skulk.probe import nvidia, system
from skulk.probe.devices import apple_device, mock_devices, pick_devices, resource_slots
from skulk.probe.nvidia import NvidiaProbe
from skulk.types.devices import MAX_DEVICES, DeviceInfo, GpuOffload
from skulk.types.ids import Memory
from skulk.types.node import MemoryUsage, SystemPerformanceProfile
from tests.probe.test_probe import FakeNvml

GIB = 1024**3
MEM = MemoryUsage(ram_total=Memory(in_bytes=64 * GIB), ram_available=Memory(in_bytes=40 * GIB),
                  swap_total=Memory(in_bytes=0), swap_available=Memory(in_bytes=0))


def test_two_mock_gpus_are_reported_one_by_one_marked_mock():
    specs = [MockDevice(name="Mock A", memory_gb=0.5), MockDevice(name="Mock B", memory_gb=1.5, vendor="amd")]
    devices = mock_devices(specs)
    assert [(d.index, d.name, d.vendor, d.mock) for d in devices] == [
        (0, "Mock A", "nvidia", True), (1, "Mock B", "amd", True)]
    assert devices[1].memory_total_bytes == int(1.5 * GIB) and devices[1].memory_free_bytes == int(1.5 * GIB)
    slots = resource_slots(8, MEM, devices)
    assert (slots.accelerator_count, slots.accelerator_memory_bytes, slots.mock_accelerators) == (2, 2 * GIB, True)
    assert (slots.cpu_cores, slots.ram_bytes) == (8, 64 * GIB)


def test_mock_devices_replace_real_ones_and_read_system_reports_them(monkeypatch):
    monkeypatch.setattr(nvidia, "_load_nvml", lambda: FakeNvml())
    monkeypatch.setattr(system, "_NVIDIA", NvidiaProbe())
    real = system.read_system()
    assert [(d.index, d.vendor, d.mock) for d in real.devices] == [(0, "nvidia", False), (1, "nvidia", False)]
    assert real.devices[1].memory_used_bytes == 2 * GIB and real.devices[0].utilization_ratio == pytest.approx(0.4)
    assert real.devices[1].utilization_ratio is None  # its query failed: unknown, not 0
    mocked = system.read_system([MockDevice(name="Fake", memory_gb=2)])
    assert [(d.name, d.mock) for d in mocked.devices] == [("Fake", True)]
    assert mocked.resources.accelerator_count == 1 and mocked.resources.mock_accelerators


def test_plain_cpu_has_no_devices_and_apple_has_one_unified():
    assert pick_devices((), [], MEM, "Intel Xeon") == []
    assert apple_device(MEM, "M3 Max", platform_name="linux", machine="x86_64") == []
    (gpu,) = apple_device(MEM, "Apple M3 Max", platform_name="darwin", machine="arm64")
    assert (gpu.vendor, gpu.name, gpu.memory_total_bytes, gpu.memory_free_bytes) == (
        "apple", "Apple M3 Max", 64 * GIB, 40 * GIB)


def test_devices_mock_config_is_per_machine_and_bounded():
    settings = Settings(devices={"mock": [{"name": "A", "memory_gb": 4}]})
    assert settings.devices.mock[0].vendor == "nvidia"
    assert "devices" not in cluster_part({"devices": {"mock": []}, "inference": {}})
    assert DevicesSettings(mock='[{"name": "B", "memory_gb": 1, "vendor": "intel"}]').mock[0].vendor == "intel"
    with pytest.raises(ValidationError):
        DevicesSettings(mock=[{"name": "A", "memory_gb": 1}] * 17)
    with pytest.raises(ValidationError):
        MockDevice(name="A", memory_gb=0)


def test_what_a_peer_claims_about_devices_is_bounded():
    one = {"index": 0, "vendor": "nvidia", "name": "x", "memoryTotalBytes": 1}
    with pytest.raises(ValidationError):
        SystemPerformanceProfile.model_validate({"devices": [one] * (MAX_DEVICES + 1)})
    for bad in ({"name": "x" * 257}, {"index": MAX_DEVICES}, {"memoryTotalBytes": 1 << 60},
                {"utilizationRatio": 2.0}, {"vendor": "evil"}):
        with pytest.raises(ValidationError):
            DeviceInfo.model_validate({**one, **bad})


def test_offload_pins_by_vendor_and_never_claims_more_layers_than_the_model():
    env = GpuOffload(device_index=1, vendor="nvidia", n_gpu_layers=3, total_layers=30).pin_env()
    assert env == {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert GpuOffload(device_index=0, vendor="amd", n_gpu_layers=1, total_layers=2).pin_env() == {
        "HIP_VISIBLE_DEVICES": "0"}
    assert GpuOffload(device_index=0, vendor="apple", n_gpu_layers=1, total_layers=2).pin_env() == {}
    assert GpuOffload(device_index=None, n_gpu_layers=0, total_layers=2).pin_env() == {}
    with pytest.raises(ValidationError):
        GpuOffload(device_index=0, n_gpu_layers=31, total_layers=30)
    with pytest.raises(ValidationError):
        GpuOffload(device_index=None, n_gpu_layers=1, total_layers=30)
