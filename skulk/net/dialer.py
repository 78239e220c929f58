"""Our own dial loop: keep dialing every known peer we are not connected to.

py-libp2p's bootstrap gives up after a few failures and never re-dials a seed, so a
restarted seed would stay partitioned; this loop retries forever, each dial bounded
(a namespace mismatch makes a dial hang rather than fail).
"""

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.pnet.protector import new_protected_conn
from multiaddr import Multiaddr

from skulk.faults import count, isolate
from skulk.net.addrs import PeerAddress, resolve

log = logging.getLogger(__name__)
_CLOSE_GRACE = 1.0
# Heartbeats teach us addresses: bound what one peer, and all peers together, can make us dial.
MAX_TARGETS = 1024
MAX_TARGETS_PER_PEER = 32


@dataclass
class _Target:
    address: PeerAddress
    learned_id: str | None = None  # for addresses given without /p2p
    is_self: bool = False

    @property
    def peer_id(self) -> str | None:
        return self.address.peer_id or self.learned_id


class Dialer:
    def __init__(
        self,
        host: IHost,
        counters: Counter[str],
        is_connected: Callable[[str], bool],
        *,
        timeout: float,
        interval: float,
    ) -> None:
        self._host = host
        self._self_id = str(host.get_id())
        self._counters = counters
        self._is_connected = is_connected
        self._timeout = timeout
        self._interval = interval
        self._targets: dict[str, _Target] = {}
        self._in_flight: dict[str, _Target] = {}

    def add(self, address: PeerAddress) -> bool:
        """Keep dialing `address`; False (counted) when it was refused for lack of room."""
        key = str(address)
        if key in self._targets or address.peer_id == self._self_id:
            return True
        if address.peer_id is not None:
            same_peer = [k for k, t in self._targets.items() if t.address.peer_id == address.peer_id]
            if len(same_peer) >= MAX_TARGETS_PER_PEER:
                self._forget(same_peer[0])  # the oldest: a peer's newest addresses are its current ones
        if len(self._targets) >= MAX_TARGETS:
            self._counters["dial_targets_refused"] += 1
            count("dialer.known_peers_full", f"not dialing {key[:120]}")
            return False
        self._targets[key] = _Target(address)
        return True

    def _forget(self, key: str) -> None:
        if key not in self._in_flight:
            self._targets.pop(key, None)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                for key, target in list(self._targets.items()):
                    with isolate("dialer.target"):
                        if self._needs_dial(key, target):
                            self._in_flight[key] = target
                            nursery.start_soon(self._dial, key, target)
                await trio.sleep(self._interval)

    def _needs_dial(self, key: str, target: _Target) -> bool:
        if target.is_self or key in self._in_flight:
            return False
        if target.peer_id is None:
            return True
        # One dial per peer at a time, though a peer may be known by several addresses.
        dialing = {t.peer_id for t in self._in_flight.values()}
        return target.peer_id not in dialing and not self._is_connected(target.peer_id)

    async def _dial(self, key: str, target: _Target) -> None:
        try:
            with trio.fail_after(self._timeout):
                await self._connect(target)
        except Exception as e:  # includes trio.TooSlowError; an undialable address is not fatal
            self._counters["dials_failed"] += 1
            # Re-learn next time: the address may now belong to a node with a new key.
            target.learned_id = None
            log.debug("dial %s failed: %r", target.address, e)
        finally:
            del self._in_flight[key]

    async def _connect(self, target: _Target) -> None:
        addrs = await resolve(target.address)
        if target.peer_id is None:
            target.learned_id = await _learn_peer_id(self._host, addrs)
            if target.learned_id == self._self_id:
                target.is_self = True
                return
            if self._is_connected(target.learned_id):
                return
        peer_id = ID.from_base58(target.peer_id)
        # A failed dial lands the peer in a 60 s negative cache; we pace retries ourselves.
        self._host.get_network().unblock_peer(peer_id)
        await self._host.connect(PeerInfo(peer_id, [_without_p2p(a) for a in addrs]))
        self._counters["dials_succeeded"] += 1


async def _learn_peer_id(host: IHost, addrs: list[Multiaddr]) -> str:
    """Learn who listens at an address given without /p2p, via an authenticated handshake.

    py-libp2p's dial path insists on a known peer id, but its Noise XX initiator
    accepts None: the responder still proves its identity by signing its Noise key,
    and the private-network key still gates the connection. We run just that
    handshake (pnet + multistream + Noise), read the proven id, and hang up before
    any muxer or protocol traffic; the real dial then pins that id. Nothing is
    trusted that an unauthenticated reply could forge.
    """
    errors = []
    for addr in addrs:
        try:
            return await _handshake_for_id(host, _without_p2p(addr))
        except Exception as e:
            errors.append(f"{addr}: {e!r}")
    raise ConnectionError("; ".join(errors) or "no address to dial")


async def _handshake_for_id(host: IHost, addr: Multiaddr) -> str:
    swarm = cast(Any, host.get_network())  # Swarm internals; not in the INetwork interface
    transport = swarm.transport_manager.transport_for_dialing(addr)
    if transport is None:
        raise ConnectionError(f"no transport can dial {addr}")
    raw = await transport.dial(addr)
    try:
        conn = new_protected_conn(raw, swarm.psk) if swarm.psk else raw
        secured = await swarm.upgrader.security_multistream.secure_outbound(conn, None)
        return str(secured.get_remote_peer())
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_GRACE):
            await raw.close()


def _without_p2p(addr: Multiaddr) -> Multiaddr:
    text = str(addr)
    head, sep, _ = text.partition("/p2p/")
    return Multiaddr(head) if sep else addr
