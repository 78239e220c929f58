"""NetService: one libp2p node with gossip, direct streams and a dial loop."""

import logging
from collections import Counter

import trio
from libp2p.abc import IHost, ISubscriptionAPI
from libp2p.crypto.keys import KeyPair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from skulk.net.addrs import advertisable_multiaddrs, parse_bootstrap_peer
from skulk.net.config import NetConfig
from skulk.net.connections import ConnectionTracker
from skulk.net.dialer import Dialer
from skulk.net.direct import DirectStreams
from skulk.net.errors import NetError
from skulk.net.fanout import Fanout
from skulk.net.gossip import publish, pump_subscription
from skulk.net.host import build_host, build_pubsub, listen_multiaddr
from skulk.net.mdns import run_mdns
from skulk.net.messages import DirectMessage, GossipMessage, PeerConnectionChanged

log = logging.getLogger(__name__)
DIRECT_BACKLOG = 256


class NetService:
    """Run with `await nursery.start(svc.run)`; stops when that nursery is cancelled.

    Receivers see what arrives after they were opened; open them before `run`
    to miss nothing. A service instance runs once.
    """

    def __init__(self, keypair: KeyPair, config: NetConfig) -> None:
        self.config = config
        self._keypair = keypair
        self.node_id = str(ID.from_pubkey(keypair.public_key))
        self.counters: Counter[str] = Counter()
        self._gossip_out = {t: Fanout[GossipMessage](t) for t in config.topics}
        # Direct frames may be large (up to MAX_FRAME), so fewer may wait; connection events are
        # never dropped in practice (the election counts them), so that bound is loose.
        self._direct_out = {p: Fanout[DirectMessage](p, capacity=DIRECT_BACKLOG) for p in config.protocols}
        self._conn_out = Fanout[PeerConnectionChanged]("connections", capacity=16384)
        self._bootstrap = [parse_bootstrap_peer(p) for p in config.bootstrap_peers]
        self._host: IHost | None = None
        self._pubsub: Pubsub | None = None
        self._dialer: Dialer | None = None
        self._direct: DirectStreams | None = None
        self._tracker = ConnectionTracker(self._conn_out, on_lost=self._on_peer_lost)

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        host = build_host(self._keypair, self.config)
        pubsub, router = build_pubsub(host)
        direct = DirectStreams(host, self.counters, self._direct_out)
        for protocol in self.config.protocols:
            host.set_stream_handler(TProtocol(protocol), direct.handle_inbound)
        host.get_network().register_notifee(self._tracker)
        dialer = Dialer(
            host,
            self.counters,
            self._tracker.is_connected,
            timeout=self.config.dial_timeout,
            interval=self.config.dial_interval,
        )
        for address in self._bootstrap:
            dialer.add(address)
        try:
            # Pubsub must be ready and subscribed before the host listens or dials:
            # the other order deadlocks on its peer notification channel.
            async with background_trio_service(pubsub), background_trio_service(router):
                await pubsub.wait_until_ready()
                subs = {t: await pubsub.subscribe(t) for t in self.config.topics}
                async with host.run(listen_addrs=[listen_multiaddr(self.config)]):
                    self._host, self._pubsub = host, pubsub
                    self._dialer, self._direct = dialer, direct
                    await self._serve(host, subs, task_status)
        finally:
            self._host = self._pubsub = self._dialer = self._direct = None
            self._close_receivers()
            # Upstream never stops the sweeper thread of pubsub's seen-message cache.
            pubsub.seen_messages.stop()

    async def _serve(
        self, host: IHost, subs: dict[str, ISubscriptionAPI], task_status: trio.TaskStatus[None]
    ) -> None:
        dialer = self._dialer
        assert dialer is not None
        async with trio.open_nursery() as nursery:
            for topic, sub in subs.items():
                fanout = self._gossip_out[topic]
                nursery.start_soon(
                    pump_subscription, sub, topic, host.get_id(), fanout, self.counters
                )
            if not host.get_transport_addrs():
                raise NetError(f"cannot listen for peers on {self.config.listen_host}:{self.config.port} "
                               "(is another skulk running? choose another --libp2p-port)")
            nursery.start_soon(dialer.run)
            if self.config.mdns:
                lan = self._lan_multiaddrs()
                nursery.start_soon(run_mdns, host, self.config.psk, lan, dialer.add)
            log.info("node %s listening on %s", self.node_id, self.listen_multiaddrs())
            task_status.started()

    def _lan_multiaddrs(self) -> list[str]:
        # Loopback is useless to another machine and would make it dial itself.
        addrs = self.listen_multiaddrs()
        lan = [a for a in addrs if not a.startswith(("/ip4/127.", "/ip6/::1/"))]
        return lan or addrs

    def _close_receivers(self) -> None:
        for fanout in [*self._gossip_out.values(), *self._direct_out.values(), self._conn_out]:
            fanout.close()

    def _on_peer_lost(self, peer_id: str) -> None:
        if self._direct is not None:
            self._direct.forget_peer(peer_id)

    def _running_host(self) -> IHost:
        if self._host is None:
            raise NetError("the network service is not running")
        return self._host

    def listen_multiaddrs(self) -> list[str]:
        """Dialable addresses with /p2p/<our id>; the real port when configured as 0."""
        host = self._running_host()
        ports = {int(a.value_for_protocol("tcp")) for a in host.get_transport_addrs()}
        return [
            addr
            for port in sorted(ports)
            for addr in advertisable_multiaddrs(self.config.listen_host, port, self.node_id)
        ]

    async def publish(self, topic: str, data: bytes) -> None:
        """Best effort; with no peers the message is simply not delivered."""
        if self._pubsub is None:
            raise NetError("the network service is not running")
        await publish(self._pubsub, topic, data, self.counters)

    def gossip_mesh_peers(self, topic: str) -> frozenset[str]:
        """Peers our gossipsub mesh for `topic` forwards to (empty when not running)."""
        router = None if self._pubsub is None else self._pubsub.router
        mesh = getattr(router, "mesh", {}) or {}
        return frozenset(str(p) for p in mesh.get(topic, ()))

    def gossip_receiver(self, topic: str) -> trio.MemoryReceiveChannel[GossipMessage]:
        if topic not in self._gossip_out:
            raise ValueError(f"not subscribed to {topic!r}; add it to NetConfig.topics")
        return self._gossip_out[topic].open()

    def connection_receiver(self) -> trio.MemoryReceiveChannel[PeerConnectionChanged]:
        return self._conn_out.open()

    def connected_peers(self) -> frozenset[str]:
        return self._tracker.connected_peers()

    def add_known_peer(self, multiaddr: str) -> None:
        """Keep dialing this peer while not connected. Raises ValueError if unparsable."""
        address = parse_bootstrap_peer(multiaddr)
        if self._dialer is not None:
            self._dialer.add(address)
        else:
            self._bootstrap.append(address)

    async def send_direct(
        self, peer_id: str, protocol: str, data: bytes, *, timeout: float = 5.0
    ) -> None:
        """Deliver one message, in order with earlier ones to the same (peer, protocol).

        Raises NetError if it could not be written within `timeout`.
        """
        if self._direct is None:
            raise NetError("the network service is not running")
        await self._direct.send(peer_id, protocol, data, timeout)

    def direct_receiver(self, protocol: str) -> trio.MemoryReceiveChannel[DirectMessage]:
        if protocol not in self._direct_out:
            raise ValueError(f"no handler for {protocol!r}; add it to NetConfig.protocols")
        return self._direct_out[protocol].open()
