"""Failover a client never sees, around skulk.api.generation.Generation.

When the instance serving a request fails mid-answer (node lost, runner failed, stream closed,
stalled) and another ready instance of the model exists, the request is sent again there with the
token ids already received as `continue_token_ids`: the engine prefills them after the prompt and
goes on, so the same response continues (identical text under greedy decoding, usage as totals).
Without another ready instance, or past MAX_FAILOVERS, the error reaches the client as before.
"""

import logging
from collections.abc import AsyncIterator, Iterable

from skulk.api.generation import KEEPALIVE_S, Generation, GenerationFailed
from skulk.api.port import ClusterPort
from skulk.errors import SkulkError
from skulk.faults import count
from skulk.master.serving import instance_is_ready, instances_for_model
from skulk.types.chunks import ErrorChunk, GenerationStats, TokenChunk, Usage
from skulk.state.health import UNREACHABLE_AFTER_S
from skulk.types.state import State
from skulk.types.tasks import SERVING_TASK_TYPES, TextGenerationTaskParams

log = logging.getLogger(__name__)

MAX_FAILOVERS = 2  # per request: a third dead instance in one answer is the cluster's problem, not luck
# Retryable errors that do not mean "this instance is gone": a session change fails every stream
# (the client retries against the new master) and a never-created task has nothing to continue.
NOT_FAILED_OVER = frozenset({"session_changed", "task_not_created", "rate_limited"})


def is_instance_failure(error: ErrorChunk) -> bool:
    return error.retryable and error.error_type not in NOT_FAILED_OVER and error.status_code not in (429, 499)


def serving_instance(state: State, command_id: str) -> str | None:
    """The instance of the task created for `command_id`, while the task is in the state."""
    for task in state.tasks.values():
        if isinstance(task, SERVING_TASK_TYPES) and task.command_id == command_id:
            return task.instance_id
    return None


def failover_target(state: State, model: str, exclude: Iterable[str]) -> str | None:
    """A ready instance of the model outside `exclude` (the master chooses which; this says one exists)."""
    excluded = set(exclude)
    return next((iid for iid in instances_for_model(state, model)
                 if iid not in excluded and instance_is_ready(state, iid)), None)


def unreachable_instances(state: State, model: str, ages: dict[str, float]) -> frozenset[str]:
    """Instances of the model on a node silent past UNREACHABLE_AFTER_S (heartbeats come every second),
    left out of a new request's choice while another ready instance remains: the master keeps a dead
    node's instance until its node timeout, and a request sent there would wait for that."""
    silent = frozenset(iid for iid in instances_for_model(state, model)
                       if any(ages.get(n, float("inf")) > UNREACHABLE_AFTER_S
                              for n in state.instances[iid].shard_assignments.node_to_runner))
    return silent if failover_target(state, model, silent) is not None else frozenset()


def continued_params(params: TextGenerationTaskParams, sent_ids: list[int]) -> TextGenerationTaskParams | None:
    """The same request, continued after `sent_ids`; None when its token budget is already spent."""
    prefix = list(params.continue_token_ids or []) + sent_ids
    if params.max_output_tokens is not None and len(prefix) >= params.max_output_tokens:
        return None
    return params.model_copy(update={"continue_token_ids": prefix or None})


def plan_failover(state: State, params: TextGenerationTaskParams, error: ErrorChunk, *, failovers: int,
                  exclude: frozenset[str], sent_ids: list[int], text_sent: bool
                  ) -> tuple[TextGenerationTaskParams, frozenset[str]] | None:
    """Pure: the params and exclusions of the re-issue, or None when the error must reach the client."""
    if failovers >= MAX_FAILOVERS or not is_instance_failure(error):
        return None
    if text_sent and not sent_ids:
        return None  # text without its token ids cannot be continued exactly
    if failover_target(state, params.model, exclude) is None:
        return None
    continued = continued_params(params, sent_ids)
    return None if continued is None else (continued, exclude)


class FailoverGeneration:
    """Generation's surface (start/events/collect/close and the outcome fields) over a chain of them."""

    def __init__(self, port: ClusterPort, params: TextGenerationTaskParams):
        self.port, self.params = port, params
        self.failovers = 0
        self._gen = Generation(port, params)
        self._first_command_id = ""
        self._instance: str | None = None  # the current generation's instance, once seen
        self._exclude: frozenset[str] = frozenset()
        self._earlier_text: list[str] = []  # text of generations that failed over
        self._earlier_ids: list[int] = []
        self._closed = False  # the current generation was closed already (a failover that could not start)

    async def start(self) -> "FailoverGeneration":
        self._exclude = unreachable_instances(self.port.state, self.params.model, self.port.live_telemetry()[1])
        self._gen = Generation(self.port, self.params, exclude_instances=tuple(sorted(self._exclude)))
        await self._gen.start()
        self._first_command_id = self._gen.command_id
        return self

    @property
    def command_id(self) -> str:
        return self._first_command_id or self._gen.command_id  # the response's id stays the first one

    @property
    def text(self) -> list[str]:
        return self._earlier_text + self._gen.text

    @property
    def usage(self) -> Usage | None:
        return self._gen.usage

    @property
    def finish_reason(self) -> str | None:
        return self._gen.finish_reason

    @property
    def stats(self) -> GenerationStats | None:
        return self._gen.stats

    @property
    def stop_sequence(self) -> str | None:
        return self._gen.stop_sequence

    @property
    def done(self) -> bool:
        return self._gen.done

    async def events(self, keepalive: float = KEEPALIVE_S) -> AsyncIterator[TokenChunk | None]:
        while True:
            try:
                async for chunk in self._gen.events(keepalive):
                    if chunk is not None and self._instance is None:
                        self._instance = serving_instance(self.port.state, self._gen.command_id)
                    yield chunk
                return
            except GenerationFailed as exc:
                if not await self._fail_over(exc.error):
                    raise

    async def collect(self) -> str:
        while True:
            try:
                await self._gen.collect()
                return "".join(self.text)
            except GenerationFailed as exc:
                if not await self._fail_over(exc.error):
                    raise

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._gen.close()

    async def _fail_over(self, error: ErrorChunk) -> bool:
        """Re-issue on another instance; False leaves the error to the caller."""
        old = self._gen
        dead = serving_instance(self.port.state, old.command_id) or self._instance
        exclude = self._exclude | ({dead} if dead else set())
        sent_ids = self._earlier_ids + old.token_ids
        plan = plan_failover(self.port.state, self.params, error, failovers=self.failovers, exclude=exclude,
                             sent_ids=sent_ids, text_sent=any(self.text))
        if plan is None:
            return False
        params, self._exclude = plan
        self._closed = True
        await old.close()  # its task is over: the master deletes it
        new = Generation(self.port, params, exclude_instances=tuple(sorted(self._exclude)))
        try:
            await new.start()
        except SkulkError as exc:
            count("api.failover_refused", f"{old.command_id}: {exc}")
            return False
        except BaseException:  # the client left mid-failover: a command already sent is cancelled
            if hasattr(new, "command"):
                await new.close()
            raise
        self._earlier_text, self._earlier_ids = self.text, sent_ids
        self._gen, self._instance, self.failovers, self._closed = new, None, self.failovers + 1, False
        log.info("request %s: %s on instance %s; continued as %s after %d tokens", self.command_id,
                 error.error_type, dead, new.command_id, len(sent_ids))
        return True
