"""Reports this node into the ordered log: liveness/network info and its reachability edges."""

import logging
from collections.abc import Callable
from datetime import datetime, timezone

import httpx
import trio

from skulk.faults import isolate
from skulk.routing.service import EventRouter
from skulk.state.telemetry import TelemetryView
from skulk.state.topology import out_edges
from skulk.types.events import NodeGatheredInfo, TopologyEdgeCreated, TopologyEdgeDeleted
from skulk.types.ids import NodeId
from skulk.types.node import NetworkInterfaceInfo, NodeNetworkInterfaces
from skulk.types.topology import Connection, SocketConnection

log = logging.getLogger(__name__)


class InfoReporter:
    def __init__(self, node_id: NodeId, router: EventRouter, telemetry: TelemetryView,
                 read_interfaces: Callable[[], list[NetworkInterfaceInfo]], *,
                 info_interval: float = 10.0, probe_interval: float = 2.0,
                 liveness_timeout: float = 30.0):
        self.node_id = node_id
        self._router = router
        self._telemetry = telemetry
        self._read_interfaces = read_interfaces
        self._info_interval = info_interval
        self._probe_interval = probe_interval
        self._liveness_timeout = liveness_timeout
        self._session_changed = trio.Event()

    def on_session_changed(self, *_args) -> None:
        self._session_changed.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._info_loop)
            nursery.start_soon(self._probe_loop)
            task_status.started()

    async def _info_loop(self) -> None:
        while True:
            with isolate("reporter.info"):  # an unreadable interface list skips one report
                info = NodeNetworkInterfaces(ifaces=self._read_interfaces())
                self._router.send_event(NodeGatheredInfo(
                    node_id=self.node_id, when=datetime.now(timezone.utc), info=info))
            with trio.move_on_after(self._info_interval):
                await self._session_changed.wait()
                self._session_changed = trio.Event()

    async def _probe_loop(self) -> None:
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                try:
                    await self._probe_once(client)
                except Exception as exc:  # noqa: BLE001 - probing must never stop the node
                    log.debug("topology probe failed: %s", exc)
                await trio.sleep(self._probe_interval)

    async def _probe_once(self, client: httpx.AsyncClient) -> None:
        state = self._router.state
        if self.node_id not in state.topology.nodes:
            return  # our own node must be indexed before our edges make sense
        peers = self._telemetry.live(trio.current_time(), self._liveness_timeout)
        reachable: set[Connection] = set()
        for peer, hb in peers.items():
            if peer == self.node_id or hb.api_port is None or peer not in state.topology.nodes:
                continue
            for iface in hb.interfaces:
                if await _answers_as(client, iface.ip_address, hb.api_port, peer):
                    addr = f"/ip4/{iface.ip_address}/tcp/{hb.api_port}"
                    reachable.add(Connection(source=self.node_id, sink=peer,
                                             edge=SocketConnection(sink_multiaddr=addr)))
        current = {c for c in out_edges(state.topology, self.node_id) if isinstance(c.edge, SocketConnection)}
        for conn in reachable - current:
            self._router.send_event(TopologyEdgeCreated(conn=conn))
        for conn in current - reachable:
            self._router.send_event(TopologyEdgeDeleted(conn=conn))


async def _answers_as(client: httpx.AsyncClient, ip: str, port: int, expected: NodeId) -> bool:
    try:
        resp = await client.get(f"http://{ip}:{port}/node_id")
        return resp.status_code == 200 and resp.json() == expected
    except (httpx.HTTPError, ValueError):
        return False
