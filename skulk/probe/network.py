"""IPv4 addresses of this node's interfaces, with a guess at each interface's kind."""

import socket
import sys

import psutil

from skulk.types.node import InterfaceType, NetworkInterfaceInfo

# Virtual and tunnel links (Tailscale, WireGuard, VPNs, containers) stay "unknown".
_WIFI_PREFIXES = ("wl", "wifi", "ath")
_ETHERNET_PREFIXES = ("eth", "en", "em")


def interface_type(name: str, *, platform: str = sys.platform) -> InterfaceType:
    """Guess from the name alone: wl* is Wi-Fi, eth*/en*/em* wired, anything else unknown.

    On macOS en* may be Wi-Fi, Ethernet or a Thunderbolt port, so it is only "maybe".
    """
    lowered = name.lower()
    if lowered.startswith(_WIFI_PREFIXES):
        return "wifi"
    if lowered.startswith(_ETHERNET_PREFIXES):
        return "maybe_ethernet" if platform == "darwin" and lowered.startswith("en") else "ethernet"
    return "unknown"


def read_interfaces() -> list[NetworkInterfaceInfo]:
    """Every IPv4 address on an interface that is up, loopback included.

    Loopback stays in: single-machine clusters (and the tests) run on 127.0.0.1.
    """
    try:
        stats = psutil.net_if_stats()
    except OSError:
        stats = {}
    found = []
    for name, addrs in psutil.net_if_addrs().items():
        if name in stats and not stats[name].isup:
            continue
        kind = interface_type(name)
        for addr in addrs:
            if addr.family == socket.AF_INET and addr.address:
                found.append(
                    NetworkInterfaceInfo(name=name, ip_address=addr.address, interface_type=kind)
                )
    return found
