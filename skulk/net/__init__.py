"""Skulk's networking layer: libp2p host, gossip, direct streams, peer dialing."""

from skulk.net.addrs import PeerAddress, advertisable_multiaddrs, parse_bootstrap_peer
from skulk.net.config import NetConfig
from skulk.net.errors import NetError
from skulk.net.identity import load_or_create_keypair, node_id_of
from skulk.net.messages import DirectMessage, GossipMessage, PeerConnectionChanged
from skulk.net.psk import cluster_psk
from skulk.net.service import NetService

__all__ = [
    "DirectMessage",
    "GossipMessage",
    "NetConfig",
    "NetError",
    "NetService",
    "PeerAddress",
    "PeerConnectionChanged",
    "advertisable_multiaddrs",
    "cluster_psk",
    "load_or_create_keypair",
    "node_id_of",
    "parse_bootstrap_peer",
]
