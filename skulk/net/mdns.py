"""Bridge py-libp2p's mDNS discoveries into the dial loop.

mDNS only fills the peerstore; it never dials. Its discovery callback runs on
zeroconf's thread, so we hop back into trio before touching any state.
"""

import ipaddress
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import trio
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.peer.peerinfo import PeerInfo

from skulk.net.addrs import PeerAddress, parse_bootstrap_peer

log = logging.getLogger(__name__)


@contextmanager
def mdns_discoveries(on_peer: Callable[[PeerAddress], None]) -> Iterator[None]:
    token = trio.lowlevel.current_trio_token()

    def handler(info: PeerInfo) -> None:
        for address in _dialable(info):
            try:
                token.run_sync_soon(on_peer, address)
            except trio.RunFinishedError:
                return

    # A process-wide registry: every service in the process sees every discovery.
    peerDiscovery.register_peer_discovered_handler(handler)
    try:
        yield
    finally:
        peerDiscovery.unregister_peer_discovered_handler(handler)


def _dialable(info: PeerInfo) -> list[PeerAddress]:
    out = []
    for addr in info.addrs:
        text = str(addr).partition("/p2p/")[0]
        try:
            address = parse_bootstrap_peer(f"{text}/p2p/{info.peer_id}")
        except ValueError:
            continue
        host = address.transport.split("/")[2]
        if address.is_dns or not ipaddress.ip_address(host).is_unspecified:
            out.append(address)
    return out
