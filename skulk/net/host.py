"""Construction of the libp2p host and gossipsub router with Skulk's fixed choices."""

import time

from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from skulk.net.config import NetConfig

# The outbound gossip queue of py-libp2p caps an RPC at 1 MiB; leave room for the
# envelope (topic, seqno, signature, key) so a payload under this always fits.
GOSSIP_MAX_PAYLOAD = 1024 * 1024 - 4096
# Inbound limit above the outbound cap so no valid RPC is ever refused.
_GOSSIP_MAX_INBOUND_RPC = 2 * 1024 * 1024


def listen_multiaddr(config: NetConfig) -> Multiaddr:
    family = "ip6" if ":" in config.listen_host else "ip4"
    return Multiaddr(f"/{family}/{config.listen_host}/tcp/{config.port}")


def build_host(keypair: KeyPair, config: NetConfig) -> IHost:
    """TCP + Noise + Yamux only, inside the private network of the namespace and cluster secret."""
    # Noise only: the default security list also offers plaintext, which trusts
    # whatever peer id the remote claims.
    noise = NoiseTransport(keypair, noise_privkey=create_x25519_key_pair().private_key)
    return new_host(
        key_pair=keypair,
        listen_addrs=[listen_multiaddr(config)],
        sec_opt={NOISE_ID: noise},
        muxer_opt={YAMUX_ID: Yamux},
        psk=config.psk,
        enable_mDNS=False,  # skulk.net.mdns runs discovery itself
    )


def build_pubsub(host: IHost) -> tuple[Pubsub, GossipSub]:
    router = GossipSub(
        protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11],
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_interval=1,  # the default (120 s) makes meshes form very slowly
        # The spam guard also counts our own publishes and drops silently.
        spam_protection_enabled=False,
    )
    pubsub = Pubsub(host, router, max_inbound_rpc_size=_GOSSIP_MAX_INBOUND_RPC)
    # Upstream seeds seqnos from whole seconds, so a restarted node's first
    # messages would repeat message ids its peers have seen and be dropped.
    pubsub.counter = time.time_ns()
    return pubsub, router


async def ensure_port_free(listen_host: str, port: int, *, patience: float = 3.0) -> None:
    """py-libp2p listens with SO_REUSEPORT, so a second node on the same port would silently
    share it with the first; a plain bind first turns that into a clear error. A socket
    still closing from a quick restart gets `patience` seconds to go away."""
    if port == 0:
        return
    import socket

    import trio

    from skulk.net.errors import NetError

    deadline = trio.current_time() + patience
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            try:
                probe.bind((listen_host, port))
                return
            except OSError as exc:
                if trio.current_time() >= deadline:
                    raise NetError(f"cannot listen for peers on {listen_host}:{port}: {exc.strerror} "
                                   "(is another skulk running? choose another --libp2p-port)") from exc
        await trio.sleep(0.1)
