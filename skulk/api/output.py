"""A generation's output as every API flavour reads it: text, reasoning, tool calls, one end."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import trio
from starlette.requests import Request

from skulk.api.generation import KEEPALIVE_S, Generation, GenerationFailed
from skulk.api.tool_calls import OutputParser, Piece, ToolCall
from skulk.types.chunks import Usage


@dataclass(frozen=True)
class Finish:
    reason: str  # stop | length | tool_calls
    tool_calls: list[ToolCall]
    stop_sequence: str | None
    usage: Usage


class ParsedOutput:
    def __init__(self, gen: Generation, *, parse_tools: bool):
        self.gen = gen
        self.parser = OutputParser(parse_tools=parse_tools)
        self.prompt_tokens = 0  # known from the first token on
        self.finish: Finish | None = None

    @property
    def text(self) -> str:
        return "".join(self.parser.text)

    @property
    def reasoning(self) -> str:
        return "".join(self.parser.reasoning)

    async def events(self, keepalive: float = KEEPALIVE_S) -> AsyncIterator[Piece | Finish | None]:
        """Pieces as they become safe to show, then one Finish; None after each silent `keepalive`.
        Raises GenerationFailed when the request fails."""
        async for chunk in self.gen.events(keepalive):
            if chunk is None:
                yield None
                continue
            if chunk.usage is not None:
                self.prompt_tokens = chunk.usage.prompt_tokens
            for piece in self.parser.feed(chunk.text):
                yield piece
            if chunk.finish_reason is None:
                continue
            for piece in self.parser.finish():
                yield piece
            calls = self.parser.tool_calls
            self.finish = Finish("tool_calls" if calls else chunk.finish_reason, list(calls),
                                 getattr(chunk, "stop_sequence", None), chunk.usage or Usage())
            yield self.finish

    async def collect(self) -> Finish:
        async for _ in self.events(keepalive=3600.0):
            pass
        assert self.finish is not None
        return self.finish


async def collect_unless_disconnected(request: Request, out: ParsedOutput) -> Finish | None:
    """A non-streamed request whose client hangs up is cancelled rather than left running.
    None when the client went away (the caller's Generation.close then cancels the task)."""
    result: Finish | None = None
    failure: GenerationFailed | None = None

    async def watch(cancel_scope: trio.CancelScope) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, nursery.cancel_scope)
        try:
            result = await out.collect()
        except GenerationFailed as exc:  # raised outside the nursery, not as an ExceptionGroup
            failure = exc
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result
