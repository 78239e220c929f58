"""The election core's inputs and outputs (plain values; the core module re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass

from skulk.types.election import ElectionMessage, ElectionResult
from skulk.types.ids import NodeId


# Inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """100 ms have passed."""


@dataclass(frozen=True)
class MessageReceived:
    message: ElectionMessage
    sender: NodeId | None = None  # the gossip signer, when the shell knows it


@dataclass(frozen=True)
class PeerConnectionChanged:
    """One libp2p connection to `peer_id` opened or closed (multi-homed peers send several)."""

    peer_id: NodeId
    connected: bool


@dataclass(frozen=True)
class CommandSeen:
    count: int = 1


Input = Tick | MessageReceived | PeerConnectionChanged | CommandSeen


# Outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Broadcast:
    message: ElectionMessage


@dataclass(frozen=True)
class Elected:
    result: ElectionResult


@dataclass(frozen=True)
class Refused:
    """A received status was dropped; `reason` names why (the shell counts it)."""

    reason: str
    message: ElectionMessage


Output = Broadcast | Elected | Refused
