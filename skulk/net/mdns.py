"""LAN discovery over mDNS, feeding the dial loop.

We drive py-libp2p's MDNSDiscovery ourselves instead of `new_host(enable_mDNS=True)`:
that one advertises the raw listen address (0.0.0.0 when listening on all
interfaces, useless to a peer), registers on the event loop thread (blocking it for
~1.6 s) and only fills the peerstore, never dialing.
"""

import hashlib
import ipaddress
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import trio
from libp2p.abc import IHost
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.discovery.mdns.mdns import MDNSDiscovery, create_mdns_discovery
from libp2p.peer.peerinfo import PeerInfo

from skulk.net.addrs import PeerAddress, parse_bootstrap_peer

log = logging.getLogger(__name__)


async def run_mdns(
    host: IHost, psk: str, advertised: list[str], on_peer: Callable[[PeerAddress], None]
) -> None:
    """Advertise `advertised` and report discovered peers until cancelled."""
    if not advertised:
        log.warning("mDNS off: no address to advertise")
        return
    with discovery_bridge(on_peer):
        create = partial(
            create_mdns_discovery,
            host.get_network(),
            port=int(advertised[0].split("/")[4]),
            listen_addrs=advertised,
            private_network_fingerprint=_fingerprint(psk),
        )
        # Zeroconf setup and registration block for seconds: keep them off the loop.
        try:
            discovery: MDNSDiscovery = await trio.to_thread.run_sync(create)
        except Exception:
            log.warning("mDNS discovery unavailable; relying on bootstrap peers", exc_info=True)
            return
        try:
            await trio.to_thread.run_sync(discovery.broadcaster.register)
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_stop_quietly, discovery)


def _stop_quietly(discovery: MDNSDiscovery) -> None:
    try:
        discovery.stop()
    except Exception:
        log.debug("stopping mDNS failed", exc_info=True)


def _fingerprint(psk: str) -> str:
    # Separate service types keep other clusters' nodes off our dial list. Derived from the
    # key, not the namespace, so with a secret it reveals neither; a one-way hash, 8 hex chars
    # (DNS-SD service labels are at most 15 bytes), so it cannot help recover the key.
    return hashlib.sha3_256(b"skulk_mdns" + psk.encode()).hexdigest()[:8]


@contextmanager
def discovery_bridge(on_peer: Callable[[PeerAddress], None]) -> Iterator[None]:
    """Call `on_peer` in trio for each address mDNS discovers (on zeroconf's thread)."""
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
