"""Per-peer connection state from libp2p's per-connection notifications."""

from collections.abc import Callable

from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from multiaddr import Multiaddr

from skulk.faults import isolate
from skulk.net.fanout import Fanout
from skulk.net.messages import PeerConnectionChanged


class ConnectionTracker(INotifee):
    """Emits one event when a peer's first connection opens and one when its last closes.

    Simultaneous dials leave two connections per pair, so libp2p notifies twice.
    """

    def __init__(self, fanout: Fanout[PeerConnectionChanged], on_lost: Callable[[str], None]):
        self._fanout = fanout
        self._on_lost = on_lost
        self._conns: dict[str, set[INetConn]] = {}

    def connected_peers(self) -> frozenset[str]:
        return frozenset(self._conns)

    def is_connected(self, peer_id: str) -> bool:
        return peer_id in self._conns

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        with isolate("net.connection_event"):  # runs inside libp2p's swarm: never raise there
            peer_id = str(conn.muxed_conn.peer_id)
            conns = self._conns.setdefault(peer_id, set())
            conns.add(conn)
            if len(conns) == 1:
                self._fanout.send(PeerConnectionChanged(peer_id, connected=True))

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        with isolate("net.connection_event"):
            peer_id = str(conn.muxed_conn.peer_id)
            conns = self._conns.get(peer_id)
            if conns is None or conn not in conns:
                return
            conns.discard(conn)
            if not conns:
                del self._conns[peer_id]
                self._on_lost(peer_id)
                self._fanout.send(PeerConnectionChanged(peer_id, connected=False))

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None
