"""Readings a node reports about itself, taken with psutil (and pynvml when present).

Each reading is cheap (well under 5 ms) because the heartbeat takes them every second;
static parts are cached on first use.
"""

from skulk.probe.disk import read_disk
from skulk.probe.identity import read_identity
from skulk.probe.memory import read_memory
from skulk.probe.network import read_interfaces
from skulk.probe.system import read_system

__all__ = ["read_disk", "read_identity", "read_interfaces", "read_memory", "read_system"]
