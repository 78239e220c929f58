"""What the networking layer hands to the services above it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class GossipMessage:
    peer_id: str  # the originator, never this node
    topic: str
    data: bytes


@dataclass(frozen=True)
class DirectMessage:
    peer_id: str
    protocol: str
    data: bytes


@dataclass(frozen=True)
class PeerConnectionChanged:
    peer_id: str
    connected: bool
