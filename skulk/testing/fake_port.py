"""An in-process ClusterPort (skulk.api.port) for checking the API without starting a node.

A lone node with no peers: empty telemetry, no memory or names to report. Tests set `state`,
give `script` (command type -> function of the command returning the chunks its stream gets),
and read back every command sent in `sent`. Optional extras (traces_dir, broadcast_config, ...)
are left to subclasses, since routes look them up with getattr."""

import math
from collections.abc import Callable, Iterable
from typing import Any

import trio

from skulk.models import ModelCatalog
from skulk.types.state import State

FAKE_NODE_ID = "12D3KooWfake"

Script = dict[type, Callable[[Any], Iterable[Any]]]


class FakePort:
    session = None

    def __init__(self, *, node_id: str = FAKE_NODE_ID, friendly_name: str = "fake", is_master: bool = False,
                 state: State | None = None, script: Script | None = None):
        self.node_id = node_id
        self.friendly_name = friendly_name
        self.is_master = is_master
        self.state = state or State()
        self.history: list = []
        self.catalog = ModelCatalog()
        self.script: Script = dict(script or {})
        self.sent: list = []
        self._streams: dict[str, trio.MemorySendChannel] = {}

    def sent_of(self, kind: type) -> list:
        return [c for c in self.sent if isinstance(c, kind)]

    async def send_command(self, command: Any) -> None:
        self.sent.append(command)
        answer = self.script.get(type(command))
        if answer is not None:
            for chunk in answer(command):
                self._streams[command.command_id].send_nowait(chunk)

    def open_stream(self, command_id: str) -> trio.MemoryReceiveChannel:
        send, recv = trio.open_memory_channel(math.inf)
        self._streams[command_id] = send
        return recv

    def close_stream(self, command_id: str) -> None:
        send = self._streams.pop(command_id, None)
        if send is not None:
            send.close()

    def cancel_stream(self, command_id: str) -> bool:
        return False

    def live_telemetry(self) -> tuple[dict, dict]:
        return {}, {}

    def node_memory(self) -> dict:
        return {}

    def node_names(self) -> dict:
        return {}

    def diagnostics(self) -> dict[str, Any]:
        return {"counters": {}}
