"""Composition root: builds one node's services and runs them in one nursery."""

import logging
import math
import os
from datetime import timedelta

import trio

from skulk import probe
from skulk.api.app import create_app, serve_api
from skulk.api.auth import is_loopback_bind
from skulk.config import NodePaths, Settings, resolve_node_name
from skulk.election.service import ElectionService
from skulk.faults import isolate
from skulk.master.decide import ReconcileParams
from skulk.master.service import MasterService
from skulk.models import ModelCatalog
from skulk.net import NetConfig, NetService, load_or_create_keypair
from skulk.net.host import ensure_port_free
from skulk.node.access_bootstrap import AccessBootstrap
from skulk.node.dataplane import DataPlane
from skulk.node.dispatch import ClusterMessenger
from skulk.node.durable_state import FILE_NAME as DURABLE_FILE, DurableState
from skulk.node.facade import ClusterFacade
from skulk.node.flight_recorder import FlightRecorder
from skulk.node.gossip import GossipService
from skulk.node.heartbeat import heartbeat_builder, reachable_interfaces
from skulk.node.incarnation import next_incarnation
from skulk.node.master_hooks import MasterContext
from skulk.node.metric_history import MetricHistory, MetricSampler
from skulk.node.ops import NodeOps
from skulk.node.session import SessionManager
from skulk.node.streams import SESSION_CHANGED, StreamRegistry
from skulk.node.traces import run_trace_writer
from skulk.node.topics import CLUSTER_PROTOCOL, DATA_PROTOCOL, DIRECT_PROTOCOLS, GOSSIP_TOPICS
from skulk.routing.service import EventRouter
from skulk.state.telemetry import TelemetryView
from skulk.store.api_event_log import ApiEventLog
from skulk.store.service import StoreService, supervised_instances
from skulk.engine.error_codes import error_chunk
from skulk.types.chunks import EmbeddingChunk, TokenChunk
from skulk.worker.fit import fit_checker
from skulk.worker.reporter import InfoReporter
from skulk.worker.service import WorkerService

log = logging.getLogger(__name__)


class Node:
    """One skulk process: every service of the node, wired together."""

    def __init__(self, settings: Settings, paths: NodePaths):
        s, self.settings, self.paths = settings, settings, paths
        self.net = NetService(load_or_create_keypair(paths.identity_key_file), NetConfig(
            listen_host=s.libp2p_host, port=s.libp2p_port, namespace=s.cluster.namespace,
            bootstrap_peers=tuple(s.bootstrap_peers), mdns=s.discovery.mdns, topics=GOSSIP_TOPICS,
            protocols=DIRECT_PROTOCOLS, secret=s.cluster.secret))
        if not s.cluster.secret:
            log.warning("this cluster has no secret: any machine on the network can join "
                        "(set cluster.secret_file; `skulk secret` makes one)")
        self.node_id = node_id = self.net.node_id
        self.telemetry = TelemetryView()
        self.catalog = ModelCatalog(custom_dir=paths.custom_model_cards_dir)
        self.messenger = ClusterMessenger(node_id, self.net, CLUSTER_PROTOCOL)
        self.router = EventRouter(node_id, self.messenger.send, api_log=ApiEventLog(
            paths.event_log_dir / "api", free_space_floor_bytes=s.event_log_min_free_bytes))
        self.messenger.on_indexed = self.router.on_indexed
        self.sessions = SessionManager(node_id, self.router, self._make_master)
        self.durable = DurableState(paths.home / DURABLE_FILE, lambda: self.router.state)  # cold-restart seed
        self.messenger.master_inbox = lambda: self.sessions.master.inbox_send if self.sessions.master else None
        self.streams = StreamRegistry()
        self.dataplane = DataPlane(node_id, self.net, DATA_PROTOCOL, self.streams, state=lambda: self.router.state)
        election_in, election_msgs = trio.open_memory_channel(1024)  # fed from gossip: bounded, full drops
        results_out, self._results_in = trio.open_memory_channel(math.inf)
        self._conn_out, conn_in = trio.open_memory_channel(math.inf)
        friendly = resolve_node_name(s)
        beat = heartbeat_builder(node_id, friendly, s.libp2p_host, paths.home, None if s.no_api else s.api_port,
                                 self.net.listen_multiaddrs, lambda: self.router.session, has_worker=not s.no_worker,
                                 mock_devices=s.devices.mock)
        self.gossip = GossipService(node_id, self.net, self.telemetry, beat, election_in)
        self.election = ElectionService(node_id, force_master=s.force_master, publish=self.gossip.publish_election,
                                        messages=election_msgs, connections=conn_in, results=results_out,
                                        initial_clock=next_incarnation(paths.home / "incarnation"))
        self.reporter = InfoReporter(node_id, self.router, self.telemetry, lambda: reachable_interfaces(s.libp2p_host),
                                     liveness_timeout=s.node_timeout_seconds)
        self.recorder = FlightRecorder(node_id)  # served by /v1/diagnostics/node/timeline
        self.metric_history = MetricHistory(paths.home / "metrics" / "history.sqlite3",
                                            retention_s=s.metrics.retention_hours * 3600)
        self.metric_sampler = MetricSampler(node_id, self.metric_history, interval=s.metrics.sample_seconds,
                                            own_beat=lambda: self.telemetry.heartbeats.get(node_id),
                                            state=lambda: self.router.state)
        self.worker = None if s.no_worker else WorkerService(
            node_id, self.router, self._make_supervisor, self._send_output, record=self.recorder.record,
            send_command=lambda c: self.facade.send_command(c), fits=fit_checker(probe.read_memory),
            params=self.dataplane.params)
        self.ops = NodeOps(node_id, s, paths, self.router)
        self.ops.live_listeners.append(self._apply_log_floor)
        self.master_context = MasterContext(self.telemetry, trio.current_time, s.node_timeout_seconds,
                                            lambda: self.catalog.get(s.default_model.model_id), s.default_model.auto_place,
                                            s.inference.engine, pending_limit=lambda: self.ops.settings.inference.pending_limit,
                                            local_config=lambda: self.ops.settings.model_dump(include={"runner", "deployments", "warm_cache"}))
        self.sessions.listeners.extend([self._on_session_changed, self.recorder.on_session_changed])
        self.store = StoreService(s, paths, node_id=node_id, friendly_name=friendly, router=self.router,
                                  telemetry=self.telemetry, local_instances=lambda: supervised_instances(self.worker),
                                  send_command=lambda c: self.facade.send_command(c))
        self.facade = ClusterFacade(
            node_id=node_id, friendly_name=friendly, router=self.router, sessions=self.sessions,
            telemetry=self.telemetry, messenger=self.messenger, streams=self.streams, catalog=self.catalog,
            liveness_timeout=s.node_timeout_seconds, note_command=self.election.note_command_seen,
            counters=self._counters, net=self.net, settings=s, ops=self.ops,
            supervisors=lambda: self.worker.supervisors if self.worker is not None else {},
            recorder=self.recorder, has_worker=self.worker is not None)

    def _counters(self) -> dict:
        master = self.sessions.master
        return {**self.net.counters, **self.gossip.counters, **self.messenger.counters, **self.router.counters,
                **self.dataplane.counters, **self.ops.config_sync.counters, **self.ops.log_shipper.counters,
                **(master.counters if master else {})}

    def _apply_log_floor(self, live: Settings) -> None:
        floor = live.event_log_min_free_bytes
        if self.router.api_log is not None:
            self.router.api_log.set_free_space_floor(floor)
        if self.sessions.master is not None:
            self.sessions.master.set_log_free_space_floor(floor)

    def _make_master(self, session, seed) -> MasterService:
        s = self.ops.settings  # the live floor, should a PUT /config have changed it
        grace = float(os.environ.get("SKULK_SETTLE_GRACE_SECONDS", 60))
        if seed is None:  # this process's first session: a cluster restarted from cold starts from disk
            seed = self.durable.seed_for_cold_master(self.router.state)
        return MasterService(self.node_id, session, self.messenger.send, seed=seed,
                             log_dir=self.paths.event_log_dir / "master",
                             reconcile_params=ReconcileParams(timedelta(seconds=s.node_timeout_seconds),
                                                              timedelta(seconds=grace)),
                             context=self.master_context,
                             log_min_free_bytes=s.event_log_min_free_bytes,
                             webhook_url=lambda: self.ops.settings.notifications.webhook_url)  # live

    def _make_supervisor(self, runner_id, instance, *, on_status, on_output, on_traces=None):
        from skulk.runner.supervisor import RunnerSupervisor  # keeps node start-up light

        return RunnerSupervisor(runner_id, instance, self.node_id, models_dir=self.paths.models_dir,
                                extra_model_dirs=(*self.paths.extra_model_dirs, *self.store.extra_model_dirs),
                                offline=self.settings.offline, on_status=on_status, on_output=on_output,
                                on_traces=on_traces,
                                prepare_model=self.store.prepare_model, runner_log=self.ops.runner_log_config(),
                                hf_token=self.ops.settings.hf_token)  # the live token: PUT /config may change it

    def _send_output(self, task, out) -> None:
        self.metric_sampler.note_output(out)  # tokens per second in the metric history
        if out.error_code:
            chunk = error_chunk(out.error_code, out.error_message)
        elif out.embeddings is not None:
            chunk = EmbeddingChunk(embeddings=out.embeddings, token_count=out.usage.prompt_tokens if out.usage else 0)
        else:
            chunk = TokenChunk(text=out.text, token_ids=out.token_ids, finish_reason=out.finish_reason,
                               usage=out.usage, stop_sequence=out.stop_sequence)
        self.dataplane.send(task.owner_node or self.node_id, task.command_id, chunk, final=out.finished)

    def _on_session_changed(self, new, old) -> None:
        if old is not None:
            self.streams.fail_all(SESSION_CHANGED)
        self.reporter.on_session_changed()
        if self.worker is not None:
            self.worker.on_session_changed()

    async def _watch_connections(self) -> None:
        async for change in self.net.connection_receiver():
            with isolate("node.connection_change"):
                self._conn_out.send_nowait(change)
                if not change.connected:
                    self.streams.fail_on_node_loss(self.router.state, change.peer_id)

    async def _watch_events(self) -> None:
        async for batch in self.router.subscribe():
            with isolate("node.events_watch"):
                self.streams.fail_on_events(self.router.state, batch)
                self.dataplane.on_state_changed()  # chunks that overtook their TaskCreated

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await ensure_port_free(self.settings.libp2p_host, self.settings.libp2p_port)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.net.run)
            nursery.start_soon(self._watch_connections)
            nursery.start_soon(self._watch_events)
            nursery.start_soon(self.messenger.run, self.net.direct_receiver(CLUSTER_PROTOCOL))
            await nursery.start(self.dataplane.run, self.net.direct_receiver(DATA_PROTOCOL))
            await nursery.start(self.router.run)
            await nursery.start(self.durable.run)
            await nursery.start(self.ops.run, nursery.cancel_scope)
            await nursery.start(self.sessions.run, self._results_in)
            await nursery.start(self.gossip.run)
            await nursery.start(self.election.run)
            await self.sessions.ready.wait()
            await nursery.start(self.reporter.run)
            await nursery.start(self.metric_sampler.run)
            await nursery.start(self.store.run)
            if self.worker is not None:
                await nursery.start(self.worker.run)
            api = "off"
            if not self.settings.no_api:
                app = create_app(self.facade, dashboard_base_path=self.settings.dashboard_base_path,
                                 bind_host=self.settings.api_host)
                await nursery.start(AccessBootstrap(
                    self.facade, home=self.paths.home, auth=self.settings.auth, node_name=self.facade.friendly_name,
                    loopback=is_loopback_bind(self.settings.api_host), usage=app.state.key_usage).run)
                app.state.store = self.store
                app.state.metric_history, app.state.metric_sampler = self.metric_history, self.metric_sampler
                await nursery.start(run_trace_writer, self.paths.traces_dir, self.node_id, self.router.subscribe())
                await nursery.start(serve_api, app, self.settings.api_host, self.settings.api_port)
                api = f"http://{self.settings.api_host}:{self.settings.api_port}"
            log.info("node %s ready; libp2p %s; api %s", self.node_id, ", ".join(self.net.listen_multiaddrs()), api)
            task_status.started(self)
