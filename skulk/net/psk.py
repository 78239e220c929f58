"""The libp2p private-network key that separates clusters by namespace."""

import hashlib

_PSK_PREFIX = b"skulk_discovery_network"


def cluster_psk(namespace: str) -> str:
    """64 hex chars; nodes whose namespaces differ can never complete a connection."""
    return hashlib.sha3_256(_PSK_PREFIX + namespace.encode()).hexdigest()
