"""Peer addresses: parsing what operators type, resolving names, listing our own."""

import ipaddress
import re
import socket
from dataclasses import dataclass

import psutil
import trio
from multiaddr import Multiaddr

_HOST_PROTOCOLS = ("ip4", "ip6", "dns", "dns4", "dns6")
_DNS_FAMILIES = {"dns": socket.AF_UNSPEC, "dns4": socket.AF_INET, "dns6": socket.AF_INET6}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


@dataclass(frozen=True)
class PeerAddress:
    """A TCP address of a peer; `peer_id` is None when the operator did not give one."""

    transport: str  # e.g. "/ip4/127.0.0.1/tcp/52416", never with /p2p
    peer_id: str | None = None

    def __str__(self) -> str:
        if self.peer_id is None:
            return self.transport
        return f"{self.transport}/p2p/{self.peer_id}"

    @property
    def is_dns(self) -> bool:
        return self.transport.split("/")[1] in _DNS_FAMILIES


def parse_bootstrap_peer(text: str) -> PeerAddress:
    """Accept "/ip4/h/tcp/p/p2p/<id>", "/ip4/h/tcp/p" (also ip6/dns*), or "host:port".

    Raises ValueError naming the input for anything else.
    """
    s = text.strip()
    if not s:
        raise ValueError("empty peer address")
    if s.startswith("/"):
        return _parse_multiaddr(s)
    return _parse_host_port(s)


def _parse_multiaddr(s: str) -> PeerAddress:
    try:
        parts = list(Multiaddr(s).items())
    except Exception as e:
        raise ValueError(f"invalid multiaddr {s!r}: {e}") from e
    names = [proto.name for proto, _ in parts]
    if names[0] not in _HOST_PROTOCOLS or names[1:] not in (["tcp"], ["tcp", "p2p"]):
        raise ValueError(f"{s!r} is not /ip4|ip6|dns*/<host>/tcp/<port>[/p2p/<id>]")
    (head, host), (_, port) = parts[0], parts[1]
    _check_port(port, s)
    peer_id = parts[2][1] if len(parts) == 3 else None
    return PeerAddress(f"/{head.name}/{host}/tcp/{int(port)}", peer_id)


def _parse_host_port(s: str) -> PeerAddress:
    host, sep, port = s.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{s!r} is neither a multiaddr nor host:port")
    _check_port(port, s)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise ValueError(f"{s!r} has an invalid host name {host!r}") from None
        return PeerAddress(f"/dns4/{host}/tcp/{int(port)}")
    family = "ip4" if ip.version == 4 else "ip6"
    return PeerAddress(f"/{family}/{ip}/tcp/{int(port)}")


def _check_port(port: str, original: str) -> None:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{original!r} has an invalid TCP port {port!r}")


async def resolve(address: PeerAddress) -> list[Multiaddr]:
    """IP multiaddrs for `address` (with /p2p when known).

    Names go through the system resolver (so /etc/hosts and "localhost" work)
    rather than py-libp2p's DNS client, which queries name servers directly.
    """
    if not address.is_dns:
        return [Multiaddr(str(address))]
    _, proto, host, _, port = address.transport.split("/")
    infos = await trio.socket.getaddrinfo(
        host, int(port), family=_DNS_FAMILIES[proto], type=socket.SOCK_STREAM
    )
    suffix = f"/p2p/{address.peer_id}" if address.peer_id else ""
    seen: list[Multiaddr] = []
    for family, _, _, _, sockaddr in infos:
        head = "ip4" if family == socket.AF_INET else "ip6"
        ma = Multiaddr(f"/{head}/{sockaddr[0]}/tcp/{port}{suffix}")
        if ma not in seen:
            seen.append(ma)
    return seen


def interface_ipv4_addresses() -> list[str]:
    """Every IPv4 address of this machine's interfaces, loopback last."""
    found = {
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET
    }
    return sorted(found, key=lambda ip: (ipaddress.ip_address(ip).is_loopback, ip))


def advertisable_multiaddrs(listen_host: str, port: int, peer_id: str) -> list[str]:
    """Concrete multiaddrs peers can dial; the wildcard host expands to every interface."""
    if listen_host in ("0.0.0.0", ""):
        hosts = interface_ipv4_addresses()
    else:
        hosts = [listen_host]
    out = []
    for host in hosts:
        family = "ip6" if ":" in host else "ip4"
        out.append(f"/{family}/{host}/tcp/{port}/p2p/{peer_id}")
    return out
