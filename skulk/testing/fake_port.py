"""An in-process ClusterPort (skulk.api.port) for checking the API without starting a node.

A lone node with no peers: empty telemetry, no memory or names to report. Tests set `state`,
give `script` (command type -> function of the command returning the chunks its stream gets),
and read back every command sent in `sent`. Optional extras (traces_dir, broadcast_config, ...)
are left to subclasses, since routes look them up with getattr.

Like a one-node cluster's master, it admits serving commands through the real command table
(skulk.master.dispatch, with `pending_limit`) into its state, so routes see their task appear or
their RequestRejected. Only ready instances take requests: `with_ready_runners` makes a state's so."""

import itertools
import math
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import trio

from skulk.errors import SkulkError
from skulk.master.dispatch import DecideContext, decide
from skulk.models import ModelCatalog
from skulk.state.apply import apply_event
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.runners import RunnerReady
from skulk.types.state import State

FAKE_NODE_ID = "12D3KooWfake"

Script = dict[type, Callable[[Any], Iterable[Any]]]


ADMITTED = (cmd.GenerateText, cmd.EmbedText, cmd.FinishCommand, cmd.CancelCommand)


def with_ready_runners(state: State) -> State:
    """Every runner of every instance that has no status yet marked ready."""
    missing = {r: RunnerReady() for inst in state.instances.values()
               for r in inst.shard_assignments.runner_to_shard if r not in state.runners}
    return state.model_copy(update={"runners": {**state.runners, **missing}}) if missing else state


class FakePort:
    session = None
    pending_limit = 16
    admits = True  # False: a subclass that makes its own tasks as the test needs

    def __init__(self, *, node_id: str = FAKE_NODE_ID, friendly_name: str = "fake", is_master: bool = False,
                 state: State | None = None, script: Script | None = None):
        self.node_id = node_id
        self.friendly_name = friendly_name
        self.is_master = is_master
        self._ids = (f"fake-{i}" for i in itertools.count())
        self.state = state or State()
        self.history: list = []
        self.catalog = ModelCatalog()
        self.script: Script = dict(script or {})
        self.sent: list = []
        self._streams: dict[str, trio.MemorySendChannel] = {}

    def sent_of(self, kind: type) -> list:
        return [c for c in self.sent if isinstance(c, kind)]

    def _admit(self, command: Any) -> bool:
        """Decide a serving command like the master; False when it created no task."""
        context = DecideContext(now=datetime.now(timezone.utc), sender=self.node_id, new_id=lambda: next(self._ids),
                                pending_limit=self.pending_limit)
        try:
            events = decide(self.state, command, context)
        except SkulkError:
            return False  # the master refuses silently; the route's wait notices
        for e in events:
            self.state = apply_event(self.state, e)
        return any(isinstance(e, ev.TaskCreated) for e in events)

    async def send_command(self, command: Any) -> None:
        self.sent.append(command)
        created = self._admit(command) if self.admits and isinstance(command, ADMITTED) else True
        if not created and isinstance(command, (cmd.GenerateText, cmd.EmbedText)):
            return  # refused: the stream gets nothing, the route answers from the rejection
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

    def since_master_change_s(self) -> float | None:
        return None  # a fake never changes masters unless a test says so

    def node_memory(self) -> dict:
        return {}

    def node_names(self) -> dict:
        return {}

    def diagnostics(self) -> dict[str, Any]:
        return {"counters": {}}
