"""NetService instances in one trio process, talking over 127.0.0.1 only."""

import threading
from collections.abc import Callable

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from skulk.net import NetConfig, NetError, NetService, PeerConnectionChanged, load_or_create_keypair
from skulk.net.framing import MAX_FRAME
from skulk.net.host import GOSSIP_MAX_PAYLOAD, build_host, listen_multiaddr

TOPIC = "skulk/test/1"
PROTO = "/skulk/test-direct/1"


def make_node(keypair=None, **overrides) -> NetService:
    settings = dict(
        listen_host="127.0.0.1",
        port=0,
        mdns=False,
        topics=(TOPIC,),
        protocols=(PROTO,),
        dial_timeout=2.0,
        dial_interval=0.2,
    )
    settings.update(overrides)
    return NetService(keypair or create_new_key_pair(), NetConfig(**settings))


async def start(nursery: trio.Nursery, node: NetService) -> trio.CancelScope:
    """Run `node` under its own cancel scope, so a test can stop just this node."""

    async def runner(*, task_status=trio.TASK_STATUS_IGNORED):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as inner:
                await inner.start(node.run)
                task_status.started(scope)

    return await nursery.start(runner)


async def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not pred():
            await trio.sleep(0.02)


def addr_of(node: NetService) -> str:
    return node.listen_multiaddrs()[0]


def host_port_of(node: NetService) -> str:
    parts = addr_of(node).split("/")
    return f"{parts[2]}:{parts[4]}"


def drain(receiver: trio.MemoryReceiveChannel) -> list:
    items = []
    while True:
        try:
            items.append(receiver.receive_nowait())
        except trio.WouldBlock:
            return items


def run(test_fn, *, timeout: float = 30.0):
    async def main():
        with trio.fail_after(timeout):
            async with trio.open_nursery() as nursery:
                await test_fn(nursery)
                nursery.cancel_scope.cancel()

    before = set(threading.enumerate())
    trio.run(main)
    leftover = [
        t for t in set(threading.enumerate()) - before if not t.name.startswith("Trio thread")
    ]
    assert leftover == [], "a stopped node left threads running"


async def publish_until_delivered(sender: NetService, data: bytes, receivers: dict) -> dict:
    """Gossip is best effort until the mesh forms, so re-publish until everyone has it."""
    got: dict[NetService, list] = {node: [] for node in receivers}

    def everyone_got_it() -> bool:
        for node, receiver in receivers.items():
            got[node].extend(drain(receiver))
        return all(got.values())

    with trio.fail_after(10):
        while not everyone_got_it():
            await sender.publish(TOPIC, data)
            with trio.move_on_after(0.3):
                await wait_until(everyone_got_it)
    return got


def test_bootstrap_forms_gossip_and_deduplicated_connection_events():
    async def body(nursery):
        a = make_node()
        events = a.connection_receiver()
        await start(nursery, a)
        b = make_node(bootstrap_peers=(addr_of(a),))  # /p2p/ form
        await start(nursery, b)
        c = make_node(bootstrap_peers=(host_port_of(a), host_port_of(b)))  # plain host:port
        await start(nursery, c)
        a.add_known_peer(addr_of(b))  # already connected: must not yield a second event
        await wait_until(lambda: len(a.connected_peers()) == 2 and len(c.connected_peers()) == 2)
        assert a.connected_peers() == {b.node_id, c.node_id}
        assert c.connected_peers() == {a.node_id, b.node_id}

        receivers = {n: n.gossip_receiver(TOPIC) for n in (a, b, c)}
        got = await publish_until_delivered(b, b"hello", {a: receivers[a], c: receivers[c]})
        for messages in got.values():
            assert {(m.peer_id, m.topic, m.data) for m in messages} == {
                (b.node_id, TOPIC, b"hello")
            }
        assert drain(receivers[b]) == []  # our own publishes never loop back

        big = bytes(range(256)) * (GOSSIP_MAX_PAYLOAD // 256)
        got = await publish_until_delivered(c, big, {a: receivers[a]})
        assert got[a][0].data == big
        with pytest.raises(ValueError):
            await a.publish(TOPIC, bytes(GOSSIP_MAX_PAYLOAD + 1))

        seen = drain(events)
        assert sorted(e.peer_id for e in seen) == sorted([b.node_id, c.node_id])
        assert all(e.connected for e in seen)

    run(body)


def test_send_direct_is_ordered_and_carries_large_messages():
    async def body(nursery):
        a, b = make_node(), make_node()
        inbox = a.direct_receiver(PROTO)
        a.direct_receiver(PROTO).close()  # an abandoned receiver must not disturb delivery
        await start(nursery, a)
        b.add_known_peer(host_port_of(a))
        await start(nursery, b)
        await wait_until(lambda: a.node_id in b.connected_peers())

        async def sender(first: int) -> None:
            for i in range(first, 500, 2):
                await b.send_direct(a.node_id, PROTO, b"%d" % i)

        received = []

        async def reader() -> None:  # receivers are bounded: a consumer reads as frames arrive
            for _ in range(500):
                received.append(await inbox.receive())

        # Two concurrent writers share one stream; each one's messages stay in order.
        async with trio.open_nursery() as writers:
            writers.start_soon(reader)
            writers.start_soon(sender, 0)
            writers.start_soon(sender, 1)
        numbers = [int(m.data) for m in received]
        assert sorted(numbers) == list(range(500))
        assert [n for n in numbers if n % 2 == 0] == list(range(0, 500, 2))
        assert [n for n in numbers if n % 2 == 1] == list(range(1, 500, 2))
        assert {(m.peer_id, m.protocol) for m in received} == {(b.node_id, PROTO)}

        big = bytes(range(256)) * (8 * 1024 * 1024 // 256)
        await b.send_direct(a.node_id, PROTO, big, timeout=30)
        await b.send_direct(a.node_id, PROTO, b"after")
        assert (await inbox.receive()).data == big
        assert (await inbox.receive()).data == b"after"
        assert a.counters["direct_frames_dropped"] == 0

        with pytest.raises(ValueError):
            await b.send_direct(a.node_id, PROTO, _Oversized())
        stranger = str(ID.from_pubkey(create_new_key_pair().public_key))
        with pytest.raises(NetError):
            await b.send_direct(stranger, PROTO, b"x", timeout=1.0)

    run(body)


class _Oversized(bytes):
    def __len__(self) -> int:
        return MAX_FRAME + 1


def test_different_namespace_never_connects():
    async def body(nursery):
        a = make_node()
        await start(nursery, a)
        outsider = make_node(
            namespace="someone-else",
            bootstrap_peers=(addr_of(a), host_port_of(a)),
            dial_timeout=0.5,
        )
        await start(nursery, outsider)
        # Both forms of the address must have failed (timed out) at least twice.
        await wait_until(lambda: outsider.counters["dials_failed"] >= 4)
        assert outsider.connected_peers() == frozenset()
        assert a.connected_peers() == frozenset()
        await outsider.publish(TOPIC, b"nobody listens")  # no peers is not an error

    run(body)


def test_garbage_on_a_direct_stream_is_dropped_and_service_keeps_working():
    async def body(nursery):
        a, b = make_node(), make_node()
        inbox = a.direct_receiver(PROTO)
        await start(nursery, a)
        await start(nursery, b)
        raw_host = build_host(create_new_key_pair(), b.config)
        async with raw_host.run(listen_addrs=[listen_multiaddr(b.config)]):
            await raw_host.connect(info_from_p2p_addr(Multiaddr(addr_of(a))))
            bogus_length = await raw_host.new_stream(ID.from_base58(a.node_id), [PROTO])
            await bogus_length.write(b"\xff\xff\xff\xffnot a frame")
            truncated = await raw_host.new_stream(ID.from_base58(a.node_id), [PROTO])
            await truncated.write((100).to_bytes(4, "big") + b"only ten b")
            await truncated.close()
            await wait_until(lambda: a.counters["direct_frames_dropped"] == 2)

        b.add_known_peer(addr_of(a))
        await wait_until(lambda: a.node_id in b.connected_peers())
        await b.send_direct(a.node_id, PROTO, b"still alive")
        message = await inbox.receive()
        assert (message.peer_id, message.data) == (b.node_id, b"still alive")

    run(body)


def test_stopped_peer_is_reported_and_redialed_after_restart(tmp_path):
    async def body(nursery):
        key_path = tmp_path / "b.key"
        a = make_node()
        events = a.connection_receiver()
        await start(nursery, a)
        b = make_node(load_or_create_keypair(key_path))
        b_scope = await start(nursery, b)
        b_addr = addr_of(b)
        a.add_known_peer(b_addr)
        await wait_until(lambda: b.node_id in a.connected_peers())
        assert await events.receive() == PeerConnectionChanged(b.node_id, connected=True)

        b_scope.cancel()
        with trio.fail_after(10):
            assert await events.receive() == PeerConnectionChanged(b.node_id, connected=False)
        assert a.connected_peers() == frozenset()

        port = int(b_addr.split("/")[4])
        restarted = make_node(load_or_create_keypair(key_path), port=port)
        assert restarted.node_id == b.node_id
        await start(nursery, restarted)
        with trio.fail_after(10):  # only a's dial loop knows the address
            assert await events.receive() == PeerConnectionChanged(b.node_id, connected=True)
        assert a.connected_peers() == {b.node_id}

    run(body)
