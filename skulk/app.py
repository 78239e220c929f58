"""Composition root: builds one node's services and runs them in one nursery."""

import logging
import math
import os
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Any

import trio

from skulk import probe
from skulk.api.app import create_app, serve_api
from skulk.config import NodePaths, Settings, resolve_node_name
from skulk.election.service import ElectionService
from skulk.master.decide import ReconcileParams
from skulk.master.service import MasterService
from skulk.net import NetConfig, NetService, load_or_create_keypair
from skulk.node.dispatch import ClusterMessenger
from skulk.node.gossip import GossipService
from skulk.node.session import SessionManager
from skulk.node.topics import CLUSTER_PROTOCOL, DIRECT_PROTOCOLS, GOSSIP_TOPICS
from skulk.routing.service import EventRouter
from skulk.state.telemetry import TelemetryView
from skulk.types.wire import NodeHeartbeat
from skulk.worker.reporter import InfoReporter

log = logging.getLogger(__name__)


class Node:
    """One skulk process. Also the API's ClusterPort."""

    def __init__(self, settings: Settings, paths: NodePaths):
        self.settings = settings
        self.paths = paths
        keypair = load_or_create_keypair(paths.identity_key_file)
        self.net = NetService(keypair, NetConfig(
            listen_host=settings.libp2p_host, port=settings.libp2p_port,
            namespace=settings.cluster.namespace, bootstrap_peers=tuple(settings.bootstrap_peers),
            mdns=settings.discovery.mdns, topics=GOSSIP_TOPICS, protocols=DIRECT_PROTOCOLS))
        self.node_id = self.net.node_id
        self.friendly_name = resolve_node_name(settings)
        self.telemetry = TelemetryView()
        self.messenger = ClusterMessenger(self.node_id, self.net, CLUSTER_PROTOCOL)
        self.router = EventRouter(self.node_id, self.messenger.send)
        self.messenger.on_indexed = self.router.on_indexed
        self.sessions = SessionManager(self.node_id, self.router, self._make_master)
        self.messenger.master_inbox = lambda: self.sessions.master.inbox_send if self.sessions.master else None
        self._election_in, election_msgs = trio.open_memory_channel(math.inf)
        self._results_out, self._results_in = trio.open_memory_channel(math.inf)
        self._conn_out, conn_in = trio.open_memory_channel(math.inf)
        self.gossip = GossipService(self.node_id, self.net, self.telemetry, self._heartbeat, self._election_in)
        self.election = ElectionService(
            self.node_id, force_master=settings.force_master, publish=self.gossip.publish_election,
            messages=election_msgs, connections=conn_in, results=self._results_out)
        self.reporter = InfoReporter(self.node_id, self.router, self.telemetry, self._interfaces,
                                     liveness_timeout=settings.node_timeout_seconds)
        self.sessions.listeners.append(self.reporter.on_session_changed)
        self.started_at = datetime.now(timezone.utc)

    # --- ClusterPort -------------------------------------------------------------------------
    @property
    def session(self):
        return self.router.session

    @property
    def is_master(self) -> bool:
        return self.sessions.is_master

    @property
    def state(self):
        return self.router.state

    @property
    def history(self):
        return self.router.history

    def live_telemetry(self):
        now = trio.current_time()
        beats = self.telemetry.live(now, self.settings.node_timeout_seconds)
        return beats, {n: self.telemetry.age(n, now) or 0.0 for n in beats}

    def send_event(self, event: Any) -> None:
        self.router.send_event(event)

    async def send_command(self, command: Any) -> None:
        from skulk.types.wire import ForwardedCommand
        session = self.router.session
        self.election.note_command_seen()
        await self.messenger.send(session.master_node_id, ForwardedCommand(
            session=session, origin=self.node_id, command=command))

    def diagnostics(self) -> dict[str, Any]:
        master = self.sessions.master
        return {
            "runtime": {"configPath": str(self.settings_path()), "configFileExists": self.settings_path().exists(),
                        "listenAddrs": self.net.listen_multiaddrs(), "elections": self.sessions.elections},
            "counters": {**self.net.counters, **self.gossip.counters, **self.messenger.counters,
                         **self.router.counters, **(master.counters if master else {})},
            "connectedPeers": sorted(self.net.connected_peers()),
        }

    def settings_path(self) -> Path:
        return Path("skulk.yaml").resolve()

    # --- services ----------------------------------------------------------------------------
    def _make_master(self, session, seed) -> MasterService:
        s = self.settings
        params = ReconcileParams(timedelta(seconds=s.node_timeout_seconds),
                                 timedelta(seconds=float(os.environ.get("SKULK_SETTLE_GRACE_SECONDS", 60))))
        return MasterService(self.node_id, session, self.messenger.send, seed=seed,
                             log_dir=self.paths.event_log_dir / "master", reconcile_params=params)

    def _interfaces(self):
        ifaces = probe.read_interfaces()
        if self.settings.libp2p_host.startswith("127."):  # a loopback-bound node is only reachable there
            ifaces = [i for i in ifaces if i.ip_address.startswith("127.")]
        return ifaces

    def _heartbeat(self) -> NodeHeartbeat:
        return NodeHeartbeat(
            node_id=self.node_id, sent_at=datetime.now(timezone.utc),
            identity=probe.read_identity(self.friendly_name), memory=probe.read_memory(),
            system=probe.read_system(), disk=probe.read_disk(self.paths.home),
            interfaces=self._interfaces(), listen_addrs=self.net.listen_multiaddrs(),
            api_port=None if self.settings.no_api else self.settings.api_port, session=self.router.session)

    async def _fan_out_connections(self) -> None:
        async for change in self.net.connection_receiver():
            self._conn_out.send_nowait(change)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.net.run)
            nursery.start_soon(self._fan_out_connections)
            nursery.start_soon(self.messenger.run, self.net.direct_receiver(CLUSTER_PROTOCOL))
            await nursery.start(self.router.run)
            await nursery.start(self.sessions.run, self._results_in)
            await nursery.start(self.gossip.run)
            await nursery.start(self.election.run)
            await self.sessions.ready.wait()
            await nursery.start(self.reporter.run)
            if not self.settings.no_api:
                app = create_app(self)
                await nursery.start(serve_api, app, self.settings.api_host, self.settings.api_port)
            log.info("node %s (%s) ready; libp2p %s; api %s", self.node_id, self.friendly_name,
                     ", ".join(self.net.listen_multiaddrs()),
                     "off" if self.settings.no_api else f"http://{self.settings.api_host}:{self.settings.api_port}")
            task_status.started(self)
