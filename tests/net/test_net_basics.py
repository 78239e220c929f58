"""Identity, private-network key and address parsing: no sockets involved."""

import stat
from types import SimpleNamespace

import pytest
import trio
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr
from zeroconf import service_type_name

from skulk.net import (
    PeerAddress,
    advertisable_multiaddrs,
    cluster_psk,
    load_or_create_keypair,
    node_id_of,
    PeerConnectionChanged,
    parse_bootstrap_peer,
)
from skulk.net.connections import ConnectionTracker
from skulk.net.fanout import Fanout
from skulk.net.mdns import _fingerprint, discovery_bridge

PEER = "12D3KooWFREqEopA7ALpWMnRtdXWgNhgomDRuCQ9BkDyyAtXVcuJ"


def test_identity_persists_across_loads(tmp_path):
    path = tmp_path / "nested" / "dir" / "node.key"
    first = node_id_of(load_or_create_keypair(path))
    assert first.startswith("12D3KooW")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert node_id_of(load_or_create_keypair(path)) == first
    assert node_id_of(load_or_create_keypair(tmp_path / "other.key")) != first


def test_psk_is_deterministic_and_per_namespace():
    psk = cluster_psk("skulk-default")
    assert len(psk) == 64 and int(psk, 16) >= 0
    assert cluster_psk("skulk-default") == psk
    assert cluster_psk("lab") != psk


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"/ip4/127.0.0.1/tcp/52416/p2p/{PEER}", PeerAddress("/ip4/127.0.0.1/tcp/52416", PEER)),
        ("/ip4/10.0.0.7/tcp/52416", PeerAddress("/ip4/10.0.0.7/tcp/52416")),
        ("/dns4/node-a.lan/tcp/9", PeerAddress("/dns4/node-a.lan/tcp/9")),
        ("127.0.0.1:52416", PeerAddress("/ip4/127.0.0.1/tcp/52416")),
        ("localhost:52416", PeerAddress("/dns4/localhost/tcp/52416")),
        ("[::1]:7", PeerAddress("/ip6/::1/tcp/7")),
        ("  192.168.1.2:80 ", PeerAddress("/ip4/192.168.1.2/tcp/80")),
    ],
)
def test_parse_bootstrap_peer_forms(text, expected):
    parsed = parse_bootstrap_peer(text)
    assert parsed == expected
    assert parse_bootstrap_peer(str(parsed)) == parsed


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "hello",
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        "127.0.0.1:port",
        ":52416",
        "bad_host!:52416",
        "/ip4/1.2.3/tcp/1",
        "/ip4/127.0.0.1/udp/52416",
        "/ip4/127.0.0.1",
        "/ip4/127.0.0.1/tcp/52416/p2p/notapeerid",
        "/ip4/127.0.0.1/tcp/0",
        "/unknown/x",
    ],
)
def test_parse_bootstrap_peer_rejects_junk(junk):
    with pytest.raises(ValueError):
        parse_bootstrap_peer(junk)


def test_wildcard_listen_expands_to_interfaces_including_loopback():
    addrs = advertisable_multiaddrs("0.0.0.0", 52416, PEER)
    assert f"/ip4/127.0.0.1/tcp/52416/p2p/{PEER}" in addrs
    assert all(a.endswith(f"/tcp/52416/p2p/{PEER}") and "0.0.0.0" not in a for a in addrs)
    assert advertisable_multiaddrs("10.1.2.3", 1, PEER) == [f"/ip4/10.1.2.3/tcp/1/p2p/{PEER}"]


def test_connection_events_are_per_peer_not_per_connection():
    events = Fanout[PeerConnectionChanged]("connections")
    receiver = events.open()
    lost: list[str] = []
    tracker = ConnectionTracker(events, on_lost=lost.append)
    first, second = _FakeConn(PEER), _FakeConn(PEER)

    async def scenario():
        await tracker.connected(None, first)
        await tracker.connected(None, second)  # simultaneous dial: a second connection
        assert tracker.connected_peers() == {PEER}
        await tracker.disconnected(None, first)
        await tracker.disconnected(None, first)  # repeated notification is ignored
        assert tracker.is_connected(PEER)
        await tracker.disconnected(None, second)

    trio.run(scenario)
    assert [receiver.receive_nowait() for _ in range(2)] == [
        PeerConnectionChanged(PEER, connected=True),
        PeerConnectionChanged(PEER, connected=False),
    ]
    with pytest.raises(trio.WouldBlock):
        receiver.receive_nowait()
    assert lost == [PEER] and tracker.connected_peers() == frozenset()


def test_fanout_forgets_closed_receivers():
    fanout = Fanout[int]("numbers")
    kept, dropped = fanout.open(), fanout.open()
    dropped.close()
    assert fanout.send(1) == 1 and fanout.send(2) == 1
    assert [kept.receive_nowait(), kept.receive_nowait()] == [1, 2]
    fanout.close()
    with pytest.raises(trio.EndOfChannel):
        kept.receive_nowait()


class _FakeConn:
    def __init__(self, peer_id: str) -> None:
        self.muxed_conn = SimpleNamespace(peer_id=peer_id)


def test_mdns_discoveries_hop_into_trio_and_skip_wildcard_addresses():
    found: list[PeerAddress] = []

    async def scenario():
        arrived = trio.Event()

        def on_peer(address: PeerAddress) -> None:
            found.append(address)
            arrived.set()

        addrs = [Multiaddr("/ip4/0.0.0.0/tcp/5"), Multiaddr("/ip4/192.168.1.9/tcp/5")]
        with discovery_bridge(on_peer):
            # zeroconf calls the handler on its own thread
            info = PeerInfo(ID.from_base58(PEER), addrs)
            await trio.to_thread.run_sync(peerDiscovery.emit_peer_discovered, info)
            with trio.fail_after(5):
                await arrived.wait()

    trio.run(scenario)
    assert found == [PeerAddress("/ip4/192.168.1.9/tcp/5", PEER)]
    assert service_type_name(f"_p2p-{_fingerprint('skulk-default')}._udp.local.")
