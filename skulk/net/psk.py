"""The libp2p private-network key: only nodes that derive the same key can complete a connection.

Without a cluster secret the key comes from the namespace alone (zero-config LAN: anyone who
knows or guesses the namespace can join). With a secret, the secret is stretched by scrypt,
salted with the namespace, so the key can neither be computed from public data nor brute-forced
cheaply from a captured handshake.
"""

import hashlib

_PSK_PREFIX = b"skulk_discovery_network"
_KDF_SALT_PREFIX = b"skulk-cluster-secret-v1\x00"
# scrypt at n=2**15, r=8 costs ~32 MiB and ~0.1 s once per start-up, every guess an attacker makes.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def cluster_psk(namespace: str, secret: str | None = None) -> str:
    """64 hex chars; nodes whose namespaces or secrets differ can never complete a connection."""
    if not secret:
        return hashlib.sha3_256(_PSK_PREFIX + namespace.encode()).hexdigest()
    key = hashlib.scrypt(
        secret.encode(),
        salt=_KDF_SALT_PREFIX + namespace.encode(),
        n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=_SCRYPT_MAXMEM, dklen=32,
    )
    return key.hex()
