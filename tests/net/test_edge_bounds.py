"""The network edge refuses and counts hostile input: bounded receivers, dial targets, heartbeats."""

from datetime import datetime, timedelta, timezone
from collections import Counter
from types import SimpleNamespace

import msgpack
import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from skulk import codec
from skulk.election.events import MessageReceived
from skulk.errors import CodecError
from skulk.faults import FAULTS
from skulk.net import parse_bootstrap_peer
from skulk.net.dialer import MAX_TARGETS, MAX_TARGETS_PER_PEER, Dialer
from skulk.net.fanout import Fanout
from skulk.node.gossip import GossipService
from skulk.node.heartbeat import heartbeat_builder
from skulk.node.topics import ELECTION_PROTOCOL, ELECTION_TOPIC, HEARTBEAT_TOPIC
from skulk.state.telemetry import TelemetryView, with_sane_sent_at
from skulk.types.election import ElectionMessage
from skulk.types.ids import Memory, SessionId
from skulk.types.node import MemoryUsage, NodeIdentity, SystemPerformanceProfile
from skulk.types.wire import MAX_LISTEN_ADDRS, NodeHeartbeat


def peer_id() -> str:
    return ID.from_pubkey(create_new_key_pair().public_key).to_base58()


def heartbeat(node_id: str, **fields) -> NodeHeartbeat:
    mem = Memory(in_bytes=1)
    return NodeHeartbeat(node_id=node_id, sent_at=fields.pop("sent_at", datetime.now(timezone.utc)),
                         identity=NodeIdentity(friendly_name="x"),
                         memory=MemoryUsage(ram_total=mem, ram_available=mem, swap_total=mem, swap_available=mem),
                         system=SystemPerformanceProfile(), **fields)


def test_a_full_receiver_misses_items_and_they_are_counted():
    fanout = Fanout[int]("numbers", capacity=2)
    slow, other = fanout.open(), fanout.open()
    before = FAULTS.counts["net.receiver_full"]
    assert [fanout.send(i) for i in range(3)] == [2, 2, 0]
    assert FAULTS.counts["net.receiver_full"] == before + 2 and fanout.dropped == 2
    assert [slow.receive_nowait(), slow.receive_nowait()] == [0, 1]
    assert other.receive_nowait() == 0


def test_dial_targets_are_bounded_per_peer_and_in_total():
    host = SimpleNamespace(get_id=lambda: ID.from_base58(peer_id()))
    dialer = Dialer(host, Counter(), lambda p: False, timeout=1.0, interval=1.0)
    one = peer_id()
    for port in range(1, MAX_TARGETS_PER_PEER + 10):
        assert dialer.add(parse_bootstrap_peer(f"/ip4/127.0.0.1/tcp/{port}/p2p/{one}"))
    kept = [t for t in dialer._targets.values() if t.address.peer_id == one]
    assert len(kept) == MAX_TARGETS_PER_PEER
    assert kept[-1].address.transport.endswith(f"/tcp/{MAX_TARGETS_PER_PEER + 9}")  # newest kept
    before = FAULTS.counts["dialer.known_peers_full"]
    results = [dialer.add(parse_bootstrap_peer(f"127.0.0.1:{p}")) for p in range(1000, 1000 + MAX_TARGETS)]
    assert len(dialer._targets) == MAX_TARGETS and not all(results)
    assert FAULTS.counts["dialer.known_peers_full"] - before == MAX_TARGETS_PER_PEER


def _raw_frame(raw: dict) -> bytes:
    return bytes([codec.FORMAT_VERSION]) + msgpack.packb(raw)


@pytest.mark.parametrize("field, value", [
    ("listenAddrs", ["/ip4/127.0.0.1/tcp/1"] * (MAX_LISTEN_ADDRS + 1)),
    ("listenAddrs", ["/ip4/127.0.0.1/tcp/1" + "0" * 300]),
    ("apiPort", 70000),
    ("nodeId", "x" * 1000),
])
def test_heartbeat_wire_bounds_refuse_oversized_lists_strings_and_ports(field, value):
    raw = heartbeat(peer_id()).model_dump(mode="json", by_alias=True)
    assert codec.decode(_raw_frame(raw), NodeHeartbeat)  # the untouched one decodes
    raw[field] = value
    with pytest.raises(CodecError):
        codec.decode(_raw_frame(raw), NodeHeartbeat)


def test_own_heartbeat_is_trimmed_to_the_bounds_peers_enforce(tmp_path):
    me = peer_id()
    addrs = [f"/ip4/127.0.0.1/tcp/{p}/p2p/{me}" for p in range(1, 100)]
    build = heartbeat_builder(me, "n" * 1000, "127.0.0.1", tmp_path, 8080, lambda: addrs, lambda: None)
    hb = build()
    assert len(hb.listen_addrs) == MAX_LISTEN_ADDRS
    assert codec.decode(codec.encode(hb), NodeHeartbeat) == hb  # what we send, peers accept


def test_absurd_sent_at_is_replaced_by_the_receive_time():
    now = datetime.now(timezone.utc)
    far = heartbeat(peer_id(), sent_at=datetime(9999, 1, 1, tzinfo=timezone.utc))
    fixed, skewed = with_sane_sent_at(far, now)
    assert skewed and fixed.sent_at == now
    near = heartbeat(peer_id(), sent_at=now - timedelta(minutes=5))
    assert with_sane_sent_at(near, now) == (near, False)


class _Net:
    """Just what GossipService calls on the network service."""

    def __init__(self, connected: set[str]):
        self.known: list[str] = []
        self.connected = connected
        self.rx = {t: trio.open_memory_channel(10) for t in (HEARTBEAT_TOPIC, ELECTION_TOPIC)}
        self.direct_rx = {ELECTION_PROTOCOL: trio.open_memory_channel(10)}
        self.published: list = []
        self.direct: list = []

    def add_known_peer(self, addr: str) -> None:
        self.known.append(addr)

    def connected_peers(self) -> frozenset[str]:
        return frozenset(self.connected)

    def gossip_receiver(self, topic):
        return self.rx[topic][1]

    async def publish(self, topic, data):
        self.published.append((topic, data))

    async def send_direct(self, peer, protocol, data, timeout=None):
        self.direct.append((peer, protocol, data))

    def direct_receiver(self, protocol):
        return self.direct_rx[protocol][1]


def _service(net, election_in):
    me = peer_id()
    return GossipService(me, net, TelemetryView(), lambda: heartbeat(me), election_in)


def test_heartbeat_addresses_are_parsed_tied_to_the_signer_and_counted():
    rogue, other = peer_id(), peer_id()
    net = _Net({rogue})
    send, _ = trio.open_memory_channel(10)
    svc = _service(net, send)
    addrs = ["garbage", "/ip4/1.2.3.4/tcp/99999", f"/ip4/127.0.0.1/tcp/5/p2p/{other}",
             "/dns4/example.com/tcp/5/p2p/" + rogue, f"/ip4/127.0.0.1/tcp/7/p2p/{rogue}"]
    before = FAULTS.snapshot()

    async def scenario():
        svc._on_heartbeat(rogue, codec.encode(heartbeat(rogue, listen_addrs=addrs)))
        svc._on_heartbeat(rogue, codec.encode(heartbeat(other)))  # speaks for someone else
        svc._on_heartbeat(rogue, b"\x01garbage")

    trio.run(scenario)
    after = FAULTS.snapshot()
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert net.known == [f"/ip4/127.0.0.1/tcp/7/p2p/{rogue}"]
    assert moved["gossip.bad_listen_addr"] == 2 and moved["gossip.foreign_listen_addr"] == 2
    assert moved["gossip.forged_heartbeat"] == 1 and moved["gossip.malformed_heartbeat"] == 1
    assert set(svc.telemetry.heartbeats) == {rogue}


def test_election_statuses_carry_their_signer_even_before_a_direct_link():
    # Refusing unconnected signers split 8-node clusters (a status relayed while a duplicate
    # connection settled was dropped, and the node elected itself alone); the core judges signers.
    connected, stranger = peer_id(), peer_id()
    net = _Net({connected})
    send, recv = trio.open_memory_channel(10)
    svc = _service(net, send)
    status = ElectionMessage(clock=3, seniority=0, commands_seen=0,
                             proposed_session=SessionId(master_node_id=connected, election_clock=3))

    async def scenario():
        svc._on_election(connected, codec.encode(status))
        svc._on_election(stranger, codec.encode(status))

    trio.run(scenario)
    assert recv.receive_nowait() == MessageReceived(status, sender=connected)
    assert recv.receive_nowait() == MessageReceived(status, sender=stranger)  # refused by the core


def test_a_status_goes_by_gossip_and_straight_to_every_connected_peer_and_is_read_from_both():
    """Relayed gossip lagged seconds on a loaded 10-node cluster: each status also takes one hop."""
    from skulk.net.messages import DirectMessage

    peers = {peer_id(), peer_id()}
    net = _Net(set(peers))
    send, recv = trio.open_memory_channel(10)
    svc = _service(net, send)
    mine = ElectionMessage(clock=1, seniority=0, commands_seen=0,
                           proposed_session=SessionId(master_node_id=svc.node_id, election_clock=1))
    sender = sorted(peers)[0]
    theirs = mine.model_copy(update={"proposed_session": SessionId(master_node_id=sender, election_clock=1)})

    async def scenario():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(svc._send_elections_direct)
            nursery.start_soon(svc._receive_direct_elections)
            await svc.publish_election(mine)
            for junk in (b"garbage", b"\xff" * 70_000):  # malformed and oversized: counted, never fatal
                await net.direct_rx[ELECTION_PROTOCOL][0].send(DirectMessage(sender, ELECTION_PROTOCOL, junk))
            await net.direct_rx[ELECTION_PROTOCOL][0].send(DirectMessage(sender, ELECTION_PROTOCOL, codec.encode(theirs)))
            with trio.fail_after(5):
                while len(net.direct) < len(peers):
                    await trio.sleep(0.01)
                got = await recv.receive()
            nursery.cancel_scope.cancel()
        return got

    got = trio.run(scenario)
    assert net.published == [(ELECTION_TOPIC, codec.encode(mine))]
    assert sorted(p for p, *_ in net.direct) == sorted(peers)
    assert {(proto, data) for _, proto, data in net.direct} == {(ELECTION_PROTOCOL, codec.encode(mine))}
    assert got == MessageReceived(theirs, sender=sender)  # the stream's peer is the signer
    assert svc.counters["malformed_gossip"] == 2


def test_the_telemetry_view_is_bounded_against_minted_keys():
    from skulk.state.telemetry import MAX_NODES

    net = _Net(set())
    send, _ = trio.open_memory_channel(10)
    svc = _service(net, send)
    for i in range(MAX_NODES):
        svc.telemetry.heartbeats[f"n{i}"] = None  # occupied slots; only the count matters here
        svc.telemetry.received_at[f"n{i}"] = 0.0
    newcomer, before = peer_id(), FAULTS.counts["gossip.telemetry_full"]
    trio.run(lambda: _call(svc._on_heartbeat, newcomer, codec.encode(heartbeat(newcomer))))
    assert newcomer not in svc.telemetry.heartbeats
    assert FAULTS.counts["gossip.telemetry_full"] == before + 1
    assert svc.telemetry.has_room_for("n0")  # known nodes keep reporting


async def _call(fn, *args):
    fn(*args)
