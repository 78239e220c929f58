"""A hostile cluster member for tests: it holds the cluster key and sends whatever it is told.

It is a real libp2p peer (skulk.net.NetService with the nodes' private-network key), so what it
publishes is signed by its own peer id and what it sends arrives on authenticated streams:

    async with rogue_peer("skulk-test", bootstrap=[node.peer_addr]) as rogue:
        await rogue.wait_connected(node_id)
        await rogue.wait_gossip_mesh(HEARTBEAT_TOPIC, node_id)
        await rogue.publish(HEARTBEAT_TOPIC, b"garbage")
        await rogue.send(node_id, CLUSTER_PROTOCOL, some_cluster_message)

Run it inside `trio.run` in the test process, against nodes on 127.0.0.1 only.
"""

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from pydantic import BaseModel

from skulk import codec
from skulk.net import GossipMessage, NetConfig, NetService
from skulk.node.topics import DIRECT_PROTOCOLS, GOSSIP_TOPICS


def encode_any(data: bytes | BaseModel) -> bytes:
    """Bytes pass through; a model gets the nodes' codec (tagged models carry their tag)."""
    return data if isinstance(data, (bytes, bytearray)) else codec.encode(data)


class RoguePeer:
    def __init__(self, net: NetService) -> None:
        self.net = net
        self.node_id = net.node_id
        self.heard: dict[str, list[GossipMessage]] = {t: [] for t in net.config.topics}

    async def publish(self, topic: str, data: bytes | BaseModel) -> None:
        """Gossip `data` on any topic, signed by the rogue's own key."""
        await self.net.publish(topic, encode_any(data))

    async def send(self, peer_id: str, protocol: str, data: bytes | BaseModel, *, timeout: float = 5.0) -> None:
        """One well-framed message on a direct protocol (NetError if it cannot be written)."""
        await self.net.send_direct(peer_id, protocol, encode_any(data), timeout=timeout)

    async def send_raw(self, peer_id: str, protocol: str, raw: bytes, *, timeout: float = 5.0) -> None:
        """Unframed bytes on a fresh stream (e.g. a header that lies about the length), then close."""
        host = self.net._running_host()
        with trio.move_on_after(timeout):
            stream = await host.new_stream(ID.from_base58(peer_id), [TProtocol(protocol)])
            try:
                await stream.write(raw)
            finally:
                await stream.close()

    async def wait_connected(self, *peer_ids: str, timeout: float = 20.0) -> None:
        with trio.fail_after(timeout):
            while not set(peer_ids) <= self.net.connected_peers():
                await trio.sleep(0.05)

    async def wait_gossip_mesh(self, topic: str, *peer_ids: str, timeout: float = 20.0) -> None:
        """Until our gossipsub mesh for `topic` holds every peer (publishes then reach them)."""
        with trio.fail_after(timeout):
            while not set(peer_ids) <= self.net.gossip_mesh_peers(topic):
                await trio.sleep(0.05)

    def last_heard(self, topic: str, decode_as: Any = None, sender: str | None = None) -> Any:
        """The latest message heard on `topic` (from `sender`), decoded if asked; None if none."""
        for msg in reversed(self.heard[topic]):
            if sender is None or msg.peer_id == sender:
                return codec.decode(msg.data, decode_as) if decode_as is not None else msg
        return None

    async def _listen(self, topic: str, receiver: trio.MemoryReceiveChannel[GossipMessage]) -> None:
        async for msg in receiver:
            self.heard[topic].append(msg)
            del self.heard[topic][:-200]  # the recent ones are all a test looks at


@asynccontextmanager
async def rogue_peer(namespace: str, bootstrap: Iterable[str] = (), *, keypair: KeyPair | None = None,
                     **net_overrides: Any) -> AsyncIterator[RoguePeer]:
    """A running rogue peer in the nodes' private network; `net_overrides` go to NetConfig
    (e.g. `secret=` for a cluster started with one), so it derives the key exactly as a node does."""
    config = NetConfig(**{
        "listen_host": "127.0.0.1", "port": 0, "namespace": namespace, "bootstrap_peers": tuple(bootstrap),
        "mdns": False, "topics": GOSSIP_TOPICS, "protocols": DIRECT_PROTOCOLS,
        "dial_timeout": 3.0, "dial_interval": 0.3, **net_overrides})
    net = NetService(keypair or create_new_key_pair(), config)
    rogue = RoguePeer(net)
    receivers = {t: net.gossip_receiver(t) for t in config.topics}
    direct = [net.direct_receiver(p) for p in config.protocols]  # replies are read and ignored
    async with trio.open_nursery() as nursery:
        for topic, receiver in receivers.items():
            nursery.start_soon(rogue._listen, topic, receiver)
        for receiver in direct:
            nursery.start_soon(_drain, receiver)
        await nursery.start(net.run)
        try:
            yield rogue
        finally:
            nursery.cancel_scope.cancel()


async def _drain(receiver: trio.MemoryReceiveChannel) -> None:
    async for _ in receiver:
        pass


class RogueThread:
    """A rogue peer on its own trio loop in a background thread, for synchronous tests
    (hypothesis examples): `with RogueThread(ns, bootstrap) as r: r.call(r.rogue.publish, t, b)`."""

    def __init__(self, namespace: str, bootstrap: Iterable[str] = (), **net_overrides: Any) -> None:
        self._args = (namespace, tuple(bootstrap), net_overrides)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="rogue-peer", daemon=True)
        self._error: BaseException | None = None
        self.rogue: RoguePeer | None = None

    def __enter__(self) -> "RogueThread":
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None or self.rogue is None:
            raise RuntimeError(f"the rogue peer did not start: {self._error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(15)

    def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run `await fn(*args)` on the rogue's loop and return its result (or raise its error)."""
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # noqa: BLE001 - surfaced by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        namespace, bootstrap, overrides = self._args
        async with rogue_peer(namespace, bootstrap, **overrides) as rogue:
            self._token, self._stop = trio.lowlevel.current_trio_token(), trio.Event()
            self.rogue = rogue
            self._ready.set()
            await self._stop.wait()
