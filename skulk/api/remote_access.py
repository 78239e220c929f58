"""How to reach this node from another machine: its LAN address and Tailscale name. PURE."""

import ipaddress
from collections.abc import Iterable
from typing import Any

_TAILNET_V4 = ipaddress.ip_network("100.64.0.0/10")


def _routable_v4(ip: str) -> ipaddress.IPv4Address | None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if addr.version != 4 or addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast:
        return None
    return addr  # type: ignore[return-value]


def first_ipv4(ips: Iterable[str]) -> str | None:
    """The first IPv4 address that is neither loopback nor link-local."""
    return next((ip for ip in ips if _routable_v4(ip) is not None), None)


def lan_ipv4(ips: Iterable[str]) -> str | None:
    """The address a machine on the same network would use: a private (RFC 1918) one first, then
    any other routable IPv4 that is not Tailscale's (that one has its own entry)."""
    usable = [(ip, addr) for ip in ips if (addr := _routable_v4(ip)) is not None and addr not in _TAILNET_V4]
    private = [ip for ip, addr in usable if addr.is_private]
    return (private or [ip for ip, _ in usable] or [None])[0]


def http_url(host: str | None, port: int) -> str | None:
    if not host:
        return None
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def remote_access(ips: Iterable[str], port: int, tailscale: dict[str, Any]) -> dict[str, Any]:
    """`{preferredUrl, operatorUrl, local, tailscale}`: the Tailscale URL (MagicDNS name, else
    its 100.x address) when Tailscale runs, else the LAN URL; operatorUrl adds /operator."""
    lan_ip = lan_ipv4(ips)
    lan_url = http_url(lan_ip, port)
    running = bool(tailscale.get("running"))
    ts_host = (tailscale.get("dnsName") or tailscale.get("selfIp")) if running else None
    ts_url = http_url(ts_host, port)
    preferred = ts_url or lan_url
    return {
        "preferredUrl": preferred,
        "operatorUrl": f"{preferred}/operator" if preferred else None,
        "lanUrl": lan_url,
        "tailscaleUrl": ts_url,
        "local": {"ip": lan_ip, "port": port, "url": lan_url},
        "tailscale": {"running": running, "installed": bool(tailscale.get("installed")),
                      "ip": tailscale.get("selfIp"), "dnsName": tailscale.get("dnsName"), "port": port,
                      "url": ts_url},
    }
