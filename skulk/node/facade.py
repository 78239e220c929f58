"""ClusterFacade: the API's view of this node (the ClusterPort), built from the node's parts."""

from pathlib import Path
from typing import Any

import trio

from skulk.node.dispatch import ClusterMessenger
from skulk.node.session import SessionManager
from skulk.node.streams import StreamRegistry
from skulk.routing.service import EventRouter
from skulk.state.telemetry import TelemetryView
from skulk.types.chunks import ErrorChunk
from skulk.types.wire import ForwardedCommand


class ClusterFacade:
    def __init__(self, *, node_id: str, friendly_name: str, router: EventRouter, sessions: SessionManager,
                 telemetry: TelemetryView, messenger: ClusterMessenger, streams: StreamRegistry,
                 catalog: Any, liveness_timeout: float, note_command: Any, counters: Any, net: Any,
                 settings: Any = None):
        self.node_id = node_id
        self.friendly_name = friendly_name
        self._router = router
        self._sessions = sessions
        self._telemetry = telemetry
        self._messenger = messenger
        self._streams = streams
        self.catalog = catalog
        self._timeout = liveness_timeout
        self._note_command = note_command
        self._counters = counters
        self._net = net
        self.settings = settings

    @property
    def session(self):
        return self._router.session

    @property
    def is_master(self) -> bool:
        return self._sessions.is_master

    @property
    def state(self):
        return self._router.state

    @property
    def history(self):
        return self._router.history

    def live_telemetry(self):
        now = trio.current_time()
        beats = self._telemetry.live(now, self._timeout)
        return beats, {n: self._telemetry.age(n, now) or 0.0 for n in beats}

    def node_memory(self):
        return {n: hb.memory for n, hb in self.live_telemetry()[0].items()}

    def node_names(self):
        return {n: hb.identity.friendly_name for n, hb in self.live_telemetry()[0].items()}

    def send_event(self, event: Any) -> None:
        self._router.send_event(event)

    async def send_command(self, command: Any) -> None:
        with trio.fail_after(10):
            while self._router.session is None:
                await self._router.changed.wait()
        session = self._router.session
        self._note_command()
        await self._messenger.send(session.master_node_id, ForwardedCommand(
            session=session, origin=self.node_id, command=command))

    def open_stream(self, command_id: str):
        return self._streams.open(command_id)

    def close_stream(self, command_id: str) -> None:
        self._streams.close(command_id)

    def cancel_stream(self, command_id: str) -> bool:
        if command_id not in self._streams:
            return False
        self._streams.fail(command_id, ErrorChunk(error_type="cancelled", error_message="Command cancelled.",
                                                  status_code=499))
        return True

    def diagnostics(self) -> dict[str, Any]:
        config_path = Path("skulk.yaml").resolve()
        return {
            "runtime": {"configPath": str(config_path), "configFileExists": config_path.exists(),
                        "listenAddrs": self._net.listen_multiaddrs(), "elections": self._sessions.elections,
                        "openStreams": len(self._streams)},
            "counters": self._counters(),
            "connectedPeers": sorted(self._net.connected_peers()),
        }
