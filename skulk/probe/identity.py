"""Who this node is: hostname, machine model, CPU, OS and Skulk version. All static."""

import functools
import platform
import socket
import subprocess
import sys
from pathlib import Path

import skulk
from skulk.types.node import NodeIdentity


def read_identity(friendly_name: str) -> NodeIdentity:
    return NodeIdentity(
        friendly_name=friendly_name,
        hostname=_hostname(),
        model=_machine_model(),
        chip=_cpu_model(),
        os_version=_os_version(),
        skulk_version=skulk.__version__,
    )


@functools.cache
def _hostname() -> str:
    return socket.gethostname()


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError:
        return ""


def _sysctl(key: str) -> str:
    try:
        result = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


@functools.cache
def _machine_model() -> str:
    if sys.platform == "darwin":
        return _sysctl("hw.model")
    vendor = _read_text("/sys/devices/virtual/dmi/id/sys_vendor")
    product = _read_text("/sys/devices/virtual/dmi/id/product_name")
    return " ".join(part for part in (vendor, product) if part)


@functools.cache
def _cpu_model() -> str:
    if sys.platform == "darwin":
        return _sysctl("machdep.cpu.brand_string") or platform.processor()
    for line in _read_text("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        # x86 says "model name"; many ARM boards only say "Hardware" or "Model"
        if key.strip() in ("model name", "Hardware", "Model") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()


@functools.cache
def _os_version() -> str:
    if sys.platform == "darwin":
        return f"macOS {platform.mac_ver()[0]}".strip()
    try:
        pretty = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        pretty = ""
    return f"{pretty or platform.system()} ({platform.release()})"
