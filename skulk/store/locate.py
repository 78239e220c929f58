"""Which node hosts the store, where to bind its server and how other nodes reach it. PURE."""

import ipaddress
from collections.abc import Iterable, Mapping

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _host_forms(name: str) -> set[str]:
    """A hostname in the forms people write it: as is, short, and with .local (lower case)."""
    name = name.strip().lower().rstrip(".")
    short = name.removesuffix(".local").split(".", 1)[0]
    return {name, short, f"{short}.local"}


def is_store_host(store_host: str, *, node_id: str, node_name: str, hostname: str | None) -> bool:
    """True if `store_host` names this node: its node id, its node name, or (when the node has
    no name of its own) its machine hostname. Names match case-insensitively, short or .local."""
    if store_host == node_id:
        return True
    wanted = _host_forms(store_host)
    names = [node_name] + ([hostname] if hostname else [])
    return any(wanted & _host_forms(n) for n in names)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_host(api_host: str, http_host: str | None) -> str:
    """Where the store server listens: loopback if peers reach it on loopback, else the API's
    interface, widened to all interfaces when the API itself is loopback-only."""
    if http_host is not None and is_loopback(http_host):
        return "127.0.0.1"
    return "0.0.0.0" if is_loopback(api_host) else api_host


def _routable_score(ip: str) -> int:
    # LAN first, then Tailscale's CGNAT range, then anything else that is not link-local.
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return -1
    if addr.version != 4 or addr.is_link_local or addr.is_unspecified:
        return -1
    if addr.is_private and not addr.is_loopback:
        return 3
    if addr in ipaddress.ip_network("100.64.0.0/10"):
        return 2
    return 0 if addr.is_loopback else 1


def best_address(ips: Iterable[str]) -> str | None:
    scored = [(s, ip) for ip in ips if (s := _routable_score(ip)) >= 0]
    return max(scored)[1] if scored else None


def store_address(store_host: str, http_host: str | None,
                  peers: Mapping[str, tuple[str, list[str]]]) -> str:
    """The host part of the store URL. `peers` maps node id -> (node name, interface IPs) of
    live nodes, so a store_host given as a node id or node name resolves to that node's IP."""
    if http_host:
        return http_host
    for node_id, (name, ips) in peers.items():
        if store_host == node_id or _host_forms(store_host) & _host_forms(name):
            if (ip := best_address(ips)) is not None:
                return ip
    return store_host


def store_url(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # a bare IPv6 address
    return f"http://{host}:{port}"
