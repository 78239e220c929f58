"""Settings of the networking layer."""

from dataclasses import dataclass, field
from functools import cached_property

from skulk.net.psk import cluster_psk


@dataclass(frozen=True)
class NetConfig:
    listen_host: str = "0.0.0.0"
    port: int = 52416  # 0 = OS-assigned
    namespace: str = "skulk-default"  # nodes only connect within one namespace
    bootstrap_peers: tuple[str, ...] = ()  # multiaddr (with or without /p2p) or host:port
    mdns: bool = True
    topics: tuple[str, ...] = ()  # gossipsub topics to subscribe to
    protocols: tuple[str, ...] = ()  # direct stream protocol ids, e.g. "/skulk/events/1"
    dial_timeout: float = 5.0
    dial_interval: float = 1.0
    # Mixed into the private-network key; kept out of repr so it never reaches a log line.
    secret: str | None = field(default=None, repr=False)

    @cached_property
    def psk(self) -> str:
        """The private-network key, computed once (the KDF is deliberately slow)."""
        return cluster_psk(self.namespace, self.secret)
