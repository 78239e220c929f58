"""Identity, private-network key and address parsing: no sockets involved."""

import stat

import pytest

from skulk.net import (
    PeerAddress,
    advertisable_multiaddrs,
    cluster_psk,
    load_or_create_keypair,
    node_id_of,
    parse_bootstrap_peer,
)

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
