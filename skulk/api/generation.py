"""One request's life on the API node, shared by every API flavour.

Sends the command, hands out chunks as they arrive, and on the way out tells the master the
request finished (or was cancelled, when the client went away first).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import trio

from skulk.api import quota
from skulk.api.deadlines import Deadlines
from skulk.api.limits import api_settings
from skulk.api.metrics import GenerationMeter, metrics_for
from skulk.api.port import ClusterPort
from skulk.api.priority import current_priority
from skulk.api.request_trace import RequestTracer
from skulk.api.routes_warm import wake_if_cold
from skulk.errors import SkulkError
from skulk.types import commands as cmd
from skulk.engine.error_codes import error_chunk
from skulk.types.chunks import ErrorChunk, GenerationStats, TokenChunk, Usage
from skulk.types.tasks import TextGenerationTaskParams

KEEPALIVE_S = 5.0  # well under the 10 s a client may wait for a byte
TASK_APPEAR_DEADLINE_S = 15.0  # the master refuses silently (e.g. the instance vanished): don't hang
NEVER_STARTED = error_chunk("task_not_created", "The cluster did not accept this request in time; please retry")


def timed_stats(usage: Usage | None, sent: float, first: float, last: float) -> GenerationStats:
    """Rates measured here when the engine sends none: prefill up to the first token, decode after it."""
    usage = usage or Usage()
    decode_tokens, decode_s = max(usage.completion_tokens - 1, 0), last - first
    return GenerationStats(prompt_tps=usage.prompt_tokens / max(first - sent, 1e-6),
                           generation_tps=decode_tokens / decode_s if decode_s > 0 else 0.0,
                           prompt_tokens=usage.prompt_tokens, generation_tokens=usage.completion_tokens)


class GenerationFailed(Exception):
    def __init__(self, error: ErrorChunk):
        super().__init__(error.error_message)
        self.error = error


@dataclass
class Generation:
    port: ClusterPort
    params: TextGenerationTaskParams
    exclude_instances: tuple[str, ...] = ()  # a failover's re-issue: never these instances again
    command: cmd.GenerateText = field(init=False)
    text: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)  # what the text came from (failover's prefix)
    usage: Usage | None = None
    finish_reason: str | None = None
    stats: GenerationStats | None = None
    stop_sequence: str | None = None
    done: bool = False
    _recv: trio.MemoryReceiveChannel | None = None
    _started: float = 0.0
    _meter: GenerationMeter | None = None
    _first_token_at: float | None = None
    _trace: RequestTracer | None = None
    _deadlines: Deadlines | None = None
    _expired: bool = False  # ended by a deadline: the task is cancelled, not finished

    async def start(self) -> "Generation":
        await wake_if_cold(self.port, self.params.model)  # a paused deployment dropped to cold is placed first
        key_id = quota.caller_key_id()
        quota.check_model_allowed(self.port.state, key_id, self.params.model)
        await quota.admit_here(self.port, self.params.model, self.exclude_instances)  # 503 / 429 before asking
        self.command = cmd.GenerateText(task_params=self.params, owner_node=self.port.node_id, key_id=key_id,
                                        exclude_instances=list(self.exclude_instances),
                                        priority=current_priority())
        self._recv = self.port.open_stream(self.command.command_id)
        self._started = trio.current_time()
        self._deadlines = Deadlines.of(api_settings(self.port), stream=self.params.stream, now=self._started)
        self._meter = metrics_for(self.port).meter(self._started)
        self._trace = RequestTracer(self.port, self.command.command_id, self.params.model)
        with quota.outstanding(self.port, self.params.model, self.command_id):
            session = self.port.session
            await self.port.send_command(self.command)
            try:  # a refusal must be a 429/503 before any stream starts
                await quota.await_admission(self.port, self.command_id, session)
            except SkulkError as exc:
                self.port.close_stream(self.command_id)  # refused: no task to finish or cancel
                if isinstance(exc, quota.SessionChanged):  # should the new master hold it after all
                    with trio.CancelScope(shield=True), trio.move_on_after(2):
                        await self.port.send_command(cmd.CancelCommand(cancelled_command_id=self.command_id))
                raise
        return self

    @property
    def command_id(self) -> str:
        return self.command.command_id

    def _task_seen(self) -> bool:
        assert self._trace is not None
        return self._trace.watch()

    async def _next(self, keepalive: float):
        """The next chunk, or None once `keepalive` passes; fails if no task ever appears."""
        assert self._recv is not None
        deadline = trio.current_time() + keepalive
        while trio.current_time() < deadline:
            self._check_deadlines()
            # Poll finely until the task shows up, so a trace's queue wait is accurate.
            step = 1.0 if self._task_seen() else 0.05
            with trio.move_on_after(min(step, deadline - trio.current_time())):
                try:
                    return await self._recv.receive()
                except trio.EndOfChannel:
                    raise GenerationFailed(error_chunk("stream_closed", "The stream ended unexpectedly; please retry"))
            if not self.text and not self._task_seen() and trio.current_time() - self._started > TASK_APPEAR_DEADLINE_S:
                self.done = True
                raise GenerationFailed(NEVER_STARTED)
        return None

    def _check_deadlines(self) -> None:
        expired = self._deadlines.expired(trio.current_time()) if self._deadlines is not None else None
        if expired is not None:
            self.done = self._expired = True
            if self._meter is not None:
                self._meter.failed(expired)
            raise GenerationFailed(expired)

    async def events(self, keepalive: float = KEEPALIVE_S) -> AsyncIterator[TokenChunk | None]:
        """Token chunks as they come; None after each `keepalive` seconds of silence."""
        while not self.done:
            chunk = await self._next(keepalive)
            if chunk is None:
                yield None
                continue
            if isinstance(chunk, ErrorChunk):
                self.done = True
                if self._meter is not None:
                    self._meter.failed(chunk)
                raise GenerationFailed(chunk)
            self.text.append(chunk.text)
            self.token_ids.extend(chunk.token_ids)
            if self._trace is not None:
                self._trace.token()
            if self._meter is not None:
                self._meter.chunk(chunk, trio.current_time())
            now = trio.current_time()
            self._first_token_at = self._first_token_at or now
            if self._deadlines is not None:
                self._deadlines.token(now)
            if chunk.finish_reason is not None:
                self.done = True
                self.finish_reason, self.usage, self.stop_sequence = chunk.finish_reason, chunk.usage, chunk.stop_sequence
                self.stats = chunk.stats or timed_stats(chunk.usage, self._started, self._first_token_at, now)
            yield chunk

    async def collect(self) -> str:
        async for _ in self.events(keepalive=3600.0):
            pass
        return "".join(self.text)

    async def close(self) -> None:
        """Always called: finished -> FinishCommand, abandoned -> CancelCommand."""
        with trio.CancelScope(shield=True):
            self.port.close_stream(self.command_id)
            if self._trace is not None:
                usage = self.usage or Usage()
                outcome = "finished" if self.finish_reason else "failed" if self.done else "cancelled"
                self._trace.save(outcome=outcome, finishReason=self.finish_reason,
                                 promptTokens=usage.prompt_tokens, completionTokens=usage.completion_tokens)
            with trio.move_on_after(5):
                if self.done and not self._expired:
                    await self.port.send_command(cmd.FinishCommand(finished_command_id=self.command_id,
                                                                   usage=self.usage))
                else:
                    await self.port.send_command(cmd.CancelCommand(cancelled_command_id=self.command_id))
