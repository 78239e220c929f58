"""An in-process ClusterPort whose one instance "generates" a scripted reply, so the request
translation and the three wire formats can be checked in milliseconds, without a model."""

import math
from collections.abc import Callable
from typing import Any

import trio

from skulk.models import DEFAULT_MODEL_ID, ModelCatalog
from skulk.types import commands as cmd
from skulk.types.chunks import ErrorChunk, TokenChunk, Usage
from skulk.types.state import State
from tests.factories import ring_instance

NODE = "12D3KooWfake"


def reply(text: str, *, finish: str = "stop", prompt_tokens: int = 7, stop_sequence: str | None = None) -> list:
    """The reply a character per token, then the final chunk with usage."""
    chunks = [TokenChunk(text=c, usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=i + 1))
              for i, c in enumerate(text)]
    return chunks + [TokenChunk(text="", finish_reason=finish, stop_sequence=stop_sequence,
                                usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text) + 1))]


def too_long(_: Any) -> list:
    return [ErrorChunk(error_type="context_length_exceeded", error_message="prompt too long", status_code=400)]


class ScriptedPort:
    friendly_name = "fake"
    session = None
    is_master = True
    history: list = []

    def __init__(self, answer: Callable[[Any], list] = lambda p: reply("Hello!"), context_limit: int | None = None):
        self.node_id = NODE
        self.catalog = ModelCatalog()
        inst = ring_instance("i0", [NODE], self.catalog.require(DEFAULT_MODEL_ID))
        inst = inst.model_copy(update={"context_token_limit": context_limit})
        self.state = State(instances={"i0": inst})
        self.answer = answer
        self.sent: list = []
        self._streams: dict[str, trio.MemorySendChannel] = {}

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

    async def send_command(self, command: Any) -> None:
        self.sent.append(command)
        if isinstance(command, cmd.GenerateText):
            for chunk in self.answer(command.task_params):
                self._streams[command.command_id].send_nowait(chunk)

    @property
    def params(self):
        """The task params of the last generation request."""
        return [c for c in self.sent if isinstance(c, cmd.GenerateText)][-1].task_params

    def live_telemetry(self):
        return {}, {}

    def node_memory(self):
        return {}

    def node_names(self):
        return {}

    def diagnostics(self):
        return {"counters": {}}
