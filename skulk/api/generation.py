"""One request's life on the API node, shared by every API flavour.

Sends the command, hands out chunks as they arrive, and on the way out tells the master the
request finished (or was cancelled, when the client went away first).
"""

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import trio

from skulk.api.port import ClusterPort
from skulk.errors import NotFound
from skulk.master.serving import instances_for_model
from skulk.types import commands as cmd
from skulk.types.chunks import ErrorChunk, TokenChunk, Usage
from skulk.types.tasks import TextGenerationTaskParams

KEEPALIVE_S = 10.0


class GenerationFailed(Exception):
    def __init__(self, error: ErrorChunk):
        super().__init__(error.error_message)
        self.error = error


@dataclass
class Generation:
    port: ClusterPort
    params: TextGenerationTaskParams
    command: cmd.GenerateText = field(init=False)
    text: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    stats: object = None
    done: bool = False
    _recv: trio.MemoryReceiveChannel | None = None

    async def start(self) -> "Generation":
        if not instances_for_model(self.port.state, self.params.model):
            raise NotFound(f"No instance found for model {self.params.model}", code="model_not_found",
                           param="model")
        self.command = cmd.GenerateText(task_params=self.params, owner_node=self.port.node_id)
        self._recv = self.port.open_stream(self.command.command_id)
        await self.port.send_command(self.command)
        return self

    @property
    def command_id(self) -> str:
        return self.command.command_id

    async def events(self, keepalive: float = KEEPALIVE_S) -> AsyncIterator[TokenChunk | None]:
        """Token chunks as they come; None after each `keepalive` seconds of silence."""
        assert self._recv is not None
        while not self.done:
            chunk = None
            with trio.move_on_after(keepalive):
                try:
                    chunk = await self._recv.receive()
                except trio.EndOfChannel:
                    raise GenerationFailed(ErrorChunk(error_type="stream_closed", retryable=True,
                                                      error_message="The stream ended unexpectedly; please retry"))
            if chunk is None:
                yield None
                continue
            if isinstance(chunk, ErrorChunk):
                self.done = True
                raise GenerationFailed(chunk)
            self.text.append(chunk.text)
            if chunk.finish_reason is not None:
                self.done = True
                self.finish_reason, self.usage, self.stats = chunk.finish_reason, chunk.usage, chunk.stats
            yield chunk

    async def collect(self) -> str:
        async for _ in self.events(keepalive=math.inf):
            pass
        return "".join(self.text)

    async def close(self) -> None:
        """Always called: finished -> FinishCommand, abandoned -> CancelCommand."""
        with trio.CancelScope(shield=True):
            self.port.close_stream(self.command_id)
            with trio.move_on_after(5):
                if self.done:
                    await self.port.send_command(cmd.FinishCommand(finished_command_id=self.command_id))
                else:
                    await self.port.send_command(cmd.CancelCommand(cancelled_command_id=self.command_id))
